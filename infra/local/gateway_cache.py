"""API Gateway's FlushStageAuthorizersCache, answered for the local front door: moto keeps no authorizer
cache and does not know the call, so it is added to moto here and empties the front door's own cache,
as the call empties the stage's cache in AWS (IAM checks it as `apigateway:DELETE` on its path)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

_PATH = "{0}/restapis/(?P<function_id>[^/]+)/stages/(?P<stage_name>[^/]+)/cache/authorizers$"
_lock = threading.Lock()
_flushers: dict[tuple[str, str], list[weakref.WeakMethod[Callable[[], None]]]] = {}


def install() -> None:
    """Teach moto the call; before moto serves API Gateway (its server reads its paths once)."""
    from moto.apigateway import urls  # noqa: PLC0415 - moto is the local stack's, not Lambda's
    from moto.apigateway.responses import APIGatewayResponse  # noqa: PLC0415

    urls.url_paths.setdefault(_PATH, APIGatewayResponse.dispatch)
    if not hasattr(APIGatewayResponse, "flush_stage_authorizers_cache"):
        setattr(APIGatewayResponse, "flush_stage_authorizers_cache", _flush)  # noqa: B010


def register(api_id: str, stage: str, flush: Callable[[], None]) -> None:
    """A front door's cache, emptied when its stage's is flushed (held weakly: a test's door may go)."""
    with _lock:
        _flushers.setdefault((api_id, stage), []).append(weakref.WeakMethod(flush))


def _flush(self: Any) -> tuple[int, dict[str, str], str]:
    parts = self.path.split("?")[0].strip("/").split("/")  # restapis/<id>/stages/<stage>/cache/authorizers
    key = (parts[1], parts[3])
    with _lock:
        live = [f for f in _flushers.get(key, []) if f() is not None]
        _flushers[key] = live
    if not live:
        body = '{"__type": "NotFoundException", "message": "Invalid stage identifier specified"}'
        return 404, {"x-amzn-errortype": "NotFoundException"}, body
    for flusher in live:
        method = flusher()
        if method is not None:
            method()
    return 202, {}, ""
