"""The PDF document adapter, the one place that uses fpdf2's internals: these tests fail when an fpdf2
upgrade changes what it relies on (read back with pypdf, measured against fpdf2's public API)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fpdf
import pypdf
import pytest
from reportserver.render.pdf_document import ELLIPSIS, FPDF_VERSION, SANS, PdfDocument

ROOT = Path(__file__).resolve().parents[2]
SIZE = 7.5
TEXTS = [
    "Hello, world 0123456789",
    "Zoë & <Müller> (quote) \\ back",
    "ğ ß é Ωμέγα Привет",
    "-12345.67",
]


_OPEN: list[PdfDocument] = []


@pytest.fixture(autouse=True)
def _close_fonts() -> Iterator[None]:
    # fpdf2 keeps each font's file open (see PdfDocument.close_fonts): closed after every test.
    yield
    while _OPEN:
        _OPEN.pop().close_fonts()


def document() -> PdfDocument:
    pdf = PdfDocument("Adapter test")
    _OPEN.append(pdf)
    pdf.add_page()
    pdf.set_font(SANS, size=SIZE)
    return pdf


def read_back(pdf: PdfDocument, tmp_path: Path) -> pypdf.PdfReader:
    target = tmp_path / "out.pdf"
    pdf.output(str(target))
    return pypdf.PdfReader(target)


def font_names(page: pypdf.PageObject) -> list[str]:
    fonts: Any = page["/Resources"]["/Font"]  # type: ignore[index]  # pypdf types a dictionary's values loosely
    return [str(font["/BaseFont"]) for font in fonts.values()]


def content(page: pypdf.PageObject) -> str:
    """The page's content stream: the PDF operators as written."""
    stream = page.get_contents()
    assert stream is not None
    return stream.get_data().decode("latin-1")


def fpdf2_pin() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["dependency-groups"]["worker"] if d.startswith("fpdf2")]
    assert len(pins) == 1 and pins[0].startswith("fpdf2=="), pins  # pinned exactly, not a range
    return pins[0].removeprefix("fpdf2==")


def test_installed_fpdf2_is_the_exact_version_the_adapter_was_written_for() -> None:
    layer = (ROOT / "layers/worker/requirements.txt").read_text(encoding="utf-8").split()
    assert fpdf.__version__ == FPDF_VERSION == fpdf2_pin()
    assert f"fpdf2=={FPDF_VERSION}" in layer  # what the export worker ships with


def test_a_row_comes_out_as_text_in_the_order_written(tmp_path: Path) -> None:
    pdf = document()
    cells = [(10.0, "first"), (40.0, "Zoë (second)"), (80.0, "third \\ 3"), (120.0, "-12.50")]

    pdf.write_row(30.0, cells)

    text = read_back(pdf, tmp_path).pages[0].extract_text()
    positions = [text.find(value) for _, value in cells]
    assert -1 not in positions, text
    assert positions == sorted(positions)


def test_a_row_on_a_new_page_selects_its_font_on_that_page(tmp_path: Path) -> None:
    pdf = document()
    pdf.write_row(30.0, [(10.0, "on page one")])

    pdf.add_page()  # the footer changes the font in between; fpdf2 restores it, unset on the new page
    pdf.write_row(30.0, [(10.0, "on page two"), (60.0, "Müller")])

    page = read_back(pdf, tmp_path).pages[1]
    contents = content(page)
    assert "on page two" in page.extract_text() and "Müller" in page.extract_text()
    assert any("DejaVuSans" in name for name in font_names(page))
    assert f"{SIZE:.2f} Tf" in contents.split("Td")[0]  # the font is selected before the row's text


def test_a_row_is_written_in_the_text_colour(tmp_path: Path) -> None:
    pdf = document()
    pdf.set_text_color(110)

    pdf.write_row(30.0, [(10.0, "grey")])

    page = read_back(pdf, tmp_path).pages[0]
    assert "q 0.4314 g BT" in content(page)  # grey 110 of 255, as text() writes
    assert "grey" in page.extract_text()


@pytest.mark.parametrize("style", ["", "B"])
@pytest.mark.parametrize("text", [*TEXTS, "", "x" * 200])
def test_text_width_agrees_with_get_string_width(text: str, style: str) -> None:
    pdf = document()
    pdf.set_font(SANS, style, SIZE)

    assert pdf.text_width(text) == pytest.approx(pdf.get_string_width(text), abs=0.01)


@pytest.mark.parametrize("room", [3.0, 5.0, 8.5, 13.0, 21.0, 34.0])
@pytest.mark.parametrize("text", TEXTS)
def test_fit_keeps_the_longest_prefix_that_fits_with_an_ellipsis(text: str, room: float) -> None:
    pdf = document()

    fitted = pdf.fit(text, room)

    if pdf.get_string_width(text) <= room:
        assert fitted == text
    else:
        kept = fitted.removesuffix(ELLIPSIS)
        assert fitted.endswith(ELLIPSIS) and text.startswith(kept)
        assert pdf.get_string_width(fitted) <= room + 1e-9
        assert pdf.get_string_width(text[: len(kept) + 1] + ELLIPSIS) > room  # one more character would not fit


def test_fit_returns_a_text_that_just_fits_whole() -> None:
    pdf = document()
    text = "exactly as wide as its room"

    assert pdf.fit(text, pdf.get_string_width(text)) == text


def test_a_cjk_value_in_a_row_is_written_in_the_wide_font_and_the_row_font_kept(tmp_path: Path) -> None:
    pdf = document()
    assert not pdf.has_wide_font  # read only on first need

    pdf.write_row(30.0, [(10.0, "Tokyo"), (40.0, "office 東京"), (80.0, "after")])

    assert pdf.has_wide_font and (pdf.font_family, pdf.font_size_pt) == (SANS.lower(), SIZE)
    page = read_back(pdf, tmp_path).pages[0]
    text = page.extract_text()
    assert all(value in text for value in ("Tokyo", "東京", "office", "after")), text
    assert any("DroidSansFallback" in name for name in font_names(page))


def test_text_without_cjk_never_loads_the_wide_font(tmp_path: Path) -> None:
    pdf = document()

    pdf.write_text(10.0, 20.0, "Zoë Müller ğ ß é", 14, "B")
    pdf.write_row(30.0, [(10.0, "Привет")])

    assert not pdf.has_wide_font
    assert not any("DroidSansFallback" in name for name in font_names(read_back(pdf, tmp_path).pages[0]))


def test_the_footer_says_page_n_of_m(tmp_path: Path) -> None:
    pdf = document()
    pdf.add_page()

    pages = read_back(pdf, tmp_path).pages

    assert ["Page 1 of 2" in pages[0].extract_text(), "Page 2 of 2" in pages[1].extract_text()] == [True, True]


def test_a_pdf_that_is_never_written_leaves_no_font_file_open() -> None:
    # Found: fpdf2 opens each font lazily and closes it only when it writes the file; a PDF refused
    # part-way (too many rows, a stopped export) kept its fonts open until the garbage collector came
    # (a ResourceWarning, and a file descriptor per such export in a warm worker).
    before = _open_font_files()
    pdf = PdfDocument("Never written")
    pdf.add_page()
    pdf.use_wide_font(SIZE)
    pdf.write_text(10, 20, "中文", SIZE)
    assert len(_open_font_files()) > len(before)
    pdf.close_fonts()
    assert _open_font_files() == before


def _open_font_files() -> list[str]:
    """This process's open files that are the PDF fonts (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".ttf"):
            found.append(target)
    return found
