"""A subscription end to end on the local stack, as the README walks through it: a job made over HTTP
with a schedule due within the minute fires by itself (the stack's scheduler loop), its run is
delivered, and its mail is in the stack's mail folder, listed by the mail command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ROOT, RunningStack

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 90  # the run starts at once (the loop's clock is ahead); its export and mail take seconds


def _kept_for(folder: Path, address: str) -> Path | None:
    """The .eml whose envelope (its .json beside it) names this address."""
    for envelope in sorted(folder.glob("*.json")):
        if address in json.loads(envelope.read_text(encoding="utf-8"))["to"]:
            return envelope.with_suffix(".eml")
    return None


def test_a_job_due_within_the_minute_fires_by_itself_and_its_mail_is_kept(local_stack: RunningStack) -> None:
    api, headers = local_stack.url, {"Authorization": local_stack.state["token"]["authorization"]}
    report = next(r["id"] for r in local_stack.state["reports"] if r["slug"] == "sales-by-day")
    address = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    body: dict[str, Any] = {
        "name": f"Every minute {address}",
        "documentId": report,
        "timeZone": "Australia/Sydney",
        "recurrenceRule": "cron(* * * * ? *)",
        "parameters": [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}],
        "emailDeliveryFormat": "csv",
        "subscribedEmails": [address],
    }
    # Given a job made over HTTP that runs every minute (its schedule: at() of the next minute)
    answer = requests.post(f"{api}/api/jobs", json=body, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    job = answer.json()["job"]
    assert job["scheduleExpression"].startswith("at(")
    try:
        # When nobody calls execute: the stack's scheduler fires it, and its run is delivered
        today = datetime.now(UTC).date()
        window = {"startDate": str(today - timedelta(days=1)), "endDate": str(today + timedelta(days=1))}
        deadline, runs = time.monotonic() + WAIT_SECONDS, []
        while time.monotonic() < deadline:
            results = requests.get(f"{api}/api/jobs/{job['id']}/jobresults", params=window, headers=headers, timeout=30)
            runs = [r for r in results.json()["jobResults"] if r["status"] == "delivered"]
            if runs:
                break
            time.sleep(0.5)
        assert runs, f"no delivered run within {WAIT_SECONDS} s: {results.json()}"
        run = runs[0]
        assert run["trigger"] == "schedule" and run["runAt"].endswith(":00Z")
        # Then its mail is kept in stack.json's mail_dir: the report's rows attached as csv
        kept = _kept_for(Path(local_stack.state["mail_dir"]), address)
        assert kept is not None and kept.exists()
        mail = message_from_bytes(kept.read_bytes(), policy=default)
        assert mail["Subject"].startswith("Sales by Day")
        (attached,) = mail.iter_attachments()
        assert attached.get_filename().endswith(".csv")
        content = attached.get_content()
        rows = list(csv.DictReader(io.StringIO(content if isinstance(content, str) else content.decode("utf-8"))))
        assert len(rows) == 31  # the days of July
        # And the mail command lists it, with its attachment and file
        listed = subprocess.run(
            [sys.executable, "-m", "infra.local.mail", "--state-dir", str(local_stack.state_dir)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert address in listed and str(kept) in listed and ".csv (" in listed
    finally:
        requests.delete(f"{api}/api/jobs", params={"id": job["id"]}, headers=headers, timeout=30)
