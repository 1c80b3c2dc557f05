"""Report definitions, slugs, bind variables and parameter validation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
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
        "data_source_id": "demo",
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
