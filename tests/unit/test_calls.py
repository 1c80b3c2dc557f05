"""Report calls over a fake catalog and the real demo database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportserver.domain.access import Principal
from reportserver.domain.calls import CallLimits, ReportRunner, field_by_id, find_report, readable_reports
from reportserver.domain.errors import Forbidden, InvalidParameter, NotFound, ResultTooLarge
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report, parse_report
from reportserver.sources.registry import open_source

from infra.demo.reports import DEMO_REPORTS
from tests.fakes import MemoryCatalog, principal

DEMO_SOURCE_ID = "1"

ADMIN = principal("admin", ("*",), ("admin",))
SALES = principal("sales-bot", ("sales",))
LIMITS = CallLimits(max_rows=50_000, max_bytes=5_000_000)


@pytest.fixture
def catalog(demo_database: Path) -> MemoryCatalog:
    reports: list[Report] = []
    field_id = 0
    for number, definition in enumerate(DEMO_REPORTS, start=1):
        report = parse_report({**definition, "data_source_id": DEMO_SOURCE_ID})
        report.id = number
        for field in report.fields:
            field_id += 1
            field.id = field_id
        reports.append(report)
    return MemoryCatalog(reports, [DataSource(id=DEMO_SOURCE_ID, database=str(demo_database))])


def call(
    catalog: MemoryCatalog,
    reference: str,
    raw: dict[str, list[str]],
    limits: CallLimits = LIMITS,
    who: Principal = ADMIN,
) -> dict:
    runner = ReportRunner(catalog, open_source)
    return json.loads(runner.call(find_report(catalog, who, reference), raw, limits).body)


@pytest.mark.parametrize("reference", ["gst-balance", "1", "GST Balance", "gst balance", " GST Balance "])
def test_report_is_found_by_slug_id_or_name(catalog: MemoryCatalog, reference: str) -> None:
    # Found: report_name "GST Balance" (the display name) answered 404.
    assert find_report(catalog, ADMIN, reference).slug == "gst-balance"


def test_a_name_whose_slug_matches_but_is_not_the_name_is_not_found(catalog: MemoryCatalog) -> None:
    with pytest.raises(NotFound, match="Unknown report"):
        find_report(catalog, ADMIN, "GST  Balance!!")


@pytest.mark.parametrize("reference", ["999", "no-such-report", "..", "gst-balance/..", "GST Balances", "x" * 300])
def test_unknown_report_is_not_found(catalog: MemoryCatalog, reference: str) -> None:
    with pytest.raises(NotFound, match="Unknown report"):
        find_report(catalog, ADMIN, reference)


def test_token_outside_the_reports_groups_is_forbidden(catalog: MemoryCatalog) -> None:
    with pytest.raises(Forbidden, match="sales-bot"):
        find_report(catalog, SALES, "gst-balance")


def test_report_list_holds_only_what_the_token_may_run(catalog: MemoryCatalog) -> None:
    slugs = {r.slug for r in readable_reports(catalog, SALES)}
    assert "gst-balance" not in slugs and "sales-by-day" in slugs


def test_gst_balance_answers_the_seed_shape_with_exact_money(catalog: MemoryCatalog) -> None:
    body = call(catalog, "gst-balance", {"date_from": ["2025-07-01"], "date_to": ["2025-09-30"]})
    assert body["ok"] is True and body["message"] == ""
    assert [r["month"] for r in body["records"]] == ["2025-07", "2025-08", "2025-09"]
    first = body["records"][0]
    assert set(first) == {"month", "orders", "net_sales", "gst_collected", "gross_sales"}
    assert round(first["net_sales"] + first["gst_collected"], 2) == first["gross_sales"]


def test_choices_come_from_the_fields_query(catalog: MemoryCatalog) -> None:
    report, field = field_by_id(catalog, ADMIN, str(catalog.report_by_slug("orders-by-region").fields[0].id))
    values = [c.value for c in ReportRunner(catalog, open_source).choices(report, field)]
    assert values == ["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]


def test_a_field_without_choices_is_not_a_choices_endpoint(catalog: MemoryCatalog) -> None:
    date_field = catalog.report_by_slug("gst-balance").fields[0]
    with pytest.raises(NotFound, match="has no choices"):
        field_by_id(catalog, ADMIN, str(date_field.id))


def test_result_over_the_row_cap_is_413(catalog: MemoryCatalog) -> None:
    with pytest.raises(ResultTooLarge, match=r"more than 100 rows.*POST /api/exports/"):
        call(catalog, "order-lines", {}, CallLimits(max_rows=100, max_bytes=5_000_000))


def test_result_exactly_at_the_row_cap_is_returned(catalog: MemoryCatalog) -> None:
    body = call(catalog, "order-lines", {"row_limit": ["100"]}, CallLimits(max_rows=100, max_bytes=5_000_000))
    assert len(body["records"]) == 100


def test_result_over_the_byte_cap_is_413(catalog: MemoryCatalog) -> None:
    with pytest.raises(ResultTooLarge, match="bytes"):
        call(catalog, "order-lines", {"row_limit": ["1000"]}, CallLimits(max_rows=50_000, max_bytes=10_000))


def test_the_byte_cap_measures_what_the_limits_measure_says(catalog: MemoryCatalog) -> None:
    raw = {"row_limit": ["100"]}
    body = ReportRunner(catalog, open_source).call(find_report(catalog, ADMIN, "order-lines"), raw, LIMITS).body
    exact = CallLimits(max_rows=50_000, max_bytes=2 * len(body), measure=lambda chunk: 2 * len(chunk))
    assert call(catalog, "order-lines", raw, exact)["records"]
    with pytest.raises(ResultTooLarge):
        call(catalog, "order-lines", raw, CallLimits(50_000, 2 * len(body) - 1, lambda chunk: 2 * len(chunk)))


def test_a_number_parameter_compares_as_a_number(catalog: MemoryCatalog) -> None:
    # Found: `unit_price_cents >= :min_price * 100` with the value bound as text compared text.
    everything = call(catalog, "product-catalogue", {})["records"]
    over_ten = call(catalog, "product-catalogue", {"min_price": ["10"]})["records"]
    expected = [r for r in everything if r["unit_price"] >= 10]
    assert 0 < len(over_ten) == len(expected) < len(everything)


def test_injection_attempts_return_only_bound_results(catalog: MemoryCatalog, demo_database: Path) -> None:
    for text in ("' OR 1=1 --", "1; DROP TABLE orders", "%' OR '1'='1"):
        assert call(catalog, "customer-search", {"name": [text]})["records"] == []
    assert len(call(catalog, "customer-search", {"name": ["Smith"]})["records"]) > 0
    with pytest.raises(InvalidParameter):
        call(catalog, "customer-search", {"name": ["a"], "min_orders": ["0; DROP TABLE orders"]})
