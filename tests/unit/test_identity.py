"""Passwords, the password grant's answers and its back-off, and access tokens, over in-memory stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reportserver.domain.errors import Unauthenticated
from reportserver.domain.identity import User
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.sessions import (
    PER_ADDRESS_MAX_SECONDS,
    PER_USER_MAX_SECONDS,
    OAuthError,
    PasswordGrant,
    authenticate_access_token,
)

from tests.fakes import MemoryIdentity

CHEAP = PasswordHasher(n=2**10)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class CountingHasher(PasswordHasher):
    """Counts the scrypt runs: the same work for every login, whoever it names."""

    calls = 0

    def verify(self, stored: str | None, password: str) -> bool:
        CountingHasher.calls += 1
        return super().verify(stored, password)


def _grant(hasher: PasswordHasher = CHEAP) -> tuple[PasswordGrant, MemoryIdentity, Clock]:
    store, clock = MemoryIdentity(), Clock()
    store.create_user(
        User(id=1, user_name="ada", password_hash=hasher.hash("correct horse battery"), created_at=NOW, updated_at=NOW)
    )
    return PasswordGrant(store, store, store, hasher, clock), store, clock  # type: ignore[arg-type]


def _form(user: str, password: str) -> dict[str, list[str]]:
    return {"grant_type": ["password"], "username": [user], "password": [password]}


@settings(max_examples=25)
@given(st.text(min_size=12, max_size=80).filter(lambda p: p.strip()), st.text(min_size=1, max_size=4))
def test_a_password_verifies_and_any_other_does_not(password: str, extra: str) -> None:
    stored = CHEAP.hash(password)
    assert stored.startswith("scrypt$1024$8$1$") and password not in stored
    assert CHEAP.verify(stored, password)
    assert not CHEAP.verify(stored, password + extra)
    assert not CHEAP.verify(stored, password[:-1])


def test_each_hash_has_its_own_salt_and_keeps_its_cost() -> None:
    first, second = CHEAP.hash("the same password"), CHEAP.hash("the same password")
    assert first != second
    # A hash made at an older cost still verifies after the cost is raised
    assert PasswordHasher(n=2**12).verify(first, "the same password")


@pytest.mark.parametrize("stored", [None, "", "scrypt$x", "md5$abc", "scrypt$1024$8$1$zz$zz"])
def test_a_missing_or_unreadable_hash_never_verifies(stored: str | None) -> None:
    assert not CHEAP.verify(stored, "any password at all")


def test_a_right_password_gives_an_access_token_that_names_the_user() -> None:
    grant, store, clock = _grant()
    answer = grant.token(_form("ADA", "correct horse battery"), "10.0.0.1")
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 1200
    principal = authenticate_access_token(str(answer["access_token"]), store, store, clock.now)  # type: ignore[arg-type]
    assert principal.kind == "user" and principal.name == "ada" and principal.user_id == 1
    with pytest.raises(Unauthenticated, match="Access token expired"):
        authenticate_access_token(str(answer["access_token"]), store, store, clock.now + timedelta(seconds=1200))  # type: ignore[arg-type]


def test_an_unknown_user_costs_one_scrypt_as_a_wrong_password_does() -> None:
    hasher = CountingHasher(n=2**10)
    grant, _, _ = _grant(hasher)
    for user in ("ada", "nobody"):
        CountingHasher.calls = 0
        with pytest.raises(OAuthError) as refused:
            grant.token(_form(user, "wrong password here"), f"10.0.0.{len(user)}")
        assert CountingHasher.calls == 1
        assert (refused.value.code, refused.value.message) == ("invalid_grant", "Wrong user name or password")


def test_failures_from_one_address_back_off_exponentially_up_to_a_cap() -> None:
    grant, _, clock = _grant()
    waits: list[int] = []
    for _ in range(16):
        try:
            grant.token(_form("ada", "a wrong password"), "10.9.9.9")
        except OAuthError as error:
            if error.status == 429:
                assert error.retry_after is not None
                waits.append(error.retry_after)
                clock.now += timedelta(seconds=error.retry_after)  # waits as told, then guesses again
    assert waits[:4] == [1, 2, 4, 8] and max(waits) <= PER_ADDRESS_MAX_SECONDS
    assert waits == sorted(waits)
    # Another address holds the user back for seconds at most, however many guesses came before
    other_address_held: list[int] = []
    for _ in range(3):
        try:
            grant.token(_form("ada", "correct horse battery"), "10.1.1.1")
            break
        except OAuthError as error:
            other_address_held.append(error.retry_after or 0)
            clock.now += timedelta(seconds=error.retry_after or 0)
    assert all(wait <= PER_USER_MAX_SECONDS for wait in other_address_held)


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]), min_size=1, max_size=40))
def test_no_hold_is_ever_longer_than_its_cap(addresses: list[str]) -> None:
    grant, store, clock = _grant()
    for address in addresses:
        try:
            grant.token(_form("ada", "a wrong password"), address)
        except OAuthError as error:
            if error.status == 429:
                assert error.retry_after is not None and error.retry_after <= PER_ADDRESS_MAX_SECONDS
    user_hold = store.failures("user:ada", clock.now)[1]
    assert user_hold is None or user_hold - clock.now <= timedelta(seconds=PER_USER_MAX_SECONDS)  # type: ignore[operator]


def test_a_password_change_or_a_deactivation_outdates_access_tokens() -> None:
    grant, store, clock = _grant()
    token = str(grant.token(_form("ada", "correct horse battery"), "10.0.0.1")["access_token"])
    user: Any = store.users_by_id[1]
    user.credential_epoch += 1
    with pytest.raises(Unauthenticated, match="Access token revoked"):
        authenticate_access_token(token, store, store, clock.now)  # type: ignore[arg-type]
    user.credential_epoch -= 1
    user.active = False
    with pytest.raises(Unauthenticated, match="User deactivated"):
        authenticate_access_token(token, store, store, clock.now)  # type: ignore[arg-type]


def test_a_flood_from_many_addresses_never_locks_the_user_out_of_an_address_it_used() -> None:
    # Found: one wrong guess every 30 s from ever new addresses held the user name back for good
    grant, _, clock = _grant()
    assert grant.token(_form("ada", "correct horse battery"), "10.0.0.1")["token_type"] == "bearer"
    for attacker in range(40):
        clock.now += timedelta(seconds=31)
        with pytest.raises(OAuthError):
            grant.token(_form("ada", f"guess {attacker}"), f"192.0.2.{attacker}")
    # The user name is held back everywhere else, for 30 s at most ...
    with pytest.raises(OAuthError) as held:
        grant.token(_form("ada", "correct horse battery"), "10.7.7.7")
    assert held.value.status == 429 and (held.value.retry_after or 0) <= PER_USER_MAX_SECONDS
    # ... but not from the address the user logged in from before
    assert grant.token(_form("ada", "correct horse battery"), "10.0.0.1")["token_type"] == "bearer"


def test_a_non_admin_makes_at_most_its_quota_of_tokens() -> None:
    from reportserver.domain.access import Grant, Principal
    from reportserver.domain.errors import Forbidden
    from reportserver.domain.token_admin import MAX_OWN_TOKENS, TokenAdmin, TokenRequest

    from tests.fakes import MemoryTokenStore, MemoryUsageKeys

    admin = TokenAdmin(MemoryTokenStore(), MemoryUsageKeys(), lambda: NOW, lambda: [])
    maker = Principal("user", "ada", ("*",), (), "user-1", user_id=1)
    for number in range(MAX_OWN_TOKENS):
        admin.create(maker, TokenRequest(name=f"pat-{number}", expiry=30))
    with pytest.raises(Forbidden, match=f"has made {MAX_OWN_TOKENS} tokens"):
        admin.create(maker, TokenRequest(name="one-more", expiry=30))
    boss = Principal("token", "boss", ("*",), (Grant("admin"),), "boss-id")
    admin.create(boss, TokenRequest(name="the-admins", expiry=30))  # an admin has no such quota


@pytest.mark.parametrize(("enabled", "password", "works"), [(True, "", True), (True, "x", False), (False, "", False)])
def test_the_guest_account_logs_in_with_a_blank_password_only_when_on(
    enabled: bool, password: str, works: bool
) -> None:
    import dataclasses

    grant, store, clock = _grant()
    store.create_user(User(id=2, user_name="guest", groups_id=[], created_at=NOW, updated_at=NOW))
    grant = dataclasses.replace(grant, guest_enabled=enabled)
    if not works:
        with pytest.raises(OAuthError, match="Wrong user name or password"):
            grant.token(_form("guest", password), "10.0.0.9")
        return
    token = str(grant.token(_form("guest", password), "10.0.0.9")["access_token"])
    principal = authenticate_access_token(token, store, store, clock.now, guest_enabled=True)  # type: ignore[arg-type]
    assert principal.name == "guest" and principal.grants == ()
    with pytest.raises(Unauthenticated, match="guest account is off"):
        authenticate_access_token(token, store, store, clock.now, guest_enabled=False)  # type: ignore[arg-type]


def test_an_expired_nonce_and_an_ended_session_are_refused() -> None:
    from reportserver.domain.access import Grant, Principal
    from reportserver.domain.embed import EmbedGrant, ViewSessions, create_nonce

    class Embeds:
        def __init__(self) -> None:
            self.nonces: dict[str, EmbedGrant] = {}
            self.views: dict[str, EmbedGrant] = {}

        def put_nonce(self, key: str, grant: EmbedGrant) -> None:
            self.nonces[key] = grant

        def take_nonce(self, key: str) -> EmbedGrant | None:
            return self.nonces.pop(key, None)

        def put_view(self, key: str, grant: EmbedGrant) -> None:
            self.views[key] = grant

        def view(self, key: str) -> EmbedGrant | None:
            return self.views.get(key)

    store, clock = Embeds(), Clock()
    maker = Principal("token", "site", ("*",), (Grant("admin"),), "site-id")
    sessions = ViewSessions(store, clock, session_seconds=900)
    late, _ = create_nonce(store, maker, None, {}, clock.now, seconds=60)
    clock.now += timedelta(seconds=61)
    with pytest.raises(Unauthenticated, match="nonce has expired"):
        sessions.open(late, None)
    fresh, _ = create_nonce(store, maker, None, {}, clock.now, seconds=60)
    _, cookie = sessions.open(fresh, None)
    assert cookie is not None and sessions.open(None, cookie)[1] is None
    clock.now += timedelta(seconds=900)
    with pytest.raises(Unauthenticated, match="embed session has ended"):
        sessions.open(None, cookie)
