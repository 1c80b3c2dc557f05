"""Report definitions, slugs, bind variables and parameter validation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reportserver.domain.errors import InvalidDefinition, InvalidParameter
from reportserver.domain.reports import (
    Choice,
    ReportField,
    bind_parameters,
    bind_variables,
    parse_report,
    slugify,
)

REGIONS = [Choice(value="NSW", label="New South Wales"), Choice(value="VIC", label="Victoria")]


def load_choices(_field: ReportField) -> Sequence[Choice]:
    return REGIONS


def report(**overrides: Any) -> Any:
    definition: dict[str, Any] = {
        "name": "Orders by Region",
        "data_source_id": "1",
        "fields": [
            {"name": "region", "type": "choice", "required": True, "choices_sql": "SELECT 1"},
            {"name": "min_total", "type": "number"},
            {"name": "since", "type": "date", "default": "2025-01-01"},
            {"name": "at", "type": "datetime"},
            {"name": "limit", "type": "integer", "default": "10"},
            {"name": "shipped", "type": "boolean"},
            {"name": "note", "type": "string", "max_length": 20},
        ],
        "queries": [{"sql": "SELECT :region, :min_total, :since, :at, :limit, :shipped, :note"}],
    }
    definition.update(overrides)
    return parse_report(definition)


def bind(raw: dict[str, str | list[str]]) -> dict[str, Any]:
    as_lists = {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
    return bind_parameters(report(), as_lists, load_choices)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("GST Balance", "gst-balance"),
        ("  Sales -- by   Day ", "sales-by-day"),
        ("Café Münster", "cafe-munster"),
        ("Q1/Q2 Report (2025)", "q1-q2-report-2025"),
    ],
)
def test_slug_is_lower_case_words_joined_by_hyphens(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_bind_variables_ignore_literals_comments_and_casts() -> None:
    sql = "SELECT ':nope', x::text, /* :hidden */ a FROM t WHERE a = :a AND b = :b -- :c\n AND a2 = :a"
    assert bind_variables(sql) == ["a", "b"]


def test_values_are_converted_to_their_field_types() -> None:
    bound = bind({"region": "NSW", "min_total": "12.50", "at": "2025-03-01T10:30:00Z", "shipped": "yes"})
    assert bound == {
        "region": "NSW",
        "min_total": Decimal("12.50"),
        "since": date(2025, 1, 1),
        "at": datetime(2025, 3, 1, 10, 30),
        "limit": 10,
        "shipped": True,
        "note": None,
    }


def test_empty_value_falls_back_to_the_default() -> None:
    assert bind({"region": "VIC", "limit": ""})["limit"] == 10


@pytest.mark.parametrize(
    ("raw", "parameter", "message"),
    [
        ({"region": "NSW", "bogus": "1"}, "bogus", "Unknown parameter 'bogus'"),
        ({}, "region", "Missing required parameter 'region'"),
        ({"region": ""}, "region", "Missing required parameter 'region'"),
        ({"region": "Atlantis"}, "region", "must be one of the field's choices"),
        ({"region": "NSW", "limit": "ten"}, "limit", "must be a whole number"),
        ({"region": "NSW", "limit": "1.5"}, "limit", "must be a whole number"),
        ({"region": "NSW", "limit": "1; DROP TABLE orders"}, "limit", "must be a whole number"),
        ({"region": "NSW", "limit": "9" * 40}, "limit", "must be a whole number"),
        ({"region": "NSW", "min_total": "NaN"}, "min_total", "must be a number"),
        ({"region": "NSW", "min_total": "12,50"}, "min_total", "must be a number"),
        ({"region": "NSW", "since": "2025-13-01"}, "since", "must be a date as YYYY-MM-DD"),
        ({"region": "NSW", "since": "01/02/2025"}, "since", "must be a date"),
        ({"region": "NSW", "since": "2025-01-01T00:00"}, "since", "must be a date"),
        ({"region": "NSW", "at": "yesterday"}, "at", "must be a date-time"),
        ({"region": "NSW", "shipped": "maybe"}, "shipped", "must be true or false"),
        ({"region": "NSW", "note": "x" * 21}, "note", "too long (at most 20 characters)"),
        ({"region": "NSW", "note": "x" * 10_240}, "note", "too long"),
        ({"region": ["NSW", "VIC"]}, "region", "given more than once"),
        # Found: Python's own parsers accepted each of these.
        ({"region": "NSW", "since": "2025-W01-1"}, "since", "must be a date as YYYY-MM-DD"),
        ({"region": "NSW", "since": "20250101"}, "since", "must be a date"),
        ({"region": "NSW", "since": "\uff12\uff10\uff12\uff15-01-01"}, "since", "must be a date"),
        ({"region": "NSW", "at": "2025-W01-1T10:00"}, "at", "must be a date-time"),
        ({"region": "NSW", "limit": "\u0661\u0662"}, "limit", "must be a whole number"),
        ({"region": "NSW", "limit": "12\n"[:2] + "\u0663"}, "limit", "must be a whole number"),
        ({"region": "NSW", "min_total": "1_000"}, "min_total", "must be a number"),
        ({"region": "NSW", "min_total": "1e999999999"}, "min_total", "must be a number"),
        ({"region": "NSW", "min_total": "Infinity"}, "min_total", "must be a number"),
        ({"region": "NSW", "min_total": "\u0661.5"}, "min_total", "must be a number"),
        ({"region": "NSW", "shipped": "on"}, "shipped", "must be true or false"),
        ({"region": "NSW", "shipped": "t"}, "shipped", "must be true or false"),
        ({"region": "NSW", "limit": "\u20031"}, "limit", "must be a whole number"),  # an em space
        ({"region": "NSW", "limit": "\x1c5\x1f"}, "limit", "must be a whole number"),
        ({"region": "NSW", "shipped": "\xa0true"}, "shipped", "must be true or false"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    raw: dict[str, str | list[str]], parameter: str, message: str
) -> None:
    with pytest.raises(InvalidParameter) as raised:
        bind(raw)
    assert raised.value.parameter == parameter
    assert message in raised.value.message


def test_unknown_parameter_message_lists_the_report_fields() -> None:
    with pytest.raises(InvalidParameter) as raised:
        bind({"region": "NSW", "x": "1"})
    assert "this report takes: region, min_total, since, at, limit, shipped, note" in raised.value.message


def test_injection_text_in_a_string_field_is_kept_as_a_plain_value() -> None:
    text = "' OR 1=1 --"
    assert bind({"region": "NSW", "note": text})["note"] == text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"queries": [{"sql": "SELECT :undeclared"}]}, "not fields"),
        ({"queries": []}, "queries"),
        ({"name": ""}, "name"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": "123"}, "slug"),
        ({"formats": ["docx"]}, "unknown formats"),
        ({"fields": [{"name": "a b"}]}, "identifier"),
        ({"fields": [{"name": "a"}, {"name": "a"}], "queries": [{"sql": "SELECT :a"}]}, "unique"),
        ({"fields": [{"name": "r", "type": "choice"}], "queries": [{"sql": "SELECT :r"}]}, "needs choices"),
        (
            {
                "fields": [{"name": "r", "choices": [{"value": "a", "label": "A"}]}],
                "queries": [{"sql": "SELECT :r"}],
            },
            "only choice fields",
        ),
    ],
)
def test_invalid_report_definitions_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        report(**overrides)


def test_public_view_sorts_fields_and_hides_sql() -> None:
    view = report(
        fields=[{"name": "b", "field_order": 2}, {"name": "a", "field_order": 1}],
        queries=[{"sql": "SELECT secret_column FROM t WHERE x = :a AND y = :b"}],
    ).public_view()
    assert [f["name"] for f in view["fields"]] == ["a", "b"]
    assert "secret_column" not in str(view)
    assert view["slug"] == "orders-by-region"


@pytest.mark.parametrize(
    ("word", "truth"),
    [(w, True) for w in ("true", "TRUE", "1", "yes", "Y")] + [(w, False) for w in ("false", "0", "no", "N", "False")],
)
def test_booleans_take_the_documented_words_in_any_case(word: str, truth: bool) -> None:
    assert bind({"region": "NSW", "shipped": word})["shipped"] is truth


@given(st.text(max_size=30))
@example("1_000")
@example("\u0661\u0662")
@example("1e999999999")
def test_a_number_parameter_is_refused_or_is_exactly_the_ascii_number_given(text: str) -> None:
    # Given any text as a number parameter
    try:
        bound = bind({"region": "NSW", "min_total": text})["min_total"]
    except InvalidParameter as refused:
        # Then it is refused naming the parameter ...
        assert refused.parameter == "min_total"
        return
    # ... or it is the finite number the ASCII text spells, digit for digit (empty: no value)
    if not text.strip():
        assert bound is None
        return
    assert text.strip().isascii() and "_" not in text
    assert bound.is_finite() and bound == Decimal(text.strip())


@given(st.text(max_size=12))
@example("2025-W01-1")
@example("20250101")
def test_a_date_parameter_is_refused_or_is_the_yyyy_mm_dd_given(text: str) -> None:
    try:
        bound = bind({"region": "NSW", "since": text})["since"]
    except InvalidParameter as refused:
        assert refused.parameter == "since"
        return
    # ... or it is the date whose YYYY-MM-DD text was given, character for character
    assert bound.isoformat() == (text.strip() or "2025-01-01")
