"""Lambda's 6 MB response limit: the call cap measures the response Lambda sends, and the local front
door refuses what Lambda would refuse."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import parse_report
from reportserver.http.lambda_proxy import LAMBDA_RESPONSE_LIMIT_BYTES, body_weight, serialised_size

from infra.local.frontdoor import LocalApi
from infra.local.template import load_template
from tests.integration.conftest import Stack

QUOTES_PER_ROW = 1000
ROWS = 1600  # a 3.2 MB body of escaped quotes: under the 5 MB cap as bytes, over 6 MB as Lambda sends it


@pytest.fixture(scope="module")
def quotes_report(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("quotes") / "quotes.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE q (id INTEGER, t TEXT)")
        connection.executemany("INSERT INTO q VALUES (?, ?)", [(i, '"' * QUOTES_PER_ROW) for i in range(ROWS)])
    stack.catalog.put_data_source(DataSource(id="903", database=str(path)))
    report = stack.catalog.create_report(
        parse_report({"name": "Quotes", "data_source_id": "903", "queries": [{"sql": "SELECT id, t FROM q"}]})
    )
    return report.slug


def test_a_text_heavy_result_over_lambdas_limit_is_413_not_502(stack: Stack, quotes_report: str) -> None:
    # Found: the cap measured the body's bytes (3.2 MB here), but Lambda sends the body escaped inside
    # its JSON envelope (6.4 MB), so AWS answered 502.
    response = stack.get(f"/api/call/{quotes_report}/")
    answer = json.loads(response.body)
    assert response.status == 413, answer
    assert "POST /api/exports/" in answer["message"] and answer["ok"] is False


def test_body_weight_counts_what_lambda_sends() -> None:
    body = json.dumps({"records": [{"t": '"\\\n' * 10, "u": "中文"}]}, ensure_ascii=False).encode()
    result = {"statusCode": 200, "headers": {}, "body": body.decode()}
    envelope = serialised_size({"statusCode": 200, "headers": {}, "body": ""})
    assert serialised_size(result) == envelope + body_weight(body)


def test_the_local_front_door_refuses_a_response_lambda_would_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    api = LocalApi(load_template(), throttled=False)  # no API Gateway here: this is about Lambda's limit
    huge = {"statusCode": 200, "headers": {}, "body": '"' * (LAMBDA_RESPONSE_LIMIT_BYTES // 2)}

    def invoke(_logical_id: str, _event: dict[str, Any]) -> dict[str, Any]:
        return huge

    monkeypatch.setattr(api, "invoke", invoke)
    monkeypatch.setattr(api, "_authorize", lambda event, route: ({}, None, None))
    response = api.handle("GET", "/api/server_time/", [], b"")
    # The body alone is under the limit; escaped inside the envelope it is over it, as Lambda counts.
    assert len(huge["body"]) < LAMBDA_RESPONSE_LIMIT_BYTES < serialised_size(huge)
    assert response.status == 502  # API Gateway's answer when Lambda fails; DEFAULT_5XX sets no other
    assert json.loads(response.body)["ok"] is False


def test_the_template_runs_the_runtime_the_measure_assumes() -> None:
    from reportserver.http.lambda_proxy import RUNTIMES_MEASURED

    template = Path(__file__).resolve().parents[2] / "template.yaml"
    runtimes = {line.split(":", 1)[1].strip() for line in template.read_text().splitlines() if "Runtime:" in line}
    assert runtimes and runtimes <= set(RUNTIMES_MEASURED), runtimes
