"""A small per-container cache with a time to live, for lookups that change rarely (tokens, reports)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Keeps each loaded value for `ttl_seconds`, at most `max_entries` of them (oldest out first).

    `None` results are not kept unless `keep_misses`: a token created a second ago must work at once.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 1024,
        keep_misses: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._keep_misses = keep_misses
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V | None]] = OrderedDict()

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def get_or_load(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        if self._ttl > 0 and (value is not None or self._keep_misses):
            self._entries[key] = (now + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value
