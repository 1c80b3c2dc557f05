"""What every renderer takes and gives: sheets of Arrow record batches in, a file and a row count out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pyarrow is for the worker only; the API functions import this module's names
    import pyarrow as pa

Progress = Callable[[int], None]  # told the rows written so far, after each batch


@dataclass
class Sheet:
    """One query's result: its name and its rows, arriving as typed record batches (consumed once)."""

    name: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


@dataclass(frozen=True)
class RenderContext:
    """What a person reading the file should know: which report, with which values, when."""

    title: str
    generated_at: datetime
    sheet_count: int = 1
    parameters: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputKind:
    extension: str
    content_type: str


def header_lines(context: RenderContext) -> list[tuple[str, str]]:
    """What every printed or shown report says about itself (the html and pdf headers)."""
    lines = [("Generated", context.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"))]
    lines += [
        (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for name, value in context.parameters.items()
    ]
    return lines


def member_name(number: int, sheet_name: str, extension: str) -> str:
    """The name of one sheet's file inside the zip of a multi-sheet csv or parquet export."""
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in sheet_name).strip()
    return f"{number:02d}-{cleaned[:60] or 'sheet'}.{extension}"


class RenderFailed(Exception):
    """A file that cannot be made from these rows (a format limit, say); the message is for the owner."""


class Renderer(Protocol):
    def output(self, sheet_count: int) -> OutputKind:
        """The file's extension and type: some formats change with the number of sheets (csv: a zip)."""
        ...

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        """Write every sheet to `target`, never holding more than a batch of rows; return the rows written."""
        ...
