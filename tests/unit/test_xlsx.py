"""The xlsx writer: every workbook is valid XML that openpyxl reads, and every cell holds its value as
exactly as Excel can (text with every digit where a double or Excel's calendar cannot), with a note on
the header of a column where a value became text or was cut.

The property test runs the profile's examples: 200 random tables in `make test`, 3,000 in `make test-long`.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import patch
from xml.etree import ElementTree

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.workbook.workbook import Workbook
from reportserver.render import to_xlsx
from reportserver.render.base import RenderContext, Sheet

GENERATED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMIT = 32_767
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SOME_FORBIDDEN = "a\x00b\x08c\x0bd\x0ce\x1ff\ufffeg\uffffh"
WHAT_DIGITS, WHAT_EARLY, WHAT_CUT = "more digits than Excel keeps", "before 1900-03-01", "32,767-character limit"
FIRST_DATE = date(1900, 3, 1)


def render(
    target: Path,
    sheets: Sequence[tuple[str, pa.Schema, Sequence[pa.RecordBatch]]],
    title: str = "Report",
) -> Path:
    context = RenderContext(title=title, generated_at=GENERATED)
    made = [Sheet(name, schema, iter(batches)) for name, schema, batches in sheets]
    to_xlsx.RENDERER.render(iter(made), target, context, progress=lambda _rows: None)
    return target


def render_columns(tmp_path: Path, sheet: str = "Data", title: str = "Report", **arrays: pa.Array) -> Path:
    """One sheet of one batch: a column per keyword."""
    schema = pa.schema([pa.field(name, array.type) for name, array in arrays.items()])
    batch = pa.RecordBatch.from_arrays(list(arrays.values()), schema=schema)
    return render(tmp_path / "out.xlsx", [(sheet, schema, [batch])], title)


def parse_every_part(path: Path) -> dict[str, bytes]:
    """Every part of the package, each checked to be well-formed XML."""
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    for content in parts.values():
        ElementTree.fromstring(content)  # raises on anything XML 1.0 forbids, a split entity included
    return parts


def load(path: Path) -> Workbook:
    """openpyxl's reading of the workbook, with any of its warnings (a date out of range) an error."""
    parse_every_part(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return openpyxl.load_workbook(path)


def column_values(path: Path, column: int = 1) -> list[Any]:
    sheet = load(path).worksheets[0]
    return [row[column - 1].value for row in sheet.iter_rows(min_row=2)]


def column_cells(path: Path, column: int = 1) -> list[tuple[Any, str]]:
    sheet = load(path).worksheets[0]
    return [(row[column - 1].value, row[column - 1].data_type) for row in sheet.iter_rows(min_row=2)]


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut(text: str) -> str:
    """Excel's limit counts UTF-16 units; a pair that does not fit whole is left out."""
    kept = text.encode("utf-16-le")[: 2 * LIMIT]
    while True:
        try:
            return kept.decode("utf-16-le")
        except UnicodeDecodeError:
            kept = kept[:-2]


# --- Text: cut before escaping, counted as Excel counts, characters XML forbids removed ---


@pytest.mark.parametrize(
    "text",
    ["<" * LIMIT, "x" * (LIMIT - 2) + "&&&", "<" * 40_000, "&" * (LIMIT + 1), "a>" * 20_000],
    ids=["lt-at-limit", "amp-across-limit", "lt-beyond", "amp-beyond", "gt-beyond"],
)
def test_text_is_cut_to_the_limit_before_escaping_so_no_entity_is_split(tmp_path: Path, text: str) -> None:
    # Given text whose escaped form is far longer than Excel's limit
    path = render_columns(tmp_path, t=pa.array([text]))
    # When it is read back, then the workbook is valid and the cell holds the first 32,767 characters
    assert column_values(path) == [text[:LIMIT]]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("😀" * 20_000, "😀" * 16_383),  # 32,766 units: a 32,768th would split a pair
        ("x" + "😀" * 16_383, "x" + "😀" * 16_383),  # exactly 32,767 units: kept whole
        ("x" * (LIMIT - 1) + "😀", "x" * (LIMIT - 1)),
        ("é" * LIMIT, "é" * LIMIT),  # two UTF-8 bytes, one unit
    ],
    ids=["astral-only", "astral-exactly-at-limit", "astral-across-limit", "two-byte-at-limit"],
)
def test_a_character_beyond_the_bmp_counts_two_towards_excels_limit(tmp_path: Path, text: str, kept: str) -> None:
    path = render_columns(tmp_path, t=pa.array([text]))
    [value] = column_values(path)
    assert value == kept and utf16_units(value) <= LIMIT


