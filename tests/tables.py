"""Test tables: Python rows as the typed Arrow batches a source hands a renderer."""

from __future__ import annotations

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
