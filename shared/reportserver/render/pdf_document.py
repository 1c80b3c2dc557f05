"""The page the PDF renderer draws on: an A4 fpdf2 document with the project's fonts and footer.

This is the only module that knows fpdf2's internals. Writing a table row as one PDF text block
(rather than a text() call per value) and measuring text from the font's own width table is what
makes the PDF export fast, and neither has a public API, so `write_row`, `text_width` and `fit` use
fpdf2's private attributes and methods. fpdf2 is pinned exactly in pyproject.toml for that reason,
and tests/unit/test_pdf_document.py checks both the pin (against `FPDF_VERSION`) and what these
methods write: when it fails after an upgrade, fix this module, then move the pin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import TTFFont

FPDF_VERSION = "2.8.9"  # the fpdf2 whose internals this module was written against
FONTS = Path(__file__).resolve().parent / "fonts"
SANS = "Sans"  # DejaVu Sans: Latin, Greek, Cyrillic and more
WIDE = "Wide"  # Droid Sans Fallback: Chinese, Japanese and Korean, which DejaVu lacks
MARGIN = 10.0  # mm on every side
PAGE_COUNT = "{pages:total}"  # an alias as wide as any page count it will stand for
ELLIPSIS = "…"
CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")
CJK_RUNS = re.compile(f"({CJK.pattern}+)")


class PdfDocument(FPDF):
    """An A4 document in millimetres with "Page n of m" under every page; text in Sans, CJK in Wide."""

    def __init__(self, title: str) -> None:
        super().__init__(unit="mm", format="A4")
        self.report_title = title
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        self.add_font(SANS, fname=str(FONTS / "DejaVuSans.ttf"))
        self.add_font(SANS, style="B", fname=str(FONTS / "DejaVuSans-Bold.ttf"))
        self.alias_nb_pages(PAGE_COUNT)
        self.has_wide_font = False
        self.set_title(title)
        self.set_creator("reportserver")

    def close_fonts(self) -> None:
        """fpdf2 reads its fonts lazily through fontTools and keeps their files open: close them, or a
        worker leaks a file (4 MB for the CJK one) per PDF until the collector finds it."""
        for font in self.fonts.values():
            opened = getattr(font, "ttfont", None)
            if opened is not None:
                opened.close()

    def use_wide_font(self, size: float) -> None:
        """The CJK font (4 MB) is read only by reports that hold such text."""
        if not self.has_wide_font:
            self.add_font(WIDE, fname=str(FONTS / "DroidSansFallbackFull.ttf"))
            self.has_wide_font = True
        self.set_font(WIDE, size=size)

    def footer(self) -> None:
        self.set_y(-8)
        self.set_font(SANS, size=7)
        self.set_text_color(110)
        self.cell(0, 4, self.report_title[:120], align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, f"Page {self.page_no()} of {PAGE_COUNT}", align="R")
        self.set_text_color(0)

    def write_text(self, x: float, y: float, text: str, size: float, style: str = "") -> None:
        """Text with its baseline at y, in Sans; runs of CJK characters (which Sans lacks) in Wide."""
        if not CJK.search(text):
            self.set_font(SANS, style, size)
            self.text(x, y, text)
            return
        for run in CJK_RUNS.split(text):
            if not run:
                continue
            if CJK.match(run):
                self.use_wide_font(size)
            else:
                self.set_font(SANS, style, size)
            self.text(x, y, run)
            x += self.get_string_width(run)

    def text_width(self, text: str) -> float:
        """Width in mm in the current font: get_string_width's answer (without text shaping or spacing,
        which the document never turns on) from the font's own width table, at a tenth of the cost."""
        font = self.current_font
        assert font is not None, "no font selected"
        return float(font.get_text_width(text, self.font_size_pt, None)[1]) / self.k

    def fit(self, text: str, room: float) -> str:
        """The text if it is at most `room` mm wide in the current font, or else its longest prefix that
        fits followed by an ellipsis; in one pass over the characters, stopping where the room runs out."""
        font = self.current_font
        assert isinstance(font, TTFFont), "fit measures with a TrueType font's widths"
        widths = font.cw  # per mille of the font size, by code point
        limit = room * self.k * 1000 / self.font_size_pt
        budget = limit - widths[ord(ELLIPSIS)]
        used = 0.0
        cut = 0  # the longest prefix that leaves room for the ellipsis
        for position, char in enumerate(text):
            used += widths[ord(char)]
            if used > limit:
                return text[:cut] + ELLIPSIS
            if used <= budget:
                cut = position + 1
        return text

    def write_row(self, baseline_y: float, cells: Iterable[tuple[float, str]]) -> None:
        """Each text at its x on one baseline, in the current font and text colour and in one PDF text
        block: what a text() call per value would write, without its per-call work. Texts holding CJK characters go
        through write_text afterwards (in the current style and size), and the current font is kept."""
        font = self.current_font
        assert font is not None, "no font selected"
        k = self.k
        baseline = (self.h - baseline_y) * k
        block: list[str] = []
        wide: list[tuple[float, str]] = []
        previous_x = 0.0
        for x, text in cells:
            if not text.isascii() and CJK.search(text):
                wide.append((x, text))
                continue
            move = f"BT {x * k:.2f} {baseline:.2f} Td" if not block else f"{(x - previous_x) * k:.2f} 0 Td"
            block.append(f"{move} {font.encode_text(text)}")
            previous_x = x
        if block:
            # As text() does: select the font on this page the first time it writes with it.
            if not self.current_font_is_set_on_page:
                self._out(self._set_font_for_page(font, self.font_size_pt))
            if self.fill_color == self.text_color:  # text is painted in the fill colour
                self._out(" ".join(block) + " ET")
            else:
                assert self.text_color is not None
                self._out(f"q {self.text_color.serialize().lower()} {' '.join(block)} ET Q")
        if wide:
            family, style, size = self.font_family, self.font_style, self.font_size_pt
            for x, text in wide:
                self.write_text(x, baseline_y, text, size, style)
            self.set_font(family, style, size)