def test_characters_xml_forbids_are_removed_from_cells(tmp_path: Path) -> None:
    path = render_columns(tmp_path, t=pa.array([SOME_FORBIDDEN, "\ufffe", "plain"]))
    assert column_values(path) == ["abcdefgh", "", "plain"]


def test_characters_xml_forbids_are_removed_from_headers(tmp_path: Path) -> None:
    path = render_columns(tmp_path, **{SOME_FORBIDDEN: pa.array([1])})
    assert load(path).worksheets[0]["A1"].value == "abcdefgh"


def test_characters_xml_forbids_are_removed_from_sheet_names(tmp_path: Path) -> None:
    path = render_columns(tmp_path, sheet=SOME_FORBIDDEN, a=pa.array([1]))
    assert load(path).sheetnames == ["abcdefgh"]


def test_characters_xml_forbids_are_removed_from_the_title(tmp_path: Path) -> None:
    path = render_columns(tmp_path, title=SOME_FORBIDDEN, a=pa.array([1]))
    assert load(path).properties.title == "abcdefgh"


def test_a_carriage_return_in_text_is_kept_not_read_as_a_line_feed(tmp_path: Path) -> None:
    path = render_columns(tmp_path, t=pa.array(["a\r\nb\rc", "&\r<"]))
    assert column_values(path) == ["a\r\nb\rc", "&\r<"]


def test_whitespace_at_either_end_of_text_and_headers_is_kept(tmp_path: Path) -> None:
    path = render_columns(tmp_path, **{" padded ": pa.array(["  two spaces  ", "\ttab\n"])})
    sheet = load(path).worksheets[0]
    assert sheet["A1"].value == " padded " and [sheet["A2"].value, sheet["A3"].value] == ["  two spaces  ", "\ttab\n"]


# --- Sheet names: Excel's rules ---


@pytest.mark.parametrize(
    ("wanted", "named"),
    [
        (["a[b]c:d*e?f/g\\h"], ["a_b_c_d_e_f_g_h"]),
        ([""], ["Sheet"]),
        (["   "], ["Sheet"]),
        (["'quoted'"], ["quoted"]),
        (["x" * 40], ["x" * 31]),
        (["x" * 30 + "'y"], ["x" * 30]),  # cut, then no apostrophe last
        (["a" * 30 + "😀"], ["a" * 30]),  # 32 UTF-16 units: the pair does not fit
        (["History"], ["History (2)"]),
        (["history"], ["history (2)"]),
        (["Data", "DATA", "data"], ["Data", "DATA (2)", "data (3)"]),
        (["x" * 31, "x" * 31], ["x" * 31, "x" * 27 + " (2)"]),
        (["line\nbreak\ttab"], ["line break tab"]),
        (["It's"], ["It's"]),
    ],
)
def test_sheet_names_follow_excels_rules(tmp_path: Path, wanted: list[str], named: list[str]) -> None:
    schema = pa.schema([("a", pa.int64())])
    sheets = [(name, schema, [pa.RecordBatch.from_arrays([pa.array([1])], schema=schema)]) for name in wanted]
    book = load(render(tmp_path / "out.xlsx", sheets))
    assert book.sheetnames == named
    assert all(book[name]["A2"].value == 1 for name in named)  # and the autofilter names resolve


# --- Exactness: numbers Excel cannot hold exactly are text with every digit ---


def test_integers_beyond_2_53_are_text_with_every_digit(tmp_path: Path) -> None:
    values = [2**53, -(2**53), 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), None, 7]
    path = render_columns(tmp_path, i=pa.array(values, pa.int64()))
    assert column_cells(path) == [
        (2**53, "n"),
        (-(2**53), "n"),
        (str(2**53 + 1), "s"),
        (str(-(2**53) - 1), "s"),
        ("9223372036854775807", "s"),
        ("-9223372036854775808", "s"),
        (None, "n"),
        (7, "n"),
    ]


