"""Schemathesis over the whole OpenAPI document against the local stack, authenticated with a token:
no server error, no response outside its documented schema, no undocumented status code.

`make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES, 25 here); `make fuzz`
runs many more. The fuzzer keeps to its token's rate limit as a well-behaved client would (found: at
full speed half its requests were throttled, so half the run tested nothing), and a 429 fails it."""

from __future__ import annotations

import os
import time
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


class Pacer:
    """Spaces requests so that one token stays under its rate (the stack's TokenRateLimit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / (0.8 * rate)  # a fifth under the rate: the bucket only fills, never empties
        self._last = float("-inf")

    def wait(self) -> None:
        delay = self._last + self.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._last = time.monotonic()


@pytest.fixture(scope="session")
def pacer(local_stack: RunningStack) -> Pacer:
    return Pacer(float(local_stack.state["parameters"]["TokenRateLimit"]))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_its_document_says(
    api_schema: Any, local_stack: RunningStack, pacer: Pacer, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": local_stack.headers["admin"]}
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case: Any) -> None:
        # Every check but "a schema-valid request is accepted": the schema cannot say which reports
        # exist or which values a report's fields take, so a 400 or 404 there is the right answer.
        pacer.wait()
        response = case.call_and_validate(
            base_url=local_stack.url, headers=headers, excluded_checks=[positive_data_acceptance]
        )
        statuses.append(response.status_code)

    answers_as_documented()
    assert statuses and 429 not in statuses, statuses
