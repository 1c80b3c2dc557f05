"""The OAuth 2.0 password grant (seed 001) and users' access tokens, through the front door."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.conftest import USER_PASSWORD, Stack


def _form(stack: Stack, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, dict]:
    response = stack.api.handle("POST", "/oauth/token", [("Content-Type", content_type)], body, "198.51.100.9")
    return response.status, json.loads(response.body)


def test_a_user_logs_in_with_a_password_and_its_access_token_works_as_bearer(stack: Stack) -> None:
    user = stack.new_user()
    response = stack.login(user["userName"], USER_PASSWORD)
    assert response.status == 200
    answer = json.loads(response.body)
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 1200
    assert answer["access_token"].startswith("rsa_") and len(answer["access_token"]) == 53
    assert ("Cache-Control", "no-store") in response.headers
    reports = stack.get("/api/reports/", auth=f"Bearer {answer['access_token']}")
    assert reports.status == 200
    # Open to all (`*`) reports only: the user is in no group
    assert all("*" in r["groups"] for r in json.loads(reports.body)["reports"])


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"grant_type=client_credentials&username=a&password=b", None, "unsupported_grant_type"),
        (b"username=a&password=b", None, "unsupported_grant_type"),
        (b"grant_type=password&password=b", None, "invalid_request"),
        (b"grant_type=password&username=a", None, "invalid_request"),
        (b"grant_type=password&username=a&username=b&password=c", None, "invalid_request"),
        (b'{"grant_type": "password", "username": "a", "password": "b"}', "application/json", "invalid_request"),
        (b"grant_type=password&username=" + b"u" * 200 + b"&password=b", None, "invalid_request"),
        (b"grant_type=password&username=a&password=" + b"p" * 300, None, "invalid_request"),
        (b"grant_type=password&username=nobody-at-all&password=whatever-it-is", None, "invalid_grant"),
    ],
)
def test_bad_grants_get_the_rfc_6749_error(stack: Stack, body: bytes, content_type: str | None, error: str) -> None:
    status, answer = _form(stack, body, content_type or "application/x-www-form-urlencoded")
    assert status == 400 and answer["error"] == error and answer["error_description"], answer
    assert "access_token" not in answer


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(stack: Stack) -> None:
    user = stack.new_user()
    wrong = stack.login(user["userName"], "not the right password", source_ip="203.0.113.1")
    unknown = stack.login(f"ghost-{uuid.uuid4().hex[:6]}", "not the right password", source_ip="203.0.113.1")
    assert wrong.status == unknown.status == 400
    assert (
        json.loads(wrong.body)
        == json.loads(unknown.body)
        == {
            "error": "invalid_grant",
            "error_description": "Wrong user name or password",
        }
    )


def test_a_flood_for_one_user_from_one_address_is_held_back_but_the_user_logs_in_elsewhere(stack: Stack) -> None:
    user = stack.new_user()
    attacker = "192.0.2.66"
    statuses = [stack.login(user["userName"], f"guess number {n}", source_ip=attacker).status for n in range(4)]
    assert statuses[:3] == [400, 400, 400]
    held = stack.login(user["userName"], USER_PASSWORD, source_ip=attacker)  # even the right one, for now
    assert held.status == 429 and json.loads(held.body)["error"] == "invalid_grant"
    retry = dict(held.headers)["Retry-After"]
    assert 1 <= int(retry) <= 900
    # The real user, from its own address, is not locked out by the attacker's guesses
    assert stack.login(user["userName"], USER_PASSWORD, source_ip="198.51.100.200").status == 200


def test_a_deleted_or_deactivated_user_or_a_changed_password_stops_its_access_tokens_at_once(stack: Stack) -> None:
    for change in ("delete", "deactivate", "password"):
        user = stack.new_user()
        bearer = stack.bearer_of(user["userName"])
        assert stack.get("/api/server_time/", auth=bearer).status == 200  # its decision is cached now
        if change == "delete":
            assert stack.send("DELETE", f"/api/users/{user['id']}")[0] == 200
        elif change == "deactivate":
            assert stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "active": False})[0] == 200
        else:
            body = {"password": "a brand new password"}
            assert stack.send("PUT", f"/api/users/{user['id']}/password", body)[0] == 200
        refused = stack.get("/api/server_time/", auth=bearer)
        assert refused.status == 401, (change, refused.body)
        reason = {"delete": b"Access token revoked", "deactivate": b"Access token revoked", "password": b"revoked"}
        assert reason[change] in refused.body, (change, refused.body)
    assert stack.login(user["userName"], "a brand new password").status == 200


def test_a_deactivated_user_cannot_log_in(stack: Stack) -> None:
    user = stack.new_user()
    stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "active": False})
    response = stack.login(user["userName"], USER_PASSWORD, source_ip="198.51.100.77")
    assert response.status == 400 and json.loads(response.body)["error"] == "invalid_grant"


def test_a_user_changes_its_own_password_only_with_the_current_one(stack: Stack) -> None:
    user = stack.new_user()
    bearer = stack.bearer_of(user["userName"])
    without = stack.send("PUT", f"/api/users/{user['id']}/password", {"password": "another new password"}, bearer)
    assert without[0] == 403 and "currentPassword" in without[1]["message"]
    body = {"password": "another new password", "currentPassword": USER_PASSWORD}
    assert stack.send("PUT", f"/api/users/{user['id']}/password", body, auth=bearer)[0] == 200
    # and never another's, whatever it gives
    other = stack.new_user()
    renewed = stack.bearer_of(user["userName"], "another new password")
    assert stack.send("PUT", f"/api/users/{other['id']}/password", body, auth=renewed)[0] == 403


def test_the_guest_account_is_off_by_default(stack: Stack) -> None:
    status, answer = stack.send("POST", "/api/users/", {"userName": "guest", "groupsId": []})
    assert status in (201, 409), answer  # made once per session
    response = stack.login("guest", "", source_ip="198.51.100.88")
    assert response.status == 400 and json.loads(response.body)["error"] == "invalid_grant"


def test_a_nonce_shaped_bearer_is_not_a_token(stack: Stack) -> None:
    from reportserver.domain.tokens import generate_secret

    refused = stack.get("/api/server_time/", auth="Bearer " + generate_secret("rsn_"))
    assert refused.status == 401 and b"A nonce is not a Bearer token" in refused.body
    forged = stack.get("/api/server_time/", auth="Bearer rsa_" + "A" * 49)
    assert forged.status == 401 and b"Invalid access token" in forged.body