@pytest.mark.parametrize(
    ("scale", "value", "expected"),
    [
        (2, "1234567890123.45", 1234567890123.45),  # 15 digits: a number
        (2, "12345678901234.56", "12345678901234.56"),
        (2, "-12345678901234.56", "-12345678901234.56"),
        (18, "123.450000000000000000", 123.45),  # trailing zeros are not significant
        (18, "0.123456789012345678", "0.123456789012345678"),
        (0, "100000000000000000000000000000000000", 1e35),
        (0, "99999999999999999999999999999999999999", "99999999999999999999999999999999999999"),
        (22, "0.0000001234567890123456", "0.0000001234567890123456"),  # Arrow would write an exponent
        (38, "0.00000000000000000000000000000000000001", 1e-38),
        (10, "0.0000000000", 0),
    ],
)
def test_decimals_with_more_than_15_significant_digits_are_text(
    tmp_path: Path, scale: int, value: str, expected: Any
) -> None:
    path = render_columns(tmp_path, d=pa.array([Decimal(value)], pa.decimal128(38, scale)))
    [(read, kind)] = column_cells(path)
    if isinstance(expected, str):
        assert (read, kind) == (expected, "s")
    else:
        assert kind == "n" and float(read) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(1, 1, 1), "0001-01-01"),
        (date(1899, 12, 31), "1899-12-31"),
        (date(1900, 1, 1), "1900-01-01"),
        (date(1900, 2, 28), "1900-02-28"),  # Excel's serial 59 is right, but 60 is its 1900-02-29
        (date(1900, 3, 1), datetime(1900, 3, 1)),
        (date(1970, 1, 1), datetime(1970, 1, 1)),
        (date(9999, 12, 31), datetime(9999, 12, 31)),
    ],
)
def test_dates_before_1900_03_01_are_iso_text(tmp_path: Path, day: date, expected: Any) -> None:
    path = render_columns(tmp_path, d=pa.array([day], pa.date32()))
    assert column_values(path) == [expected]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(1, 1, 1), "0001-01-01 00:00:00"),
        (datetime(1899, 12, 31, 23, 59, 59, 500), "1899-12-31 23:59:59.000500"),
        (datetime(1900, 2, 28, 12, 0), "1900-02-28 12:00:00"),
        (datetime(1900, 3, 1), datetime(1900, 3, 1)),
        (datetime(1700, 6, 1, 12), "1700-06-01 12:00:00"),
        (datetime(2300, 6, 1, 12, 0, 0, 250_000), datetime(2300, 6, 1, 12, 0, 0, 250_000)),
        (datetime(2025, 2, 1, 0, 0, 0, 500_999), datetime(2025, 2, 1, 0, 0, 0, 500_000)),  # to the millisecond
        (datetime(9999, 12, 31, 23, 59, 59, 999_999), datetime(9999, 12, 31, 23, 59, 59, 999_000)),
    ],
)
def test_timestamps_from_year_1_to_9999_are_written_before_1900_03_01_as_iso_text(
    tmp_path: Path, moment: datetime, expected: Any
) -> None:
    path = render_columns(tmp_path, at=pa.array([moment], pa.timestamp("us")))
    assert column_values(path) == [expected]


def test_an_instant_is_its_utc_wall_time_under_a_header_marked_utc(tmp_path: Path) -> None:
    moments = [datetime(2025, 1, 1, 12, tzinfo=UTC), datetime(1850, 1, 1, tzinfo=UTC), None]
    path = render_columns(tmp_path, at=pa.array(moments, pa.timestamp("us", tz="UTC")))
    sheet = load(path).worksheets[0]
    assert sheet["A1"].value == "at (UTC)"
    values = [sheet["A2"].value, sheet["A3"].value, sheet["A4"].value]
    assert values == [datetime(2025, 1, 1, 12), "1850-01-01 00:00:00", None]
    assert sheet["A2"].number_format == "yyyy\\-mm\\-dd\\ hh:mm:ss"


def test_binary_is_base64_text(tmp_path: Path) -> None:
    path = render_columns(tmp_path, b=pa.array([b"\x00\xff\xfe", b"", None, b"\xfb\xff"], pa.binary()))
    assert column_values(path) == ["AP/+", "", None, "+/8="]


def test_booleans_are_boolean_cells(tmp_path: Path) -> None:
    path = render_columns(tmp_path, b=pa.array([True, False, None]))
    assert column_cells(path) == [(True, "b"), (False, "b"), (None, "n")]
    assert b'<c t="b"><v>1</v></c>' in parse_every_part(path)["xl/worksheets/sheet1.xml"]


