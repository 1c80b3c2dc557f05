"""Schemathesis over the whole OpenAPI document against the local stack, authenticated with a token:
no server error, no response outside its documented schema, no undocumented status code.

`make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES, 25 here); `make fuzz`
runs many more."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from reportserver.http import contract
from schemathesis.checks import positive_data_acceptance

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="session")
def api_schema(local_stack: RunningStack) -> Any:
    document = requests.get(f"{local_stack.url}/api/openapi.json", timeout=30).json()
    return schemathesis.openapi.from_dict(document)


# One test per operation, named from the code's contract (the document is read from the running stack).
OPERATIONS = [(op.method, op.path) for op in contract.OPERATIONS]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_its_document_says(
    api_schema: Any, local_stack: RunningStack, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": local_stack.headers["admin"]}

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case: Any) -> None:
        # Every check but "a schema-valid request is accepted": the schema cannot say which reports
        # exist or which values a report's fields take, so a 400 or 404 there is the right answer.
        case.call_and_validate(base_url=local_stack.url, headers=headers, excluded_checks=[positive_data_acceptance])

    answers_as_documented()
