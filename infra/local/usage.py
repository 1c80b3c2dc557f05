"""API Gateway's throttles for the local front door: the stage's, and each API key's in its usage plan.

API Gateway counts every request against the stage's throttle and, on a method that requires an API
key, against the key's usage plan: a token bucket per key that holds `burst` requests and refills at
`rate` per second. A request finds its key (the authorizer's `usageIdentifierKey`, or the x-api-key
header) among the keys of a usage plan of this API's stage; a key that is missing, disabled or in no
such plan is refused (403, INVALID_API_KEY), one over its bucket is throttled (429, THROTTLED).

The keys and plans are read from API Gateway (moto) itself, where the token CLI creates them, and read
again every few seconds or when a key is not known yet; the buckets live across those reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reportserver.store import aws

from infra.local.template import Throttle

REFRESH_SECONDS = 5.0  # how long a read of the keys and plans is used (a deleted key stops within it)
MISS_RETRY_SECONDS = 1.0  # an unknown key is looked up again at most this often
_TOLERANCE = 1e-9


class TokenBucket:
    """`burst` requests at once, refilled at `rate` per second: API Gateway's throttling algorithm."""

    def __init__(self, throttle: Throttle, now: float) -> None:
        self.throttle = throttle
        self._tokens = float(throttle.burst)
        self._at = now

    def take(self, now: float) -> bool:
        # A clock that steps back refills nothing, and later refills only from the latest time seen.
        elapsed = max(0.0, now - self._at)
        self._tokens = min(float(self.throttle.burst), self._tokens + elapsed * self.throttle.rate)
        self._at = max(self._at, now)
        # A request exactly 1/rate after the last one is due a whole token; floating point may make it
        # 0.999...: a tolerance far below one request keeps the arithmetic from refusing it.
        if self._tokens >= 1.0 - _TOLERANCE:
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False


@dataclass(frozen=True)
class _PlanKey:
    plan_id: str
    throttle: Throttle | None


class Throttles:
    """The throttles of one stage of one API; `admit` says why a request may not go on, or None."""

    def __init__(
        self,
        api_id: str,
        stage: str,
        stage_throttle: Throttle | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_id = api_id
        self._stage = stage
        self._clock = clock
        self._lock = threading.Lock()
        self._stage_bucket = TokenBucket(stage_throttle, clock()) if stage_throttle else None
        self._keys: dict[str, _PlanKey] = {}
        self._read_at = float("-inf")
        self._misses: dict[str, float] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def admit_stage(self) -> bool:
        """Whether the stage's throttle lets one more request in (every request counts)."""
        if self._stage_bucket is None:
            return True
        with self._lock:
            return self._stage_bucket.take(self._clock())

    def admit_key(self, key: str | None) -> str | None:
        """None if the key may make this request; else the gateway response's type that refuses it."""
        if not key:
            return "INVALID_API_KEY"
        now = self._clock()
        with self._lock:
            found = self._key(key, now)
            if found is None:
                return "INVALID_API_KEY"
            if found.throttle is None:
                return None
            bucket = self._buckets.get((found.plan_id, key))
            if bucket is None or bucket.throttle != found.throttle:
                bucket = self._buckets[(found.plan_id, key)] = TokenBucket(found.throttle, now)
            return None if bucket.take(now) else "THROTTLED"

    def _key(self, key: str, now: float) -> _PlanKey | None:
        stale = now - self._read_at >= REFRESH_SECONDS
        if stale or (key not in self._keys and now - self._misses.get(key, float("-inf")) >= MISS_RETRY_SECONDS):
            self._keys = self._read(now)
        found = self._keys.get(key)
        if found is None:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[key] = now
        return found

    def _read(self, now: float) -> dict[str, _PlanKey]:
        """Every enabled key of every usage plan of this stage, by its value, as API Gateway holds them."""
        client = aws.apigateway()
        enabled = {item["id"] for item in _items(client.get_api_keys) if item.get("enabled")}
        keys: dict[str, _PlanKey] = {}
        for plan in _items(client.get_usage_plans):
            stages = plan.get("apiStages", [])
            if not any(s.get("apiId") == self._api_id and s.get("stage") == self._stage for s in stages):
                continue
            limits = plan.get("throttle")
            throttle = Throttle(float(limits["rateLimit"]), int(limits["burstLimit"])) if limits else None
            for member in _items(client.get_usage_plan_keys, usagePlanId=plan["id"]):
                # moto keeps a deleted key in its plans; API Gateway does not: only live keys count.
                if member.get("type") == "API_KEY" and member["id"] in enabled:
                    keys[member["value"]] = _PlanKey(plan["id"], throttle)
        self._read_at = now
        return keys


def _items(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of an API Gateway listing, following `position`."""
    while True:
        page = call(limit=500, **request)
        yield from page.get("items", [])
        if not page.get("position"):
            return
        request["position"] = page["position"]
