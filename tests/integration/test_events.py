"""The handlers invoked with the sample events of events/ (as `sam local invoke -e` would), each as its
function's role."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reportserver.domain.tokens import ApiToken, hash_secret

from tests.conftest import EVENTS
from tests.integration.conftest import Stack


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def event_token(stack: Stack) -> None:
    """The token the sample authorizer event carries (local-admin and the secret in events/README.md)."""
    now = datetime.now(UTC)
    stack.tokens.create(
        ApiToken(
            name="local-admin",
            secret_hash=hash_secret("rsk_t0JTNlhIVEPIT1amR8V5oND9JloXxV6BjPJuZA19LuB4GVNkG"),
            groups=["*"],
            permissions=["admin"],
            expires_at=now + timedelta(days=1),
            created_at=now,
            created_by="tests",
        )
    )


def test_reports_handler_answers_the_sample_event(stack: Stack) -> None:
    response = stack.api.invoke("ReportsFunction", event("api_call_report.json"))
    answer = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert [r["month"] for r in answer["records"]] == ["2025-07", "2025-08", "2025-09"]


def test_reports_handler_refuses_an_event_that_skipped_the_authorizer(stack: Stack) -> None:
    unauthorized = copy.deepcopy(event("api_call_report.json"))
    unauthorized["requestContext"].pop("authorizer")
    response = stack.api.invoke("ReportsFunction", unauthorized)
    assert response["statusCode"] == 401


def test_authorizer_allows_the_sample_event_with_the_principal_in_context(stack: Stack, event_token: None) -> None:
    decision = stack.api.invoke("AuthFunction", event("authorizer_request.json"))
    assert decision["principalId"] == "token:local-admin"
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    token_id = stack.tokens.find_by_name("local-admin").owner_id  # type: ignore[union-attr]
    assert decision["context"] == {
        "kind": "token",
        "name": "local-admin",
        "owner_id": token_id,
        "groups": "*",
        "grants": "admin:0:",
        "only_report": "",
        "user_id": "",
        "expires_at": str(int(stack.tokens.find_by_name("local-admin").expires_at.timestamp())),  # type: ignore[union-attr]
    }


def test_authorizer_denies_a_wrong_secret_with_the_reason(stack: Stack, event_token: None) -> None:
    wrong = copy.deepcopy(event("authorizer_request.json"))
    wrong["headers"]["Authorization"] = "Bearer rs_wrong--------------------------------------"
    decision = stack.api.invoke("AuthFunction", wrong)
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert decision["context"] == {"message": "Invalid token"}


def test_authorizer_reads_a_lower_case_header(stack: Stack, event_token: None) -> None:
    lower = copy.deepcopy(event("authorizer_request.json"))
    lower["headers"] = {"authorization": lower["headers"].pop("Authorization")}
    decision = stack.api.invoke("AuthFunction", lower)
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Allow"
