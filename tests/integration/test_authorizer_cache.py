"""The local front door caches the authorizer's decision as API Gateway does: per identity (the
Authorization header), for the template's ReauthorizeEvery, and checks the cached policy's resource
against each route. So the revocation delay the README states can be shown, and a policy that would
only cover the first route asked for fails here as it would in AWS."""

from __future__ import annotations

import uuid
from typing import Any

from infra.local.frontdoor import LocalApi
from tests.integration.conftest import TEMPLATE, Stack
from tests.integration.gateway import clocked_api, token_header

REAUTHORIZE_EVERY = TEMPLATE.authorizer().cache_seconds
TOKEN_CACHE_SECONDS = float(TEMPLATE.functions()["AuthFunction"].environment["TOKEN_CACHE_SECONDS"])


def _status(api: LocalApi, header: str, path: str = "/api/server_time/") -> int:
    return api.handle("GET", path, [("Authorization", header)], b"").status


def test_the_template_caches_decisions_for_30_seconds_and_keeps_no_copies_of_tokens() -> None:
    # Found: a token kept 10 s in the authorizer's container let a revoked token in after the flush,
    # and API Gateway cached that Allow for 30 s more.
    assert REAUTHORIZE_EVERY == 30 and TOKEN_CACHE_SECONDS == 0
    assert float(TEMPLATE.functions()["AuthFunction"].environment["GROUP_CACHE_SECONDS"]) == 0


def test_a_token_deactivated_over_the_api_is_refused_on_its_next_request(stack: Stack) -> None:
    # Given a token whose Allow is cached by the front door (as by API Gateway)
    api, _ = clocked_api(stack)
    name = f"flushed-{uuid.uuid4().hex[:6]}"
    header = token_header(stack, name)
    assert _status(api, header) == 200
    # When an admin deactivates it over the API (which flushes the stage's authorizer cache)
    deactivated = api.handle("POST", f"/api/tokens/{name}/deactivate", [("Authorization", stack.headers["admin"])], b"")
    assert deactivated.status == 200
    # Then its very next request is refused: no cached decision, no kept copy
    assert _status(api, header) == 401


def test_a_deleted_token_works_until_the_gateway_cache_expires_then_is_refused(stack: Stack) -> None:
    api, clock = clocked_api(stack)
    header = token_header(stack, "revoked-soon")
    assert _status(api, header) == 200
    stack.tokens.delete("revoked-soon")
    clock.now += REAUTHORIZE_EVERY - 1
    assert _status(api, header) == 200  # API Gateway's cached Allow: the authorizer is not asked
    clock.now += 2
    api.cold_start("AuthFunction")  # the authorizer's own container cache is the other 10 s
    assert _status(api, header) == 401


def test_a_cached_policy_is_checked_against_every_route(stack: Stack, monkeypatch: Any) -> None:
    # An authorizer that allowed only the route first asked for would be cached for all: API Gateway
    # refuses the other routes (ACCESS_DENIED, which the template answers as 401), and so does the front door.
    api, _ = clocked_api(stack)
    header = token_header(stack, "one-route")
    real = api.invoke

    def only_this_route(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        answer = real(logical_id, event)
        if logical_id == "AuthFunction":
            answer["policyDocument"]["Statement"][0]["Resource"] = [event["methodArn"]]
        return answer

    monkeypatch.setattr(api, "invoke", only_this_route)
    assert _status(api, header, "/api/server_time/") == 200
    assert _status(api, header, "/api/server_iso_time/") == 401
