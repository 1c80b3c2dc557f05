"""DynamoDB's writes are atomic (a conditional write's check and write are one step); moto's are not:
two threads may both pass a condition before either writes. Each write is made one step here, so that
a race the table refuses in AWS is refused locally too (two updates from one version: one lands)."""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto is the local stack's, not Lambda's

    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "_atomic", False):
            setattr(DynamoDBBackend, name, _atomic(method))


def _atomic(method: Any) -> Any:
    @functools.wraps(method)
    def one_step(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    one_step._atomic = True  # type: ignore[attr-defined]
    return one_step
