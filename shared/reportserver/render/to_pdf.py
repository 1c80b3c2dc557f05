"""PDF: a report a person would print. Title, the parameters used and the generation time on the
first page; column headers repeated on every page; numbers right-aligned; landscape when wide;
"Page n of m"; Unicode text in fonts shipped with the project (DejaVu Sans, and Droid Sans Fallback
for Chinese, Japanese and Korean).

Speed comes from placing each value with one low-level text call (no per-cell boxes or borders),
turning a batch's values into text in Arrow first, and measuring widths only where a value must be
right-aligned. fpdf2 keeps the document in memory until it is written, so PDFs are capped at
`MAX_PDF_ROWS` rows: beyond that a spreadsheet serves the reader better anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from fpdf import FPDF

from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, RenderFailed, Sheet, header_lines

FONTS = Path(__file__).resolve().parent / "fonts"
MAX_PDF_ROWS = 200_000
FONT_SIZE = 7.5
HEADER_SIZE = 7.5
LINE = 4.2  # mm per row
MARGIN = 10.0
LANDSCAPE_FROM_COLUMNS = 7
SAMPLE_ROWS = 300
MIN_COLUMN_MM = 12.0
CELL_PADDING_MM = 1.5
CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")
CJK_RUNS = re.compile(f"({CJK.pattern}+)")


PAGE_COUNT = "{pages:total}"  # an alias as wide as any page count it will stand for


class _Document(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(unit="mm", format="A4")
        self.report_title = title
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        self.add_font("Sans", fname=str(FONTS / "DejaVuSans.ttf"))
        self.add_font("Sans", style="B", fname=str(FONTS / "DejaVuSans-Bold.ttf"))
        self.alias_nb_pages(PAGE_COUNT)
        self.has_wide_font = False
        self.set_title(title)
        self.set_creator("reportserver")

    def use_wide_font(self, size: float) -> None:
        """The CJK font (4 MB) is read only by reports that hold such text."""
        if not self.has_wide_font:
            self.add_font("Wide", fname=str(FONTS / "DroidSansFallbackFull.ttf"))
            self.has_wide_font = True
        self.set_font("Wide", size=size)

    def footer(self) -> None:
        self.set_y(-8)
        self.set_font("Sans", size=7)
        self.set_text_color(110)
        self.cell(0, 4, self.report_title[:120], align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, f"Page {self.page_no()} of {PAGE_COUNT}", align="R")
        self.set_text_color(0)


class _Layout:
    """Where each column goes on the page, and how much of its text fits."""

    def __init__(self, pdf: _Document, names: list[str], sample: pa.RecordBatch | None, landscape: bool) -> None:
        self.names = names
        self.landscape = landscape
        usable = (297.0 if landscape else 210.0) - 2 * MARGIN
        pdf.set_font("Sans", "B", HEADER_SIZE)
        natural = [pdf.get_string_width(n) + 2 * CELL_PADDING_MM for n in names]
        self.right = [False] * len(names)
        if sample is not None and sample.num_rows:
            pdf.set_font("Sans", size=FONT_SIZE)
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

    def place(self, pdf: FPDF, column: int, text: str) -> float:
        """Where the text starts: at the column's left edge, or so that it ends at its right edge."""
        if self.right[column]:
            return self.x[column] + self.widths[column] - CELL_PADDING_MM - _width(pdf, text)
        return self.x[column] + CELL_PADDING_MM

    def fit(self, pdf: FPDF, column: int, text: str) -> str:
        """The text, or as much of it as fits in the column followed by an ellipsis."""
        room = self.room[column]
        if len(text) <= self.safe_chars[column] or _width(pdf, text) <= room:
            return text
        font = pdf.current_font
        assert font is not None
        scale = pdf.font_size_pt * 0.001 / pdf.k
        widths: Any = font.cw  # a TrueType font's widths, by code point (fpdf2 types the core fonts' by char)
        budget = room - _width(pdf, "…")
        used = 0.0
        for position, char in enumerate(text):  # one pass: where the running width passes the budget
            used += widths[ord(char)] * scale
            if used > budget:
                return text[:position] + "…"
        return text


