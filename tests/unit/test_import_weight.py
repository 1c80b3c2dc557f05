"""The API functions' cold path stays light: no heavy library is imported when a handler loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
# botocore's bare package is imported by Powertools (about 1 ms); its session and client are the weight.
HEAVY = [
    "pandas",
    "numpy",
    "pyarrow",
    "openpyxl",
    "xlsxwriter",
    "fpdf",
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "aws_xray_sdk",
    "moto",
    "psycopg",  # only where a PostgreSQL source runs
    "sqlglot",  # only when a statement is saved
    "aws_lambda_powertools.event_handler",  # every resolver Powertools has: reportserver.http.resolver routes
    "asyncio",  # which Powertools' AppSync resolver brought along
]
PROBE = """
import json, sys, importlib
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "module",
    [
        "functions.auth.handler",
        "functions.reports.handler",
        "functions.exports.handler",
        "functions.admin.handler",
        "functions.catalog_admin.handler",
    ],
)
def test_handler_import_pulls_in_no_heavy_library(module: str) -> None:
    env = {**os.environ, **load_template().environment(), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'shared'}"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))
