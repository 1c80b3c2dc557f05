"""Embedding a report (seed 003): single-use nonces, the view's session cookie, and what neither opens."""

from __future__ import annotations

import json
import threading

import pytest
from reportserver.domain.tokens import generate_secret

from tests.integration.conftest import Stack


def test_a_nonce_opens_the_view_once_and_its_cookie_carries_the_session(stack: Stack) -> None:
    # Given a nonce for one report, made with a token
    status, answer = stack.send("POST", "/api/v1/nonce-tokens/", {"report_id": "sales-summary"})
    assert status == 201 and answer["expires_in"] == 60 and answer["nonce"].startswith("rsn_")
    assert answer["url"] == f"/report/view/sales-summary/?nonce={answer['nonce']}"
    # When the iframe opens it: the session's cookie, and the same page without the nonce
    first = stack.view(f"/report/view/sales-summary/?nonce={answer['nonce']}")
    assert first.status == 302
    headers = dict(first.headers)
    assert headers["Location"] == "/report/view/sales-summary/"
    cookie = headers["Set-Cookie"]
    for attribute in (
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
        "Path=/report/view/sales-summary/",
        "Max-Age=900",
    ):
        assert attribute in cookie, cookie
    session = cookie.split(";")[0].split("=", 1)[1]
    # Then the page renders with the cookie alone, as the html export looks
    page = stack.view("/report/view/sales-summary/", cookie=session)
    assert page.status == 200 and dict(page.headers)["Content-Type"].startswith("text/html")
    assert b"<h1>Sales Summary</h1>" in page.body and b"<table>" in page.body
    assert "script-src" not in dict(page.headers)["Content-Security-Policy"]  # default-src 'none': no scripts
    # And the nonce is spent: its URL again (a replay) is refused
    replay = stack.view(f"/report/view/sales-summary/?nonce={answer['nonce']}")
    assert replay.status == 401 and b"used already" in replay.body


def test_two_requests_racing_with_one_nonce_let_exactly_one_in(stack: Stack) -> None:
    nonce = stack.nonce({"report_id": "sales-summary"})
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def use() -> None:
        barrier.wait()
        statuses.append(stack.view(f"/report/view/sales-summary/?nonce={nonce}").status)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302, 401]


def test_a_nonce_narrowed_to_one_report_opens_no_other(stack: Stack) -> None:
    session = stack.open_view("sales-summary")
    other = stack.view("/report/view/gst-balance/", cookie=session)
    assert other.status == 403 and b"another report" in other.body


def test_a_nonce_carries_at_most_its_makers_rights(stack: Stack) -> None:
    # The sales token may not run gst-balance (finance): no nonce for it
    status, answer = stack.send("POST", "/api/v1/nonce-tokens/", {"report_id": "gst-balance"}, auth="sales")
    assert status == 403 and "may not run this report" in answer["message"]
    # A nonce for whatever it may read opens its reports, not others
    nonce = stack.nonce({}, auth="sales")
    first = stack.view(f"/report/view/sales-summary/?nonce={nonce}")
    assert first.status == 302
    session = dict(first.headers)["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert stack.view("/report/view/gst-balance/", cookie=session).status == 403


def test_fixed_parameters_cannot_be_changed_by_the_viewer(stack: Stack) -> None:
    session = stack.open_view("customer-search", {"parameters": {"name": "smith"}})
    page = stack.view("/report/view/customer-search/", cookie=session)
    assert page.status == 200 and b'name="name" value="smith" readonly' in page.body
    changed = stack.view("/report/view/customer-search/?name=jones", cookie=session)
    assert changed.status == 403 and b"fixed by the page" in changed.body
    same = stack.view("/report/view/customer-search/?name=smith", cookie=session)
    assert same.status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"report_id": "no-such-report"}, "Unknown report"),
        ({"report_id": "customer-search", "parameters": {"name": "a", "min_orders": "many"}}, "must be a whole number"),
        ({"parameters": {"name": "x"}}, "Fixed parameters need a report"),
        ({"expires_in": 3600}, "Invalid 'expires_in'"),
        ({"expires_in": 0}, "Invalid 'expires_in'"),
        ({"report": "x"}, "Unknown field 'report'"),
    ],
)
def test_bad_nonce_requests_are_refused(stack: Stack, body: dict[str, object], message: str) -> None:
    status, answer = stack.send("POST", "/api/v1/nonce-tokens/", body)
    assert status in (400, 404) and message in answer["message"], answer


