"""Test tables: Python rows as the typed Arrow batches a source hands a renderer, and the typing
contract's text and JSON of a value, as the contract tests read files back."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from reportserver.domain.ports import ReadPlan
from reportserver.domain.values import Column, ColumnType
from reportserver.sources.arrow import RowBatches


def declared(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Column]:
    """Each column declared with the type of its first non-NULL value (text when it has none)."""
    columns = []
    for index, name in enumerate(names):
        value = next((row[index] for row in rows if row[index] is not None), None)
        columns.append(Column(name, _kind(value)))
    return columns


def _kind(value: Any) -> ColumnType:
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INTEGER
    if isinstance(value, float):
        return ColumnType.FLOAT
    if isinstance(value, Decimal):
        return ColumnType.DECIMAL
    if isinstance(value, datetime):
        return ColumnType.TIMESTAMPTZ if value.tzinfo else ColumnType.TIMESTAMP
    if isinstance(value, date):
        return ColumnType.DATE
    if isinstance(value, bytes):
        return ColumnType.BINARY
    return ColumnType.TEXT


def typed_batches(
    names: Sequence[str], rows: Sequence[Sequence[Any]], batch: int = 2
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The rows in batches of `batch`, typed as `declared` says; the schema is fixed by the first batch."""
    maker = RowBatches(declared(names, rows), ReadPlan(native=False))
    chunks = [list(map(tuple, rows[i : i + batch])) for i in range(0, len(rows), batch)]
    batches = list(maker.batches(iter(chunks)))
    return maker.schema(), iter(batches)


def contract_text(value: Any) -> str:
    """The contract's text of a value in csv, html and pdf."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ") + ("Z" if value.tzinfo else "")
    return str(value)


def contract_json(value: Any) -> Any:
    """A value as the contract's JSON reads back (numbers parsed as Decimal, to see every digit)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat() + ("Z" if value.tzinfo else "")
    if isinstance(value, date):
        return value.isoformat()
    return value
