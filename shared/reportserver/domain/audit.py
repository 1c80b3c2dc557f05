"""The audit log: who did what, when, with what outcome, for every authenticated request (and every
login attempt). Never a secret, a password or an Authorization header; a report's parameter values only
for fields not marked `sensitive` (their names always).

Records are written off the request's path: each API function emits a record as one log line; a
CloudWatch Logs subscription hands the lines to the audit writer, which stores them in batches (see
`reportserver.http.audit`). A record's key is its time and request id, so a line delivered twice is
stored once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from reportserver.domain.access import Action, Principal, authorize
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.reports import Report

AUDIT_MARK = "audit_v1"  # the key that marks a log line as an audit record (the subscription's filter)
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_VALUE_CHARS = 200  # a recorded parameter value is cut to this (the record is a trace, not a copy)
WITHHELD = None  # a sensitive field's value, and a name no field has


class AuditRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: datetime
    request_id: str
    principal: str  # "token:<name>", "user:<name>", "nonce:<maker's name>", "login:<user name given>"
    owner_id: str = ""
    method: str
    route: str  # the API's resource path (/api/call/{report_id}), the path itself where there is none
    path: str
    status: int
    duration_us: int
    report: str = ""
    parameters: dict[str, list[str] | None] = msgspec.field(default_factory=dict)
    rows: int | None = None
    source_ip: str = ""

    @property
    def principal_kind(self) -> str:
        return self.principal.split(":", 1)[0]


def recorded_parameters(report: Report | None, raw: Mapping[str, Sequence[str]]) -> dict[str, list[str] | None]:
    """The request's parameter names, with their values where the report's field is not sensitive."""
    fields = {f.name: f for f in report.fields} if report is not None else {}
    recorded: dict[str, list[str] | None] = {}
    for name, values in list(raw.items())[:50]:
        field = fields.get(name)
        shown_name = name[:64]
        if field is None or field.sensitive:
            recorded[shown_name] = WITHHELD
        else:
            recorded[shown_name] = [str(v)[:MAX_VALUE_CHARS] for v in list(values)[:20]]
    return recorded


class AuditStore(Protocol):
    def put_records(self, records: Sequence[AuditRecord]) -> None: ...

    def query(self, search: AuditSearch, start_after: dict[str, Any] | None) -> tuple[list[AuditRecord], Any]:
        """Newest first, at most `search.limit`; and where to go on from (None: no more)."""
        ...


@dataclass(frozen=True)
class AuditSearch:
    principal: str | None
    report: str | None
    since: datetime
    until: datetime
    limit: int


def parse_search(query: Mapping[str, Sequence[str]], now: datetime, retention_days: int) -> AuditSearch:
    """`?principal=&report=&from=&to=&limit=`: times as ISO 8601 (UTC if no offset) or a date."""

    def one(name: str) -> str | None:
        values = query.get(name) or []
        if len(values) > 1:
            raise InvalidParameter(name, f"'{name}' is given more than once")
        return values[0] if values else None

    given_since, given_until = _moment(one("from"), "from"), _moment(one("to"), "to") or now
    if given_since is not None and given_since > given_until:
        raise InvalidParameter("from", "'from' is after 'to'")
    until = min(given_until, now)  # nothing is recorded in the future: never searched for
    oldest = now - timedelta(days=retention_days)  # nothing older is kept: never searched for
    since = max(given_since or oldest, oldest)
    text = one("limit") or str(DEFAULT_PAGE)
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_PAGE):
        raise InvalidParameter("limit", f"'limit' must be a whole number from 1 to {MAX_PAGE}")
    principal, report = one("principal"), one("report")
    for name, value in (("principal", principal), ("report", report)):
        if value is not None and not 0 < len(value) <= 200:
            raise InvalidParameter(name, f"'{name}' must be 1-200 characters")
    return AuditSearch(principal, report, since, until, int(text))


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text) if len(text) <= 40 else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidParameter(name, f"'{name}' must be an ISO 8601 time or date (2026-12-01T09:00:00Z)")
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # found: 9999-12-31T23:59:59-01:00 is past the last time Python has (a 500)
        raise InvalidParameter(name, f"'{name}' is out of range") from None


def encode_cursor(position: Any) -> str | None:
    return None if position is None else base64.urlsafe_b64encode(msgspec.json.encode(position)).decode()


def decode_cursor(text: str | None) -> Any:
    if not text:
        return None
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(text.encode("ascii")))
    except (binascii.Error, msgspec.DecodeError, UnicodeEncodeError, ValueError):
        raise InvalidParameter("cursor", "'cursor' is not one this server gave") from None


def search_audit(
    store: AuditStore, principal: Principal, query: Mapping[str, Sequence[str]], now: datetime, retention_days: int
) -> dict[str, Any]:
    """`GET /api/audit/` (admin): the records, newest first, a page at a time (`cursor`)."""
    authorize(principal, Action.ADMIN)
    search = parse_search(query, now, retention_days)
    cursor_values = query.get("cursor") or []
    given = decode_cursor(cursor_values[0] if cursor_values else None)
    # A cursor goes on only with the search that gave it (a day-by-day one is no place in an index).
    asked_for = f"{search.principal or ''}|{search.report or ''}"
    if given is not None and (not isinstance(given, dict) or given.get("for") != asked_for):
        raise InvalidParameter("cursor", "'cursor' belongs to another search")
    if search.since > search.until:  # the whole range is older than the retention: nothing is kept
        return {"ok": True, "message": "", "records": [], "cursor": None}
    records, position = store.query(search, given.get("at") if given else None)
    return {
        "ok": True,
        "message": "",
        "records": [msgspec.to_builtins(r) for r in records],
        "cursor": encode_cursor({"for": asked_for, "at": position}) if position is not None else None,
    }
