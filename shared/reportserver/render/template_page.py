"""A template report's page as a file: the HTML itself, or a PDF of it (fpdf2's HTML subset: headings,
paragraphs, tables, lists, bold and italics; styles and scripts are left out, not printed as text)."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser
from pathlib import Path

from reportserver.domain.errors import RenderFailed
from reportserver.domain.ports import RenderContext
from reportserver.render.pdf_document import MARGIN, SANS, PdfDocument

_LEFT_OUT = frozenset({"style", "script", "title", "head", "template", "noscript"})
# Tags whose text is kept but not their styling: the shipped fonts have no italic face.
_UNSTYLED = frozenset({"i", "em", "cite", "var", "dfn"})


class _Printable(HTMLParser):
    """The page's body as fpdf2 reads it: everything but what a browser would not print as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LEFT_OUT:
            self._hidden += 1
            return
        if not self._hidden and tag not in _UNSTYLED:
            shown = "".join(f' {name}="{escape(value or "")}"' for name, value in attrs)
            self.parts.append(f"<{tag}{shown}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in _LEFT_OUT:
            self._hidden = max(0, self._hidden - 1)
            return
        if not self._hidden and tag not in _UNSTYLED:
            self.parts.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(escape(data, quote=False))


def printable(page: str) -> str:
    parser = _Printable()
    parser.feed(page)
    parser.close()
    return "".join(parser.parts)


def write_page(export_format: str, page: str, target: Path, context: RenderContext) -> None:
    """Write the rendered page to `target` as `export_format` (html or pdf)."""
    if export_format == "html":
        target.write_text(page, encoding="utf-8")
        return
    pdf = PdfDocument(context.title)
    pdf.set_creation_date(context.generated_at)
    pdf.set_auto_page_break(True, margin=MARGIN + 5)  # the page flows, unlike a table report's
    pdf.add_page()
    pdf.set_font(SANS, size=10)
    try:
        pdf.write_html(printable(page))
        pdf.output(str(target))
    except Exception as error:  # fpdf2's HTML reader: a structure it cannot lay out
        raise RenderFailed(f"The template's page cannot be laid out as a PDF: {str(error)[:200]}") from None
    finally:
        pdf.close_fonts()
