"""An Athena data model under moto for the tests: its results bucket, the model made over the API, and
query results staged through moto's API (moto runs no SQL: each query takes the next staged result,
and its CSV file is written to the output location as Athena writes it)."""

from __future__ import annotations

from typing import Any

import boto3
from moto.athena.models import athena_backends
from moto.moto_api._internal.models import moto_api_backend

from tests.integration.conftest import TEMPLATE, Stack

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
RESULTS_BUCKET = str(TEMPLATE.parameters["AthenaResultsBucket"]["Default"])
Columns = list[tuple[str, str, int, int]]  # name, Athena type, precision, scale

_models: dict[str, int] = {}


def athena_model(stack: Stack, command_timeout: int = 30) -> int:
    """The id of an Athena data model over the results bucket (made once per stack and timeout)."""
    key = f"{stack.names['CatalogTable']}:{command_timeout}"
    if key not in _models:
        s3 = boto3.client("s3")
        if RESULTS_BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=RESULTS_BUCKET)
        provider = {
            "providerType": "athena",
            "workgroup": "primary",
            "outputLocation": f"s3://{RESULTS_BUCKET}/results/",
            "database": "lake",
            "region": REGION,
        }
        body = {"name": f"Lake {command_timeout}s", "providerModel": provider, "commandTimeout": command_timeout}
        status, answer = stack.send("POST", "/api/datamodels/", body)
        assert status == 201, answer
        _models[key] = int(answer["dataModel"]["id"])
    return _models[key]


def stage(columns: Columns, rows: list[list[str | None]], header: bool = True) -> None:
    """The next query's result: a header row (as a SELECT's first row) and the rows, as text."""
    info: list[dict[str, Any]] = [
        {"Name": n, "Label": n, "Type": t, "Precision": p, "Scale": s, "Nullable": "UNKNOWN", "CaseSensitive": True}
        for n, t, p, s in columns
    ]
    cells = [[n for n, _t, _p, _s in columns]] if header else []
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in cells + rows]
    moto_api_backend.set_athena_result(rows=data, column_info=info, account_id=ACCOUNT, region=REGION)


def clear_staged() -> None:
    athena_backends[ACCOUNT][REGION].query_results_queue.clear()


def executions() -> list[Any]:
    return list(athena_backends[ACCOUNT][REGION].executions.values())


_reports: dict[str, str] = {}
SALES: Columns = [("region", "varchar", 0, 0), ("amount", "decimal", 12, 2)]


def athena_report(stack: Stack) -> str:
    """A report on the Athena model with a choice field whose choices come from Athena too (made once)."""
    key = stack.names["CatalogTable"]
    if key not in _reports:
        model = athena_model(stack)
        body = {
            "name": f"Lake Sales {model}",
            "dataModelId": model,
            "queries": [{"sql": "SELECT region, amount FROM sales WHERE region = :region"}],
            "fields": [{"name": "region", "type": "choice", "choices_sql": "SELECT DISTINCT region FROM sales"}],
        }
        stage(SALES, [])  # the sheet's statement, asked for no rows at save
        stage([("region", "varchar", 0, 0)], [])  # the choices' statement
        status, answer = stack.send("POST", "/api/reports/", body)
        assert status == 201, answer
        _reports[key] = str(answer["report"]["slug"])
    return _reports[key]


def stage_choices_and_rows() -> None:
    """What a call or export of `athena_report` asks of Athena: the choices, then the rows."""
    stage([("region", "varchar", 0, 0)], [["NSW"], ["VIC"]])
    stage(SALES, [["NSW", "10.50"], ["NSW", "0.25"]])
