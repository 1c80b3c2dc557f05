"""PDF: a report a person would print. Title, the parameters used and the generation time on the
first page; column headers repeated on every page; numbers right-aligned; landscape when wide;
"Page n of m"; Unicode text in fonts shipped with the project (DejaVu Sans, and Droid Sans Fallback
for Chinese, Japanese and Korean).

Speed comes from writing each row as one PDF text block (no per-cell boxes or borders), turning a
batch's values into text in Arrow first, and measuring widths only where a value must be
right-aligned or may not fit. The document (render/pdf_document.py) does that low-level writing and
measuring; this module uses only its methods and fpdf2's public API. fpdf2 keeps the document in
memory until it is written, so PDFs are capped at `MAX_PDF_ROWS` rows: beyond that a spreadsheet
serves the reader better anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, RenderFailed, Sheet, header_lines
from reportserver.render.pdf_document import MARGIN, SANS, PdfDocument

MAX_PDF_ROWS = 200_000
FONT_SIZE = 7.5
HEADER_SIZE = 7.5
LINE = 4.2  # mm per row
LANDSCAPE_FROM_COLUMNS = 7
SAMPLE_ROWS = 300
MIN_COLUMN_MM = 12.0
CELL_PADDING_MM = 1.5


class _Layout:
    """Where each column goes on the page, and how much of its text fits."""

    def __init__(self, pdf: PdfDocument, names: list[str], sample: pa.RecordBatch | None, landscape: bool) -> None:
        self.names = names
        self.landscape = landscape
        usable = (297.0 if landscape else 210.0) - 2 * MARGIN
        pdf.set_font(SANS, "B", HEADER_SIZE)
        natural = [pdf.get_string_width(n) + 2 * CELL_PADDING_MM for n in names]
        self.right = [False] * len(names)
        if sample is not None and sample.num_rows:
            pdf.set_font(SANS, size=FONT_SIZE)
            for i, column in enumerate(sample.slice(0, SAMPLE_ROWS).columns):
                self.right[i] = (
                    columns.is_numeric(column.type)
                    or pa.types.is_date(column.type)
                    or pa.types.is_timestamp(column.type)
                )
                texts = [t for t in columns.text(column).to_pylist() if t]
                longest = sorted(texts, key=len)[-5:]
                widest = max((pdf.get_string_width(t) for t in longest), default=0.0)
                # Later rows may be a little longer than the sampled ones: leave them some room.
                headroom = widest * 0.2 if columns.is_textual(column.type) else pdf.get_string_width("0")
                natural[i] = max(natural[i], min(widest + headroom + 2 * CELL_PADDING_MM, 80.0))
        natural = [max(w, MIN_COLUMN_MM) for w in natural]
        scale = min(1.0, usable / sum(natural)) if natural else 1.0
        self.widths = [w * scale for w in natural]
        self.x = [MARGIN + sum(self.widths[:i]) for i in range(len(names))]
        self.room = [w - 2 * CELL_PADDING_MM for w in self.widths]
        widest_char = pdf.get_string_width("W")
        # Up to this many characters a value always fits; only longer ones are measured.
        self.safe_chars = [max(1, int(room / widest_char)) for room in self.room]
        self.bottom = (210.0 if landscape else 297.0) - MARGIN - 8

    def place(self, pdf: PdfDocument, column: int, text: str) -> float:
        """Where the text starts: at the column's left edge, or so that it ends at its right edge."""
        if self.right[column]:
            return self.x[column] + self.widths[column] - CELL_PADDING_MM - pdf.text_width(text)
        return self.x[column] + CELL_PADDING_MM

    def fit(self, pdf: PdfDocument, column: int, text: str) -> str:
        """The text, or as much of it as fits in the column followed by an ellipsis."""
        if len(text) <= self.safe_chars[column]:
            return text
        return pdf.fit(text, self.room[column])


def _one_line(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, r"[\r\n\t]+", " ")


class PdfRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("pdf", "application/pdf")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        pdf = PdfDocument(context.title)
        try:
            return self._render(pdf, sheets, target, context, progress)
        finally:
            pdf.close_fonts()

    def _render(
        self, pdf: PdfDocument, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress
    ) -> int:
        written = 0
        first_page = True
        for sheet in sheets:
            batches = iter(sheet.batches)
            first = next((b for b in batches if b.num_rows), None)
            layout = _Layout(pdf, sheet.columns, first, len(sheet.columns) >= LANDSCAPE_FROM_COLUMNS)
            y = self._new_page(
                pdf, layout, context if first_page else None, sheet.name if context.sheet_count > 1 else ""
            )
            first_page = False
            pending = [first] if first is not None else []
            for batch in (*pending, *batches):
                if written + batch.num_rows > MAX_PDF_ROWS:
                    raise RenderFailed(f"A PDF holds at most {MAX_PDF_ROWS:,} rows; export this report as xlsx or csv")
                y = self._rows(pdf, layout, batch, y)
                written += batch.num_rows
                progress(written)
            if first is None:
                pdf.set_font(SANS, size=FONT_SIZE)
                pdf.text(MARGIN, y + LINE, "No rows.")
        pdf.output(str(target))
        return written

    def _new_page(self, pdf: PdfDocument, layout: _Layout, title: RenderContext | None, sheet: str) -> float:
        """A page with the column headers; the first one also carries the report's title block."""
        pdf.add_page(orientation="L" if layout.landscape else "P")
        y = MARGIN
        if title is not None:
            pdf.write_text(MARGIN, y + 5, title.title, 14, "B")
            y += 9
            for name, value in header_lines(title):
                pdf.write_text(MARGIN, y + 3, f"{name}: {value}", 8)
                y += 4
            y += 2
        if sheet:
            pdf.set_font(SANS, "B", 10)
            pdf.write_text(MARGIN, y + 4, sheet, 10, "B")
            y += 7
        pdf.set_font(SANS, "B", HEADER_SIZE)
        for i, name in enumerate(layout.names):
            label = layout.fit(pdf, i, name)
            pdf.write_text(layout.place(pdf, i, label), y + 3, label, HEADER_SIZE, "B")
        pdf.set_draw_color(120)
        pdf.line(MARGIN, y + LINE, MARGIN + sum(layout.widths), y + LINE)
        pdf.set_font(SANS, size=FONT_SIZE)
        return y + LINE

    def _rows(self, pdf: PdfDocument, layout: _Layout, batch: pa.RecordBatch, y: float) -> float:
        texts = [_one_line(columns.text(c)).to_pylist() for c in batch.columns]
        for row in range(batch.num_rows):
            if y + LINE > layout.bottom:
                y = self._new_page(pdf, layout, None, "")
            y += LINE
            cells: list[tuple[float, str]] = []
            for i, values in enumerate(texts):
                value = values[row]
                if value:
                    value = layout.fit(pdf, i, value)
                    cells.append((layout.place(pdf, i, value), value))
            pdf.write_row(y - 1, cells)
        return y


RENDERER = PdfRenderer()