def _width(pdf: FPDF, text: str) -> float:
    """Width in mm in the current font, from the font's own width table (a tenth of get_string_width's cost)."""
    font = pdf.current_font
    assert font is not None
    return float(font.get_text_width(text, pdf.font_size_pt, None)[1]) / pdf.k


def _one_line(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, r"[\r\n\t]+", " ")


class PdfRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("pdf", "application/pdf")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        pdf = _Document(context.title)
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
                pdf.set_font("Sans", size=FONT_SIZE)
                pdf.text(MARGIN, y + LINE, "No rows.")
        pdf.output(str(target))
        return written

    def _new_page(self, pdf: _Document, layout: _Layout, title: RenderContext | None, sheet: str) -> float:
        """A page with the column headers; the first one also carries the report's title block."""
        pdf.add_page(orientation="L" if layout.landscape else "P")
        y = MARGIN
        if title is not None:
            self._text(pdf, MARGIN, y + 5, title.title, "Sans", 14, "B")
            y += 9
            for name, value in header_lines(title):
                self._text(pdf, MARGIN, y + 3, f"{name}: {value}", "Sans", 8)
                y += 4
            y += 2
        if sheet:
            pdf.set_font("Sans", "B", 10)
            self._text(pdf, MARGIN, y + 4, sheet, "Sans", 10, "B")
            y += 7
        pdf.set_font("Sans", "B", HEADER_SIZE)
        for i, name in enumerate(layout.names):
            label = layout.fit(pdf, i, name)
            self._text(pdf, layout.place(pdf, i, label), y + 3, label, "Sans", HEADER_SIZE, "B")
        pdf.set_draw_color(120)
        pdf.line(MARGIN, y + LINE, MARGIN + sum(layout.widths), y + LINE)
        pdf.set_font("Sans", size=FONT_SIZE)
        return y + LINE

    def _rows(self, pdf: _Document, layout: _Layout, batch: pa.RecordBatch, y: float) -> float:
        texts = [_one_line(columns.text(c)).to_pylist() for c in batch.columns]
        for row in range(batch.num_rows):
            if y + LINE > layout.bottom:
                y = self._new_page(pdf, layout, None, "")
            y += LINE
            # One text block per row: what text() writes per value, without its per-call work.
            font, k, baseline = pdf.current_font, pdf.k, (pdf.h - y + 1) * pdf.k
            assert font is not None
            block: list[str] = []
            wide: list[tuple[float, str]] = []
            previous_x = 0.0
            for i, values in enumerate(texts):
                value = values[row]
                if not value:
                    continue
                value = layout.fit(pdf, i, value)
                x = layout.place(pdf, i, value)
                if not value.isascii() and CJK.search(value):
                    wide.append((x, value))
                    continue
                move = f"BT {x * k:.2f} {baseline:.2f} Td" if not block else f"{(x - previous_x) * k:.2f} 0 Td"
                block.append(f"{move} {font.encode_text(value)}")
                previous_x = x
            if block:
                # As text() does: select the font on the page lazily, then write to the page's stream.
                if not pdf.current_font_is_set_on_page:
                    pdf._out(pdf._set_font_for_page(font, pdf.font_size_pt))
                pdf._out(" ".join(block) + " ET")
            for x, value in wide:
                self._text(pdf, x, y - 1, value, "Sans", FONT_SIZE)
                pdf.set_font("Sans", size=FONT_SIZE)
        return y

    @staticmethod
    def _text(pdf: _Document, x: float, y: float, value: str, family: str, size: float, style: str = "") -> None:
        """Text in the given font; runs of CJK characters (which it lacks) in the CJK font."""
        if not CJK.search(value):
            pdf.set_font(family, style, size)
            pdf.text(x, y, value)
            return
        for run in CJK_RUNS.split(value):
            if not run:
                continue
            if CJK.match(run):
                pdf.use_wide_font(size)
            else:
                pdf.set_font(family, style, size)
            pdf.text(x, y, run)
            x += pdf.get_string_width(run)


RENDERER = PdfRenderer()
