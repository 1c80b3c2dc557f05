"""HTML: one standalone page (no scripts, no external files) with the report's header and a table per
sheet, every value escaped, numbers right-aligned; each batch built as text in C++."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet, header_lines
from reportserver.render.page_style import STYLE

WRITE_BUFFER_BYTES = 1024 * 1024
NULL_CELL = '<td class="null"></td>'


def _cells(column: pa.Array) -> pa.Array:
    kind = column.type
    if columns.is_textual(kind):
        cells = columns.wrap("<td>", columns.html_escape(columns.text(column)), "</td>")
    elif pa.types.is_boolean(kind):
        cells = columns.wrap("<td>", columns.text(column), "</td>")
    else:
        cells = columns.wrap('<td class="n">', columns.text(column), "</td>")
    return pc.fill_null(cells, NULL_CELL)


def _rows(batch: pa.RecordBatch) -> pa.Array:
    return columns.wrap("<tr>", columns.join([_cells(c) for c in batch.columns], ""), "</tr>\n")


class HtmlRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("html", "text/html; charset=utf-8")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        written = 0
        meta = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in header_lines(context))
        with target.open("wb", buffering=WRITE_BUFFER_BYTES) as page:
            page.write(
                (
                    f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                    f"<title>{escape(context.title)}</title><style>{STYLE}</style></head><body>\n"
                    f'<h1>{escape(context.title)}</h1><dl class="meta">{meta}</dl>\n'
                ).encode()
            )
            for sheet in sheets:
                if context.sheet_count > 1:
                    page.write(f"<h2>{escape(sheet.name)}</h2>\n".encode())
                head = "".join(f'<th scope="col">{escape(c)}</th>' for c in sheet.columns)
                page.write(f"<table><thead><tr>{head}</tr></thead><tbody>\n".encode())
                for batch in sheet.batches:
                    if batch.num_rows:
                        page.write(columns.payload(_rows(batch)))
                        written += batch.num_rows
                        progress(written)
                page.write(b"</tbody></table>\n")
            page.write(b"</body></html>\n")
        return written


RENDERER = HtmlRenderer()
