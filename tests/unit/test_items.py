"""The one DynamoDB item codec: records round-trip exactly, and stored times sort as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.ports import DataSource
from reportserver.domain.tickets import ExportTicket, TicketStatus
from reportserver.domain.tokens import ApiToken
from reportserver.store.items import from_document, from_item, stamp, to_document, to_item

OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
INSTANTS = st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30), timezones=OFFSETS)
TEXT = st.text(max_size=20)


def dynamodb(value: Any) -> Any:
    """What DynamoDB gives back: every number as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, int | dict | list):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: dynamodb(v) for k, v in value.items()}
    return [dynamodb(v) for v in value]


@st.composite
def tickets(draw: st.DrawFn) -> ExportTicket:
    maybe = st.none() | INSTANTS
    return ExportTicket(
        ticket_id=draw(st.text("0123456789abcdef", min_size=32, max_size=32)),
        owner=draw(TEXT),
        report_id=draw(st.integers(1, 10**9)),
        report_slug=draw(TEXT),
        report_name=draw(TEXT),
        format=draw(st.sampled_from(["csv", "xlsx"])),
        parameters=draw(st.dictionaries(TEXT, st.lists(TEXT, max_size=3), max_size=3)),
        cache_key=draw(TEXT),
        csv_bom=draw(st.booleans()),
        status=draw(st.sampled_from(TicketStatus)),
        created_at=draw(INSTANTS),
        updated_at=draw(INSTANTS),
        started_at=draw(maybe),
        completed_at=draw(maybe),
        attempt=draw(st.integers(0, 5)),
        lease_until=draw(maybe),
        rows_written=draw(st.integers(0, 10**12)),
        total_rows=draw(st.none() | st.integers(0, 10**12)),
        error=draw(st.none() | TEXT),
        expires_at=draw(INSTANTS),
    )


@given(tickets())
def test_a_ticket_comes_back_as_it_was_stored(ticket: ExportTicket) -> None:
    item = to_item(ticket, ttl=int(ticket.expires_at.timestamp()))
    assert None not in item.values()
    back = from_item(dynamodb(item), ExportTicket, store_only=("ttl",))
    assert back == ticket  # datetimes compare as instants, whatever the offset they were given in
    assert all(moment is None or moment.tzinfo is not None for moment in (back.created_at, back.lease_until))


@given(INSTANTS, INSTANTS)
def test_stored_times_compare_as_text_as_the_times_do(a: datetime, b: datetime) -> None:
    assert (stamp(a) < stamp(b)) == (a < b) and (stamp(a) == stamp(b)) == (a == b)
    assert len(stamp(a)) == len("2026-11-24T10:00:00.000000Z")


def test_a_token_written_before_the_one_format_still_reads() -> None:
    old = {
        "name": "finance-bot",
        "secret_hash": "ab" * 32,
        "groups": ["finance"],
        "permissions": [],
        "expires_at": "2027-01-01T00:00:00+00:00",  # isoformat with an offset, as written before
        "active": True,
        "created_at": "2026-10-01T09:30:00.123456+02:00",
        "created_by": "admin",
        "description": "",
    }
    token = from_item(old, ApiToken)
    assert token.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert token.created_at == datetime(2026, 10, 1, 7, 30, 0, 123456, tzinfo=UTC)
    assert to_item(token)["created_at"] == "2026-10-01T07:30:00.123456Z"


def test_a_naive_time_or_a_float_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="time zone"):
        stamp(datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="decimals"):
        to_item(
            ApiToken(
                name="x",
                secret_hash="h",
                groups=[],
                expires_at=datetime.now(UTC),
                created_at=datetime.now(UTC),
                created_by="a",
            ),
            ratio=0.5,
        )
    with pytest.raises(TypeError, match="fraction"):
        from_item({"attempt": Decimal("1.5")}, dict)


def test_a_definition_document_round_trips() -> None:
    source = DataSource(id="1", kind="sqlite", database="/tmp/demo.sqlite", query_timeout_seconds=12.5)
    assert from_document(to_document(source), DataSource) == source