# --- Notes: a header says why its column's values are not all as its type would have them ---


@pytest.mark.parametrize(
    ("array", "what"),
    [
        (pa.array([1, 2**60], pa.int64()), WHAT_DIGITS),
        (pa.array([Decimal("1.5"), Decimal("12345678901234567.8")], pa.decimal128(38, 1)), WHAT_DIGITS),
        (pa.array([date(2025, 1, 1), date(1899, 1, 1)], pa.date32()), WHAT_EARLY),
        (pa.array([None, datetime(1800, 1, 1)], pa.timestamp("us")), WHAT_EARLY),
        (pa.array([datetime(1800, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")), WHAT_EARLY),
        (pa.array(["short", "x" * 40_000]), WHAT_CUT),
        (pa.array([b"\x00" * 30_000], pa.binary()), WHAT_CUT),
        (pa.array([datetime(2025, 1, 1, 10, 0, 0, 123_456)], pa.timestamp("us")), "millisecond"),
    ],
    ids=["integer", "decimal", "date", "timestamp", "instant", "text", "binary", "microseconds"],
)
def test_a_column_with_values_written_as_text_or_cut_has_a_note_on_its_header(
    tmp_path: Path, array: pa.Array, what: str
) -> None:
    # Given a plain column beside one whose values Excel cannot hold as they are
    path = render_columns(tmp_path, plain=pa.array([1] * len(array)), odd=array)
    # Then the odd column's header has a comment saying why, and the plain column's has none
    sheet = load(path).worksheets[0]
    assert sheet["A1"].comment is None
    assert sheet["B1"].comment is not None and what in sheet["B1"].comment.text
    parts = parse_every_part(path)
    assert b'<legacyDrawing r:id="rId1"/>' in parts["xl/worksheets/sheet1.xml"]
    assert {"xl/comments1.xml", "xl/drawings/vmlDrawing1.vml", "xl/worksheets/_rels/sheet1.xml.rels"} <= set(parts)
    assert b'PartName="/xl/comments1.xml"' in parts["[Content_Types].xml"]
    assert b'Extension="vml"' in parts["[Content_Types].xml"]


def test_a_note_names_every_reason_its_column_has(tmp_path: Path) -> None:
    path = render_columns(tmp_path, t=pa.array(["x" * 40_000]), d=pa.array([date(1, 1, 1)]))
    sheet = load(path).worksheets[0]
    assert WHAT_CUT in sheet["A1"].comment.text and WHAT_DIGITS not in sheet["A1"].comment.text
    assert WHAT_EARLY in sheet["B1"].comment.text


def test_a_sheet_whose_values_all_fit_has_no_notes(tmp_path: Path) -> None:
    path = render_columns(tmp_path, i=pa.array([2**53]), d=pa.array([date(1900, 3, 1)]), t=pa.array(["x" * LIMIT]))
    parts = parse_every_part(path)
    assert not any("comments" in name or name.endswith(".vml") or "_rels/sheet" in name for name in parts)
    assert b"legacyDrawing" not in parts["xl/worksheets/sheet1.xml"]
    assert b"vml" not in parts["[Content_Types].xml"]


def test_notes_are_decided_for_each_part_of_a_long_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sheet that continues on a second part (two rows a part), a big integer only in the second
    monkeypatch.setattr(to_xlsx, "MAX_ROWS", 3)
    schema = pa.schema([("i", pa.int64())])
    batches = [pa.RecordBatch.from_arrays([pa.array(v, pa.int64())], schema=schema) for v in ([1], [2, 2**60])]
    book = load(render(tmp_path / "out.xlsx", [("Data", schema, batches)]))
    # Then only the second part's header has the note
    assert book.sheetnames == ["Data", "Data (2)"]
    assert book["Data"]["A1"].comment is None
    assert WHAT_DIGITS in book["Data (2)"]["A1"].comment.text
    assert [book["Data"]["A2"].value, book["Data"]["A3"].value, book["Data (2)"]["A2"].value] == [1, 2, str(2**60)]


# --- Property: any table of the contract's types reads back as the contract says ---

CHARACTERS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from([*"\x00\x01\x08\x0b\x0c\x0e\x1f\t\n\r\ufffe\uffff<>&'\"[]:*?/\\", "😀", "\U0010ffff"]),
)


def texts(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    # Joined from a list: st.text() merges the alphabet into one set of code points, losing the bias
    # towards the characters above.
    return st.lists(CHARACTERS, min_size=min_size, max_size=max_size).map("".join)


SHORT_TEXT = texts()
LONG_TEXT = st.builds(
    lambda piece, length: (piece * length)[:length],
    texts(min_size=1, max_size=3),
    st.one_of(st.integers(16_380, 16_390), st.integers(32_760, 32_770), st.integers(32_771, 40_000)),
)
LONG_BINARY = st.builds(
    lambda piece, length: (piece * length)[:length],
    st.binary(min_size=1, max_size=3),
    st.integers(24_570, 30_000),  # base64 of more than 24,575 bytes passes the limit
)
EDGE = 2**53


@dataclass(frozen=True)
class Kind:
    arrow: pa.DataType
    values: st.SearchStrategy[Any]


def decimal_kinds(scale: int, precision: int) -> Kind:
    top = 10**precision - 1
    # As many values of each length as of any other, and more around Excel's 15 digits.
    lengths = st.one_of(st.integers(1, precision), st.integers(min(14, precision), min(18, precision)))
    digits = lengths.flatmap(lambda n: st.integers(10 ** (n - 1), 10**n - 1))
    unscaled = st.one_of(
        st.builds(lambda sign, value: sign * value, st.sampled_from([1, -1]), digits),
        st.builds(lambda value, zeros: value * 10**zeros, st.integers(-999, 999), st.integers(0, precision)),
    ).filter(lambda u: abs(u) <= top)
    # From text, not scaleb: Decimal arithmetic would round to the context's 28 digits.
    return Kind(pa.decimal128(precision, scale), unscaled.map(lambda u: Decimal(f"{u}E-{scale}")))


KINDS = st.one_of(
    st.just(
        Kind(
            pa.int64(),
            st.one_of(
                st.integers(-(2**63), 2**63 - 1),
                st.integers(EDGE - 2, EDGE + 2),
                st.integers(-EDGE - 2, -EDGE + 2),
                st.integers(-1000, 1000),
            ),
        )
    ),
    st.just(Kind(pa.float64(), st.floats())),
    st.integers(0, 38).flatmap(lambda s: st.integers(max(s, 1), 38).map(lambda p: decimal_kinds(s, p))),
    st.just(Kind(pa.string(), st.one_of(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT, LONG_TEXT))),
    st.just(Kind(pa.bool_(), st.booleans())),
    st.just(Kind(pa.date32(), st.one_of(st.dates(), st.dates(date(1900, 2, 25), date(1900, 3, 3))))),
    st.just(
        Kind(
            pa.timestamp("us"),
            st.one_of(
                st.datetimes(),
                st.datetimes(datetime(1900, 2, 28), datetime(1900, 3, 1, 0, 0, 1)),
                st.datetimes(datetime(9999, 12, 31, 23, 59, 59)),
            ),
        )
    ),
    st.just(Kind(pa.timestamp("us", tz="UTC"), st.datetimes(timezones=st.just(UTC)))),
    st.just(Kind(pa.binary(), st.one_of(st.binary(max_size=10), st.binary(max_size=10), LONG_BINARY))),
)


@dataclass
class Table:
    name: str
    schema: pa.Schema
    columns: list[list[Any]]  # the values of each column, every row
    batches: list[pa.RecordBatch]


@st.composite
def tables(draw: st.DrawFn) -> Table:
    kinds = draw(st.lists(KINDS, min_size=1, max_size=4))
    names = draw(st.lists(SHORT_TEXT, min_size=len(kinds), max_size=len(kinds)))
    rows = draw(st.integers(0, 7))
    columns = [draw(st.lists(st.one_of(st.none(), k.values), min_size=rows, max_size=rows)) for k in kinds]
    schema = pa.schema([pa.field(n, k.arrow) for n, k in zip(names, kinds, strict=True)])
    cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=3)))  # several batches, empty ones too
    bounds = [0, *cuts, rows]
    batches = [
        pa.RecordBatch.from_arrays(
            [pa.array(c[start:end], k.arrow) for c, k in zip(columns, kinds, strict=True)], schema=schema
        )
        for start, end in itertools.pairwise(bounds)
    ]
    name = draw(st.one_of(SHORT_TEXT, texts(max_size=40), st.sampled_from(["History", "'a'", "Data"])))
    return Table(name, schema, columns, batches)


def written(kind: pa.DataType, value: Any) -> tuple[Any, set[str]]:
    """What a cell reads back as under the contract, and the notes the value gives its column."""
    if value is None:
        return None, set()
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        text = FORBIDDEN.sub("", value) if isinstance(value, str) else base64.b64encode(value).decode()
        return cut(text), {WHAT_CUT} if cut(text) != text else set()
    if pa.types.is_integer(kind):
        return (value, set()) if abs(value) <= EDGE else (str(value), {WHAT_DIGITS})
    if pa.types.is_floating(kind):
        return (value if math.isfinite(value) else None), set()
    if pa.types.is_decimal(kind):
        significant = "".join(map(str, value.as_tuple().digits)).strip("0")
        return (value, set()) if len(significant) <= 15 else (format(value, "f"), {WHAT_DIGITS})
    if pa.types.is_timestamp(kind):
        wall = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        if wall < datetime(1900, 3, 1):
            return wall.isoformat(sep=" "), {WHAT_EARLY}
        return wall.replace(microsecond=wall.microsecond // 1000 * 1000), set()
    if pa.types.is_date(kind):
        if value < FIRST_DATE:
            return value.isoformat(), {WHAT_EARLY}
        return datetime(value.year, value.month, value.day), set()
    return value, set()


def assert_cell(kind: pa.DataType, read: Any, data_type: str, expected: Any) -> None:
    if isinstance(expected, Decimal):
        assert data_type == "n" and float(read) == float(expected)  # the double Excel reads
    elif isinstance(expected, str):
        assert (read, data_type) == (expected, "s")
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        assert data_type == "n" and read == expected and (expected is None or type(read) in (int, float))
    else:
        assert read == expected


def assert_valid_sheet_names(names: list[str]) -> None:
    folded = [n.casefold() for n in names]
    assert len(set(folded)) == len(folded) and "history" not in folded
    for name in names:
        assert name.strip() and 1 <= utf16_units(name) <= 31
        assert not re.search(r"[\[\]:*?/\\\x00-\x1f\ufffe\uffff]", name)
        assert not name.startswith("'") and not name.endswith("'")


def check_workbook(path: Path, sources: list[Table], title: str, max_rows: int) -> None:
    book = load(path)  # (a) every part parses and (b) openpyxl reads it
    assert (book.properties.title or "") == FORBIDDEN.sub("", title)
    assert_valid_sheet_names(book.sheetnames)
    per_part = max_rows - 1
    sheets = iter(book.worksheets)
    for source in sources:
        rows = len(source.columns[0])
        for start in range(0, max(rows, 1), per_part):  # a part each, and one even with no rows
            sheet = next(sheets)
            end = min(start + per_part, rows)
            for index, (field, values) in enumerate(zip(source.schema, source.columns, strict=True), start=1):
                header = sheet.cell(1, index)
                suffix = " (UTC)" if pa.types.is_timestamp(field.type) and field.type.tz else ""
                assert (header.value or "") == cut(FORBIDDEN.sub("", field.name + suffix))
                notes: set[str] = set()
                for row, value in enumerate(values[start:end], start=2):
                    expected, why = written(field.type, value)
                    notes |= why
                    cell = sheet.cell(row, index)
                    assert_cell(field.type, cell.value, cell.data_type, expected)
                comment = header.comment.text if header.comment else ""
                assert {w for w in (WHAT_DIGITS, WHAT_EARLY, WHAT_CUT) if w in comment} == notes, (field, notes)
            assert sheet.max_row <= 1 + end - start
    assert next(sheets, None) is None


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(
    sources=st.lists(tables(), min_size=1, max_size=3),
    title=texts(max_size=20),
    max_rows=st.sampled_from([to_xlsx.MAX_ROWS, 3, 4]),
)
def test_any_table_reads_back_as_the_contract_says(sources: list[Table], title: str, max_rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder, patch.object(to_xlsx, "MAX_ROWS", max_rows):
        path = render(Path(folder) / "out.xlsx", [(t.name, t.schema, t.batches) for t in sources], title)
        check_workbook(path, sources, title, max_rows)
