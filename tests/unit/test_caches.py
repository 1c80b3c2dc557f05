"""Per-container caches: what they keep, for how long, and what they never keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from reportserver.domain.errors import Unauthenticated
from reportserver.domain.tokens import ApiToken, authenticate, basic_header, hash_secret
from reportserver.store.tokens import CachedTokenStore
from reportserver.store.ttl_cache import TtlCache

from tests.fakes import MemoryTokenStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_loaded_once_within_its_ttl_and_again_after() -> None:
    clock, loads = Clock(), []
    cache: TtlCache[str] = TtlCache(10, clock=clock)
    load = lambda: loads.append(1) or "value"  # noqa: E731
    assert cache.get_or_load("k", load) == "value"
    clock.now += 9.9
    cache.get_or_load("k", load)
    assert len(loads) == 1
    clock.now += 0.2
    cache.get_or_load("k", load)
    assert len(loads) == 2


def test_misses_are_not_kept_when_told_so() -> None:
    cache: TtlCache[str] = TtlCache(10, keep_misses=False, clock=Clock())
    assert cache.get_or_load("k", lambda: None) is None
    assert cache.get_or_load("k", lambda: "now it exists") == "now it exists"


def test_the_oldest_entries_leave_first_past_the_bound() -> None:
    cache: TtlCache[int] = TtlCache(10, max_entries=2, clock=Clock())
    for key in ("a", "b", "c"):
        cache.get_or_load(key, lambda key=key: ord(key))
    assert cache.get_or_load("a", lambda: -1) == -1  # "a" was dropped and loaded again
    assert cache.get_or_load("c", lambda: -1) == ord("c")


def test_a_zero_ttl_keeps_nothing() -> None:
    cache: TtlCache[str] = TtlCache(0, clock=Clock())
    cache.get_or_load("k", lambda: "first")
    assert cache.get_or_load("k", lambda: "second") == "second"


def test_cached_tokens_are_still_checked_for_expiry_on_every_request() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    inner = MemoryTokenStore()
    inner.tokens["bot"] = ApiToken(
        name="bot",
        secret_hash=hash_secret("rs_s------------------------------------------"),
        groups=["*"],
        expires_at=now + timedelta(seconds=5),
        created_at=now,
        created_by="t",
    )
    cached = CachedTokenStore(inner, ttl_seconds=30)
    header = basic_header("bot", "rs_s------------------------------------------")
    assert authenticate(header, cached, now).name == "bot"
    with pytest.raises(Unauthenticated, match="Token expired"):
        authenticate(header, cached, now + timedelta(seconds=6))


def test_a_token_created_after_a_miss_works_at_once() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    inner = MemoryTokenStore()
    cached = CachedTokenStore(inner, ttl_seconds=30)
    assert cached.find_by_name("late") is None
    inner.tokens["late"] = ApiToken(
        name="late", secret_hash="h", groups=["*"], expires_at=now, created_at=now, created_by="t"
    )
    assert cached.find_by_name("late") is not None
