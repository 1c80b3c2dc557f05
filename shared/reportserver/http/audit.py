"""Each API function's audit records, made around its resolver and written as one log line each.

The line goes to the function's log (stdout, which Lambda ships to CloudWatch Logs); the log group's
subscription filter (`{ $.audit_v1 = 1 }`) hands it to the audit writer function, which stores it.
So the request pays for a dict and a write to stdout (microseconds), never for a DynamoDB call, and
a record is not lost when the function ends right after answering (its log line is already out).
The local stack puts a sink of its own in place (`set_sink`) that delivers the same lines the same
way (infra/local/audit_logs.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

from reportserver.domain.audit import AUDIT_MARK, AuditRecord, recorded_parameters
from reportserver.domain.reports import Report

_encoder = msgspec.json.Encoder()


def _stdout(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.flush()


_sink: Callable[[bytes], None] = _stdout
_note: ContextVar[dict[str, Any] | None] = ContextVar("audit_note", default=None)


def set_sink(sink: Callable[[bytes], None] | None) -> None:
    """Where records go (None: the log, as in Lambda)."""
    global _sink  # noqa: PLW0603 - one sink per process, as one log per function
    _sink = sink or _stdout


def note(
    report: Report | None = None,
    parameters: Mapping[str, Sequence[str]] | None = None,
    rows: int | None = None,
    principal: str | None = None,
) -> None:
    """What a handler knows of its request that the event does not tell: its report, the parameters
    (values only for fields not sensitive), the rows it answered, or who tried to log in."""
    current = _note.get()
    if current is None:
        return
    if report is not None:
        current["report"] = report.slug
    if parameters is not None:
        current["parameters"] = recorded_parameters(report, parameters)
    if rows is not None:
        current["rows"] = rows
    if principal is not None:
        current["principal"] = principal


def recorded(event: Mapping[str, Any], resolve: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run the resolver, then emit the request's record (an authenticated one, or a login attempt)."""
    started = time.perf_counter()
    token = _note.set({})
    status = 500  # unless the resolver answers: what escaped it becomes Lambda's failure
    try:
        response = resolve()
        status = int(response.get("statusCode", 200))
        return response
    finally:
        _emit(event, _note.get() or {}, status, started)
        _note.reset(token)


def _emit(event: Mapping[str, Any], noted: dict[str, Any], status: int, started: float) -> None:
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    kind, name = authorizer.get("kind"), authorizer.get("name")
    principal = f"{kind}:{name}" if kind and name else noted.get("principal")
    if not principal:
        return  # not authenticated, and no login: nothing anyone did
    record = AuditRecord(
        at=datetime.now(UTC),
        request_id=str(context.get("requestId") or ""),
        principal=str(principal)[:200],
        owner_id=str(authorizer.get("owner_id") or "")[:100],
        method=str(event.get("httpMethod") or ""),
        route=str(event.get("resource") or event.get("path") or "")[:200],
        path=str(event.get("path") or "")[:500],
        status=status,
        duration_us=int((time.perf_counter() - started) * 1_000_000),
        report=str(noted.get("report") or ""),
        parameters=noted.get("parameters") or {},
        rows=noted.get("rows"),
        source_ip=str((context.get("identity") or {}).get("sourceIp") or "")[:64],
    )
    payload = msgspec.to_builtins(record)
    payload[AUDIT_MARK] = 1
    _sink(_encoder.encode(payload) + b"\n")
