"""Exports over HTTP against the local stack: request, poll while the worker loop renders, download."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import openpyxl
import pytest
import requests

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e
POLL_SECONDS = 60


def wait_for(stack: RunningStack, ticket_id: str) -> dict[str, Any]:
    auth = {"Authorization": stack.headers["admin"]}
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        view = requests.get(f"{stack.url}/api/exports/{ticket_id}/", headers=auth, timeout=30).json()
        if view["status"] in ("complete", "failed"):
            return dict(view)
        time.sleep(0.1)
    raise AssertionError(f"export {ticket_id} did not finish in {POLL_SECONDS} s")


def request_export(stack: RunningStack, body: dict[str, Any]) -> str:
    response = requests.post(
        f"{stack.url}/api/exports/", json=body, headers={"Authorization": stack.headers["admin"]}, timeout=30
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["ticket_id"])


def test_a_csv_export_is_rendered_by_the_worker_loop_and_downloaded_from_its_link(local_stack: RunningStack) -> None:
    ticket_id = request_export(local_stack, {"report_name": "order-lines", "format": "csv", "force_update": True})
    view = wait_for(local_stack, ticket_id)
    assert view["status"] == "complete", view
    assert view["total_rows"] >= 100_000
    download = requests.get(view["report_url"], timeout=60)
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("text/csv")
    assert view["file_name"] in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8"))))
    assert rows[0][:3] == ["line_id", "order_id", "order_date"] and len(rows) == view["total_rows"] + 1


def test_the_download_endpoint_redirects_a_client_that_follows_it_to_the_file(local_stack: RunningStack) -> None:
    ticket_id = request_export(local_stack, {"report_name": "gst-balance"})
    assert wait_for(local_stack, ticket_id)["status"] == "complete"
    response = requests.get(
        f"{local_stack.url}/api/exports/{ticket_id}/download/",
        headers={"Authorization": local_stack.headers["admin"]},
        timeout=30,
    )
    assert response.status_code == 200 and response.history[0].status_code == 302
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["GST by month"]
