"""What every renderer shares: the ports they implement (re-exported from the domain) and the header
lines and member names more than one format writes."""

from __future__ import annotations

from reportserver.domain.errors import RenderFailed
from reportserver.domain.ports import OutputKind, Progress, RenderContext, Renderer, Sheet

__all__ = [
    "OutputKind",
    "Progress",
    "RenderContext",
    "RenderFailed",
    "Renderer",
    "Sheet",
    "header_lines",
    "member_name",
]


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
