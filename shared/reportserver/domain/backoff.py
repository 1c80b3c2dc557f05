"""Failed attempts at a password, counted per key with an exponential back-off (the login, a user's own
password change): after `free` failures each next one holds the key back twice as long, up to `cap`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from reportserver.domain.errors import TooManyRequests


class LoginAttempts(Protocol):
    def failures(self, key: str, now: datetime) -> tuple[int, datetime | None]:
        """Failures counted for `key` and until when it is held back (None: not held)."""
        ...

    def record_failure(self, key: str, now: datetime, hold_until: datetime | None, forget_at: datetime) -> int:
        """Count one more failure atomically; return the new count."""
        ...

    def clear(self, key: str) -> None: ...

    def remember(self, key: str, forget_at: datetime) -> None:
        """Note `key` (an address a user logged in from) until `forget_at`."""
        ...

    def remembered(self, key: str, now: datetime) -> bool: ...


def hold_seconds(count: int, free: int, cap: int) -> int:
    if count < free:
        return 0
    return min(cap, 2 ** (count - free))


def held_for(attempts: LoginAttempts, key: str, now: datetime) -> int:
    """Seconds `key` is still held back (0: not held)."""
    _, until = attempts.failures(key, now)
    if until is None or until <= now:
        return 0
    return max(1, int((until - now).total_seconds() + 0.999))


def count_failure(attempts: LoginAttempts, key: str, now: datetime, free: int, cap: int) -> None:
    count, _ = attempts.failures(key, now)
    hold = hold_seconds(count + 1, free, cap)
    until = now + timedelta(seconds=hold) if hold else None
    attempts.record_failure(key, now, until, now + timedelta(seconds=cap * 4 + 3600))


def refuse_if_held(attempts: LoginAttempts, key: str, now: datetime, what: str) -> None:
    wait = held_for(attempts, key, now)
    if wait:
        raise TooManyRequests(f"Too many wrong {what}; retry in {wait} s", wait)
