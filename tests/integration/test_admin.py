"""Tokens, users and groups over the API, through the front door under moto with IAM enforced."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from reportserver.domain.errors import VersionConflict
from reportserver.domain.tokens import basic_header, hash_secret
from reportserver.store.identity import DynamoIdentityStore

from tests.integration.conftest import Stack


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """Each test with an admin token of its own: its own request bucket in the usage plan, as each client
    has, so that one test's calls never throttle the next's."""
    return stack.with_own_admin()


def _make_token(stack: Stack, body: dict[str, Any], auth: str = "admin") -> tuple[int, Any]:
    return stack.send("POST", "/api/tokens/", body, auth=auth)


# Tokens (seeds 000 and 004)


def test_a_token_made_over_the_api_shows_its_secret_once_and_works_as_basic_and_bearer(stack: Stack) -> None:
    name = _name()
    status, made = _make_token(stack, {"name": name, "expiry": 30, "groups": ["*"], "description": "for the ERP"})
    assert status == 201, made
    secret = made["secret"]
    assert secret.startswith("rsk_") and made["headers"]["basic"] == basic_header(name, secret)
    assert made["headers"]["bearer"] == f"Bearer {secret}"
    for header in (made["headers"]["basic"], made["headers"]["bearer"]):
        assert stack.get("/api/server_time/", auth=header).status == 200
    # Seed 000's list entry, and never the secret again
    listed = stack.send("GET", "/api/tokens/")[1]
    entry = next(t for t in listed["tokens"] if t["name"] == name)
    assert entry["active"] == "Y" and entry["age_days"] == 0 and entry["groups"] == "*"
    assert entry["created_by"].startswith("token 'admin-") and entry["description"] == "for the ERP"
    expiry = datetime.strptime(entry["expiry"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert timedelta(days=29, hours=23) < expiry - datetime.now(UTC) <= timedelta(days=30)
    assert entry["last_used"] is not None  # the authorizer noted the calls above
    one = stack.send("GET", f"/api/tokens/{name}")[1]["token"]
    assert one == entry
    stored = stack.tokens.find_by_name(name)
    assert stored is not None and stored.secret_hash == hash_secret(secret)
    for answer in (listed, one):
        assert secret not in str(answer)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"expiry": 45}, 400, "Expiry period must be one of [30, 60, 90] days"),
        ({"expiry": 0}, 400, "Expiry period must be one of"),
        ({"expiry": "2020-01-01"}, 400, "Expiry date must be in the future"),
        ({"expiry": (date.today() + timedelta(days=400)).isoformat()}, 400, "within a year"),
        ({"expiry": "2027-13-01"}, 400, "expiry must be 30, 60 or 90 (days) or a date as YYYY-MM-DD"),
        ({"expiry": "next week"}, 400, "expiry must be 30, 60 or 90"),
        ({"expiry": True}, 400, "Invalid 'expiry'"),
        ({"expiry": 30.5}, 400, "Invalid 'expiry'"),
        ({"name": "has space"}, 400, "Token name must be 1-64 letters"),
        ({"name": "a:b"}, 400, "Token name must be"),
        ({"name": "naïve"}, 400, "Token name must be"),
        ({"name": "x" * 65}, 400, "Token name must be"),
        ({"name": ""}, 400, "Token name must be"),
        ({"name": "API.user"}, 400, "reserved for internal duties"),
        ({"permissions": ["root"]}, 400, "Unknown permission or scope 'root'"),
        ({"permissions": [{"scope": "galaxy", "accessMode": 2}]}, 400, "Unknown permission or scope 'galaxy'"),
        ({"permissions": [{"scope": "document", "accessMode": 2}]}, 400, "give its entityId"),
        ({"permissions": [{"scope": "document", "accessMode": 99, "entityId": 1}]}, 400, "accessMode"),
        ({"groups": ["no-such-group"]}, 400, "Unknown group 'no-such-group'"),
        ({"groups": []}, 400, "at least one group"),
        ({"groups": ["bad group"]}, 400, "Invalid group name"),
        ({"description": "d" * 501}, 400, "at most 500 characters"),
        ({"colour": "blue"}, 400, "Unknown field 'colour'"),
    ],
)
def test_bad_token_requests_are_refused_with_the_reason_and_make_nothing(
    stack: Stack, body: dict[str, Any], status: int, message: str
) -> None:
    name = body.get("name", _name("bad"))
    answer_status, answer = _make_token(stack, {"name": name, "expiry": 30} | body)
    assert answer_status == status and message in answer["message"], answer
    assert not isinstance(name, str) or not name or stack.tokens.find_by_name(name) is None


def test_a_token_name_is_taken_once(stack: Stack) -> None:
    name = _name()
    assert _make_token(stack, {"name": name})[0] == 201
    status, answer = _make_token(stack, {"name": name})
    assert status == 409 and f"A token named '{name}' already exists" in answer["message"]


SOON = (date.today() + timedelta(days=2)).isoformat()  # before the tests' own non-admin tokens expire


def test_a_token_cannot_make_a_token_with_more_rights_than_itself(stack: Stack) -> None:
    # The sales token holds the sales group and nothing more
    assert _make_token(stack, {"name": _name(), "groups": ["*"], "expiry": SOON}, auth="sales")[0] == 403
    admin = {"name": _name(), "groups": ["sales"], "permissions": ["admin"], "expiry": SOON}
    status, answer = _make_token(stack, admin, auth="sales")
    assert status == 403 and "lacks permission 'admin'" in answer["message"]
    grant = {"scope": "allDocuments", "accessMode": 2}
    status, answer = _make_token(stack, admin | {"name": _name(), "permissions": [grant]}, auth="sales")
    assert status == 403 and "lacks allDocuments permission" in answer["message"]
    # Within its rights it may (a personal token), and it sees and manages only its own
    mine = _name("mine")
    soon = SOON
    status, made = _make_token(stack, {"name": mine, "groups": ["sales"], "expiry": soon}, auth="sales")
    assert status == 201, made
    listed = stack.send("GET", "/api/tokens/", auth="sales")[1]["tokens"]
    assert [t["name"] for t in listed] == [mine]
    assert stack.send("GET", "/api/tokens/test-admin", auth="sales")[0] == 404
    assert stack.send("DELETE", "/api/tokens/test-admin", auth="sales")[0] == 404
    assert stack.send("POST", "/api/tokens/test-admin/deactivate", auth="sales")[0] == 404
    assert stack.send("GET", f"/api/tokens/{mine}", auth="sales")[0] == 200
    # The admin sees every token
    assert mine in [t["name"] for t in stack.send("GET", "/api/tokens/")[1]["tokens"]]


def test_every_report_is_not_membership_a_star_token_cannot_hand_on_a_group_carrying_more(stack: Stack) -> None:
    # Found: a token of group * with no permissions made itself a token in a group carrying admin
    carrier = _name("carrier")
    group = stack.send("POST", "/api/usergroups/", {"name": carrier})[1]["group"]
    stack.send("POST", f"/api/usergroups/{group['id']}/permissions", {"optimisticLock": 1, "permissions": ["admin"]})
    stack.api.cold_start("AuthFunction")
    status, answer = _make_token(stack, {"name": _name(), "groups": [carrier], "expiry": SOON}, auth="reader")
    assert status == 403 and f"group '{carrier}', which carries permission 'admin'" in answer["message"]
    # A group that carries nothing more than the reader holds it may hand on
    plain = stack.send("POST", "/api/usergroups/", {"name": _name("plain")})[1]["group"]["name"]
    assert _make_token(stack, {"name": _name(), "groups": [plain], "expiry": SOON}, auth="reader")[0] == 201


def test_a_token_cannot_outlive_the_token_that_makes_it(stack: Stack) -> None:
    status, answer = _make_token(stack, {"name": _name(), "groups": ["sales"], "expiry": 90}, auth="sales")
    assert status == 400 and "cannot outlive the token that makes it" in answer["message"]


def test_a_users_personal_tokens_go_when_its_password_or_groups_change(stack: Stack) -> None:
    for change in ("password", "groups", "permissions"):
        user = stack.new_user(groups=[1], permissions=["refresh_data"])
        bearer = stack.bearer_of(user["userName"])
        made = _make_token(stack, {"name": _name("pat"), "groups": ["finance"]}, auth=bearer)
        assert made[0] == 201, made
        if change == "password":
            stack.send("PUT", f"/api/users/{user['id']}/password", {"password": "a new long password"})
        elif change == "groups":
            stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "groupsId": []})
        else:
            body = {"optimisticLock": 1, "permissions": ["refresh_data"]}
            stack.send("POST", f"/api/users/{user['id']}/permissions/delete", body)
        token = stack.tokens.find_by_name(made[1]["token"]["name"])
        assert token is not None and token.active is False, change
        assert stack.get("/api/server_time/", auth=made[1]["headers"]["bearer"]).status == 401, change


def test_a_body_nested_too_deeply_is_a_400(stack: Stack) -> None:
    response = stack.api.handle(
        "POST",
        "/api/tokens/",
        [("Authorization", stack.headers["admin"]), ("Content-Type", "application/json")],
        b"[" * 100_000,
    )
    assert response.status == 400 and b"nested too deeply" in response.body


def test_whether_another_user_exists_is_not_told_to_a_non_admin(stack: Stack) -> None:
    user = stack.new_user()
    bearer = stack.bearer_of(user["userName"])
    existing = stack.new_user()["id"]
    for target in (existing, 987654):
        assert stack.send("GET", f"/api/users/{target}", auth=bearer)[0] == 403
        assert stack.send("PUT", f"/api/users/{target}/password", {"password": "x" * 20}, auth=bearer)[0] == 403


def test_a_deactivated_token_is_refused_at_once_and_works_again_when_activated(stack: Stack) -> None:
    name = _name()
    made = _make_token(stack, {"name": name})[1]
    header = made["headers"]["bearer"]
    assert stack.get("/api/server_time/", auth=header).status == 200  # its decision is cached now
    assert stack.send("POST", f"/api/tokens/{name}/deactivate")[1]["token"]["active"] == "N"
    refused = stack.get("/api/server_time/", auth=header)
    assert refused.status == 401 and b"Token deactivated" in refused.body
    assert stack.send("POST", f"/api/tokens/{name}/activate")[1]["token"]["active"] == "Y"
    assert stack.get("/api/server_time/", auth=header).status == 200  # the cached refusal was flushed


def test_a_deleted_token_is_gone_with_its_api_key_and_what_it_made_is_deactivated(stack: Stack) -> None:
    parent = _name("parent")
    made = _make_token(stack, {"name": parent, "groups": ["*"]})[1]
    child = _name("child")
    assert _make_token(stack, {"name": child, "groups": ["*"], "expiry": 30}, auth=made["headers"]["basic"])[0] == 201
    key_id = stack.tokens.find_by_name(parent).usage_key_id  # type: ignore[union-attr]
    assert key_id in stack.usage.member_ids()
    status, answer = stack.send("DELETE", f"/api/tokens/{parent}")
    assert status == 200 and answer == {"ok": True, "message": f"Token '{parent}' deleted"}
    assert stack.send("GET", f"/api/tokens/{parent}")[0] == 404
    assert stack.send("DELETE", f"/api/tokens/{parent}")[0] == 404
    assert key_id not in stack.usage.member_ids()
    assert stack.tokens.find_by_name(child).active is False  # type: ignore[union-attr]
    stack.api.cold_start("AuthFunction")
    assert stack.get("/api/server_time/", auth=made["headers"]["basic"]).status == 401


def test_a_token_that_is_not_admin_is_refused_on_every_admin_endpoint(stack: Stack) -> None:
    user = stack.new_user()
    group = stack.send("POST", "/api/usergroups/", {"name": _name("g")})[1]["group"]
    calls = [
        ("GET", "/api/users/", None),
        ("POST", "/api/users/", {"userName": _name("u"), "password": "x" * 20}),
        ("GET", f"/api/users/{user['id']}", None),
        ("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "firstName": "Eve"}),
        ("DELETE", f"/api/users/{user['id']}", None),
        ("PUT", f"/api/users/{user['id']}/password", {"password": "y" * 20}),
        ("GET", f"/api/users/{user['id']}/permissions", None),
        ("POST", f"/api/users/{user['id']}/permissions", {"optimisticLock": 1, "permissions": ["admin"]}),
        ("POST", f"/api/users/{user['id']}/permissions/delete", {"optimisticLock": 1, "permissions": []}),
        ("GET", "/api/usergroups/", None),
        ("POST", "/api/usergroups/", {"name": _name("g")}),
        ("GET", f"/api/usergroups/{group['id']}", None),
        ("PUT", f"/api/usergroups/{group['id']}", {"optimisticLock": 1, "name": _name("g")}),
        ("DELETE", f"/api/usergroups/{group['id']}", None),
        ("GET", f"/api/usergroups/{group['id']}/permissions", None),
        ("POST", f"/api/usergroups/{group['id']}/permissions", {"optimisticLock": 1, "permissions": ["admin"]}),
        ("POST", f"/api/usergroups/{group['id']}/permissions/delete", {"optimisticLock": 1, "permissions": []}),
    ]
    for method, path, body in calls:
        status, answer = stack.send(method, path, body, auth="reader")
        assert (status == 403 and answer["ok"] is False and "not an admin" in answer["message"]) or (
            status == 403 and "lacks the 'admin' permission" in answer["message"]
        ), (method, path, status, answer)
    assert stack.send("GET", f"/api/users/{user['id']}")[1]["user"]["optimisticLock"] == 1  # nothing changed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tokens/no-such-token"),
        ("DELETE", "/api/tokens/no-such-token"),
        ("POST", "/api/tokens/no-such-token/deactivate"),
        ("POST", "/api/tokens/no-such-token/activate"),
        ("GET", "/api/tokens/bad%20name"),
        ("GET", "/api/users/999999"),
        ("PUT", "/api/users/999999"),
        ("DELETE", "/api/users/999999"),
        ("PUT", "/api/users/999999/password"),
        ("GET", "/api/users/999999/permissions"),
        ("POST", "/api/users/999999/permissions"),
        ("POST", "/api/users/999999/permissions/delete"),
        ("GET", "/api/users/abc"),
        ("GET", "/api/usergroups/999999"),
        ("PUT", "/api/usergroups/999999"),
        ("DELETE", "/api/usergroups/999999"),
        ("GET", "/api/usergroups/999999/permissions"),
        ("POST", "/api/usergroups/999999/permissions"),
        ("POST", "/api/usergroups/999999/permissions/delete"),
        ("GET", "/api/usergroups/-1"),
    ],
)
def test_an_unknown_id_on_every_path_is_404(stack: Stack, method: str, path: str) -> None:
    bodies = {
        "/permissions": {"optimisticLock": 1, "permissions": []},
        "/password": {"password": "a long enough password"},
    }
    body = next((b for suffix, b in bodies.items() if suffix in path), None)
    if body is None and method == "PUT":
        body = {"optimisticLock": 1, "name": "x"} if "usergroups" in path else {"optimisticLock": 1}
    status, answer = stack.send(method, path, body)
    assert status == 404 and answer["ok"] is False and "Unknown" in answer["message"], answer


# Groups and users (seed 001)


def test_group_permissions_are_added_read_and_removed_with_the_version(stack: Stack) -> None:
    status, made = stack.send("POST", "/api/usergroups/", {"name": _name("g")})
    assert status == 201 and made["group"]["optimisticLock"] == 1
    group = made["group"]
    grant = {"scope": "document", "accessMode": 2, "entityId": stack.report("gst-balance").id}
    status, added = stack.send(
        "POST",
        f"/api/usergroups/{group['id']}/permissions",
        {"optimisticLock": 1, "permissions": [grant, "refresh_data"]},
    )
    assert status == 200 and added["optimisticLock"] == 2
    assert added["permissions"] == [grant, {"scope": "refresh_data"}]
    assert stack.send("GET", f"/api/usergroups/{group['id']}/permissions")[1]["permissions"] == added["permissions"]
    removed = stack.send(
        "POST",
        f"/api/usergroups/{group['id']}/permissions/delete",
        {"optimisticLock": 2, "permissions": ["refresh_data"]},
    )[1]
    assert removed["permissions"] == [grant] and removed["optimisticLock"] == 3


def test_a_stale_optimistic_lock_is_409_and_changes_nothing(stack: Stack) -> None:
    user = stack.new_user(firstName="Ada")
    first = stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "firstName": "Grace"})
    assert first[0] == 200 and first[1]["user"]["optimisticLock"] == 2
    status, answer = stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "lastName": "Hopper"})
    assert status == 409 and "optimisticLock 1 is not the current version (2)" in answer["message"]
    assert stack.send("GET", f"/api/users/{user['id']}")[1]["user"]["lastName"] == ""
    stale = stack.send("POST", f"/api/users/{user['id']}/permissions", {"optimisticLock": 1, "permissions": ["admin"]})
    assert stale[0] == 409 and stack.send("GET", f"/api/users/{user['id']}/permissions")[1]["permissions"] == []


def test_of_two_concurrent_updates_from_one_version_exactly_one_lands(stack: Stack) -> None:
    # Given a user read once, at version 1, by two writers at the same instant
    store = DynamoIdentityStore(stack.names["IdentityTable"])
    user_id = stack.new_user()["id"]
    read = store.user(user_id)
    assert read is not None and read.version == 1
    results: list[str] = []
    barrier = threading.Barrier(2)

    def write(first_name: str) -> None:
        from msgspec.structs import replace

        changed = replace(read, first_name=first_name, version=2)
        barrier.wait()
        try:
            store.replace_user(changed, 1)
            results.append(first_name)
        except VersionConflict:
            results.append("conflict")

    threads = [threading.Thread(target=write, args=(name,)) for name in ("Left", "Right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one landed, and the stored user is that one
    assert sorted(results).count("conflict") == 1, results
    winner = next(r for r in results if r != "conflict")
    stored = store.user(user_id)
    assert stored is not None and stored.first_name == winner and stored.version == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"password": "short"}, 400, "at least 12 characters"),
        ({"password": " " * 20}, 400, "must not be blank"),
        ({"password": "p" * 300}, 400, "at most 256 characters"),
        ({"userName": "has space"}, 400, "userName must be"),
        ({"userName": ""}, 400, "userName must be"),
        ({"email": "not-an-address"}, 400, "email must be an address"),
        ({"groupsId": [987654]}, 400, "Unknown user groups [987654]"),
        ({"accountType": "root"}, 400, "Invalid 'accountType'"),
        ({"permissions": [{"scope": "nowhere", "accessMode": 1}]}, 400, "Unknown permission or scope"),
        ({"optimisticLock": 3}, 400, "Unknown field 'optimisticLock'"),
        ({"userName": "guest"}, 400, "The guest account is the user 'guest' with a blank password"),
    ],
)
def test_bad_users_are_refused(stack: Stack, body: dict[str, Any], status: int, message: str) -> None:
    request = {"userName": _name("u"), "password": "a long enough password"} | body
    answer_status, answer = stack.send("POST", "/api/users/", request)
    assert answer_status == status and message in answer["message"], answer


def test_a_user_name_is_taken_once_in_any_letter_case_and_a_password_is_never_shown(stack: Stack) -> None:
    user = stack.new_user(password="the first password")
    assert "password" not in str(user).lower()
    again = {"userName": user["userName"].upper(), "password": "another long password"}
    status, answer = stack.send("POST", "/api/users/", again)
    assert status == 409 and "already exists" in answer["message"]
    listed = stack.send("GET", "/api/users/")[1]
    assert "the first password" not in str(listed) and "scrypt" not in str(listed)


def test_a_user_cannot_raise_its_own_permissions_or_groups_but_reads_itself(stack: Stack) -> None:
    user = stack.new_user()
    bearer = stack.bearer_of(user["userName"])
    assert stack.send("GET", f"/api/users/{user['id']}", auth=bearer)[0] == 200
    assert stack.send("GET", f"/api/users/{user['id']}/permissions", auth=bearer)[0] == 200
    raised = stack.send(
        "POST", f"/api/users/{user['id']}/permissions", {"optimisticLock": 1, "permissions": ["admin"]}, bearer
    )
    assert raised[0] == 403
    moved = stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "groupsId": []}, auth=bearer)
    assert moved[0] == 403
    assert stack.send("POST", "/api/tokens/", {"name": _name(), "permissions": ["admin"]}, auth=bearer)[0] == 403
    assert stack.send("GET", "/api/users/", auth=bearer)[0] == 403


def test_a_group_named_by_a_token_keeps_its_name_and_a_group_with_members_stays(stack: Stack) -> None:
    name = _name("g")
    group = stack.send("POST", "/api/usergroups/", {"name": name})[1]["group"]
    assert _make_token(stack, {"name": _name(), "groups": [name]})[0] == 201
    status, answer = stack.send("PUT", f"/api/usergroups/{group['id']}", {"optimisticLock": 1, "name": name + "-x"})
    assert status == 409 and "is named by the token" in answer["message"]
    member_group = stack.send("POST", "/api/usergroups/", {"name": _name("m")})[1]["group"]
    stack.new_user(groups=[member_group["id"]])
    status, answer = stack.send("DELETE", f"/api/usergroups/{member_group['id']}")
    assert status == 409 and "has members" in answer["message"]
    free = stack.send("POST", "/api/usergroups/", {"name": _name("f")})[1]["group"]
    assert stack.send("DELETE", f"/api/usergroups/{free['id']}", {"optimisticLock": 1})[0] == 200
    assert stack.send("GET", f"/api/usergroups/{free['id']}")[0] == 404
    duplicate = stack.send("POST", "/api/usergroups/", {"name": name.upper()})
    assert duplicate[0] == 409 and "already exists" in duplicate[1]["message"]


def test_a_users_groups_and_permissions_decide_what_it_may_run(stack: Stack) -> None:
    gst = stack.report("gst-balance")
    group = stack.send("POST", "/api/usergroups/", {"name": _name("readers")})[1]["group"]
    grant = {"scope": "document", "accessMode": 2, "entityId": gst.id}
    stack.send("POST", f"/api/usergroups/{group['id']}/permissions", {"optimisticLock": 1, "permissions": [grant]})
    member = stack.new_user(groups=[group["id"]])
    outsider = stack.new_user()
    member_bearer, outsider_bearer = stack.bearer_of(member["userName"]), stack.bearer_of(outsider["userName"])
    query = f"/api/call/{gst.id}/?date_from=2025-07-01&date_to=2025-07-31"
    assert stack.get(query, auth=member_bearer).status == 200
    refused = stack.get(query, auth=outsider_bearer)
    assert refused.status == 403 and b"user '" in refused.body and b"may not run this report" in refused.body
    listed = stack.send("GET", "/api/reports/", auth=member_bearer)[1]["reports"]
    assert gst.id in [r["id"] for r in listed]