def test_a_nonce_is_not_a_bearer_token_and_a_cookie_opens_only_the_view(stack: Stack) -> None:
    nonce = stack.nonce({"report_id": "sales-summary"})
    as_bearer = stack.get("/api/call/sales-summary/", auth=f"Bearer {nonce}")
    assert as_bearer.status == 401 and b"A nonce is not a Bearer token" in as_bearer.body
    session = stack.open_view("sales-summary")
    with_cookie = stack.api.handle("GET", "/api/call/sales-summary/", [("Cookie", f"rs_view={session}")], b"")
    assert with_cookie.status == 401 and b"Missing Authorization header" in with_cookie.body
    # And an API token is no way into the view: it takes a nonce or its session
    with_token = stack.api.handle(
        "GET", "/report/view/sales-summary/", [("Authorization", stack.headers["admin"])], b""
    )
    assert with_token.status == 401


@pytest.mark.parametrize(
    "cookie",
    ["rsv_" + "A" * 49, generate_secret("rsv_"), "", "garbage", generate_secret("rsn_")],
)
def test_an_unknown_or_forged_session_cookie_is_refused(stack: Stack, cookie: str) -> None:
    response = stack.view("/report/view/sales-summary/", cookie=cookie or None)
    assert response.status == 401 and json.loads(response.body)["ok"] is False


def test_a_page_beyond_the_last_and_a_bad_page_number(stack: Stack) -> None:
    session = stack.open_view("order-lines", {"parameters": {"row_limit": 250}})
    first = stack.view("/report/view/order-lines/", cookie=session)
    assert first.status == 200 and b"Rows 1-100" in first.body and b"_page=2" in first.body
    third = stack.view("/report/view/order-lines/?_page=3", cookie=session)
    assert b"Rows 201-250" in third.body and b"_page=4" not in third.body
    for bad in ("0", "-1", "x", "99999", "1.5"):
        response = stack.view(f"/report/view/order-lines/?_page={bad}", cookie=session)
        assert response.status == 400 and b"_page" in response.body, bad


def test_revoking_the_maker_ends_its_embed_sessions_and_spare_nonces_at_once(stack: Stack) -> None:
    # Found: a deactivated token's session still answered 200, and its spare nonce opened a new one
    name = f"embedder-{threading.get_ident() % 10_000}-{len(stack.headers)}"
    made = stack.send("POST", "/api/tokens/", {"name": name, "expiry": 30, "groups": ["*"]})[1]
    maker = made["headers"]["basic"]
    session = stack.open_view("sales-summary", auth=maker)
    spare = stack.nonce({"report_id": "sales-summary"}, auth=maker)
    assert stack.view("/report/view/sales-summary/", cookie=session).status == 200
    assert stack.send("POST", f"/api/tokens/{name}/deactivate")[0] == 200
    ended = stack.view("/report/view/sales-summary/", cookie=session)
    assert ended.status == 401 and b"no longer may" in ended.body
    assert stack.view(f"/report/view/sales-summary/?nonce={spare}").status == 401


def test_a_users_embed_ends_when_the_user_is_deactivated(stack: Stack) -> None:
    user = stack.new_user()
    bearer = stack.bearer_of(user["userName"])
    session = stack.open_view("sales-summary", auth=bearer)
    assert stack.view("/report/view/sales-summary/", cookie=session).status == 200
    stack.send("PUT", f"/api/users/{user['id']}", {"optimisticLock": 1, "active": False})
    assert stack.view("/report/view/sales-summary/", cookie=session).status == 401


def test_of_two_threads_taking_one_nonce_from_the_table_exactly_one_gets_it(stack: Stack) -> None:
    # The front door runs one view at a time, as one warm container: the store's own race is shown here
    from reportserver.domain.tokens import hash_secret
    from reportserver.store.identity import DynamoIdentityStore

    store = DynamoIdentityStore(stack.names["IdentityTable"])
    nonce = stack.nonce({"report_id": "sales-summary"})
    taken: list[bool] = []
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        taken.append(store.take_nonce(hash_secret(nonce)) is not None)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [False, True]


def test_two_embeds_on_one_page_keep_two_sessions(stack: Stack) -> None:
    first = stack.nonce({"report_id": "sales-summary"})
    second = stack.nonce({"report_id": "gst-balance"})
    paths = [
        dict(stack.view(f"/report/view/{slug}/?nonce={nonce}").headers)["Set-Cookie"]
        for slug, nonce in (("sales-summary", first), ("gst-balance", second))
    ]
    assert "Path=/report/view/sales-summary/" in paths[0] and "Path=/report/view/gst-balance/" in paths[1]
