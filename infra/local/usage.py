"""API Gateway's throttles for the local front door: the stage's, and each API key's in its usage plan.

API Gateway counts every request against its method's throttle (the stage's MethodSettings: one for a
method named there, else the stage-wide `/*` `*` one, applied to each method on its own) and, on a
method that requires an API key, against the key's usage plan: a token bucket per key that holds
`burst` requests and refills at `rate` per second. A request finds its key (the authorizer's
`usageIdentifierKey`, or the x-api-key header) among the keys of a usage plan of this API's stage; a
key that is missing, disabled or in no such plan is refused (403, INVALID_API_KEY), one over its
bucket is throttled (429, THROTTLED).

The keys and plans are read from API Gateway (moto) itself, where the token CLI creates them, and read
again every few seconds or when a key is not known yet; the buckets live across those reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from reportserver.store import aws
from reportserver.store.usage import listing

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
        method_throttles: dict[tuple[str, str], Throttle],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_id = api_id
        self._stage = stage
        self._clock = clock
        self._lock = threading.Lock()
        self._method_throttles = method_throttles
        self._method_buckets: dict[tuple[str, str], TokenBucket] = {}
        self._keys: dict[str, _PlanKey] = {}
        self._read_at = float("-inf")
        self._misses: dict[str, float] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def admit_method(self, path: str, method: str) -> bool:
        """Whether this method's throttle lets one more request in (every request to it counts, with a
        token or without): its own setting, or the stage-wide one, each method with a bucket of its own."""
        settings = self._method_throttles
        # The most specific setting: this method, this path's any method, this method anywhere, all.
        candidates = ((path, method), (path, "*"), ("/*", method), ("/*", "*"))
        throttle = next((settings[c] for c in candidates if c in settings), None)
        if throttle is None:
            return True
        with self._lock:
            now = self._clock()
            bucket = self._method_buckets.get((path, method))
            if bucket is None:
                bucket = self._method_buckets[(path, method)] = TokenBucket(throttle, now)
            return bucket.take(now)

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
            try:
                self._keys = self._read()
            except Exception as error:  # API Gateway (moto) unreadable: the keys read last stand
                print(f"[usage plans] could not read the keys: {error}", flush=True)
            self._read_at = now  # read or not, not again before the next refresh
            # Buckets of keys gone from every plan go too (memory stays bounded by the plans' keys).
            live = {(found.plan_id, value) for value, found in self._keys.items()}
            self._buckets = {k: b for k, b in self._buckets.items() if k in live}
        found = self._keys.get(key)
        if found is None:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[key] = now
        return found

    def _read(self) -> dict[str, _PlanKey]:
        """Every enabled key of every usage plan of this stage, by its value, as API Gateway holds them."""
        client = aws.apigateway()
        enabled = {item["id"] for item in listing(client.get_api_keys) if item.get("enabled")}
        keys: dict[str, _PlanKey] = {}
        for plan in listing(client.get_usage_plans):
            stages = plan.get("apiStages", [])
            if not any(s.get("apiId") == self._api_id and s.get("stage") == self._stage for s in stages):
                continue
            limits = plan.get("throttle")
            throttle = Throttle(float(limits["rateLimit"]), int(limits["burstLimit"])) if limits else None
            for member in listing(client.get_usage_plan_keys, usagePlanId=plan["id"]):
                # moto keeps a deleted key in its plans; API Gateway does not: only live keys count.
                if member.get("type") == "API_KEY" and member["id"] in enabled:
                    keys[member["value"]] = _PlanKey(plan["id"], throttle)
        return keys
