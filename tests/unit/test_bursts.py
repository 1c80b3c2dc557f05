"""Per-recipient runs: the binding's rows become one recipient each, with exact parameter text."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.bursts import recipients
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.job_runs import parse_generated_id
from reportserver.domain.jobs import BillingStatementBinding, JobBody, JobParameter

BINDING = BillingStatementBinding(dataModelId=1, dataMember="people", emailAddressField="Email")


def _body(*bound: str) -> JobBody:
    return JobBody(
        name="statements", documentId=7, recurrenceRule="FREQ=DAILY", mode="billingStatement",
        billingStatementBinding=BINDING,
        parameters=[JobParameter(name=f"p_{column}", source="bound", value=column) for column in bound],
    )  # fmt: skip


_VALUES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=False, allow_infinity=False, places=9),
    st.dates(),
    st.datetimes(),
    st.text(min_size=1, max_size=20).filter(str.strip),
    st.booleans(),
)
_ROWS = st.lists(st.tuples(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=True), _VALUES), max_size=30)


def _written(value: Any) -> str:
    """How a person writes the value as a report parameter: exact, plain notation, ISO dates."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        sign, digits, exponent = value.as_tuple()
        text = "".join(map(str, digits))
        if isinstance(exponent, int) and exponent < 0:
            text = text.rjust(-exponent + 1, "0")
            text = f"{text[:exponent]}.{text[exponent:]}"
        elif isinstance(exponent, int):
            text += "0" * exponent
        return ("-" if sign else "") + text
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


@given(_ROWS, st.randoms(use_true_random=False))
def test_each_row_is_one_recipient_with_its_value_as_exact_text_whatever_the_rows_order(
    rows: list[tuple[str, Any]], shuffler: Any
) -> None:
    found = recipients(_body("amount"), 3, "20261203T000000Z", ["email", "AMOUNT"], rows)
    assert [m.index for m in found] == list(range(1, len(rows) + 1))
    assert sorted(m.address for m in found) == sorted(address for address, _ in rows)
    given_back = sorted((m.address, m.parameters["p_amount"]) for m in found)
    expected = sorted((address, _written(value)) for address, value in rows)
    assert given_back == expected
    # A start retried reads the rows again, perhaps in another order: each recipient keeps its run
    reordered = list(rows)
    shuffler.shuffle(reordered)
    again = recipients(_body("amount"), 3, "20261203T000000Z", ["email", "AMOUNT"], reordered)
    assert [(m.key(), m.address, m.parameters) for m in again] == [(m.key(), m.address, m.parameters) for m in found]


@pytest.mark.parametrize(
    ("names", "rows", "message"),
    [
        (["mail"], [("a@example.com",)], "no emailAddressField 'Email'"),
        (["email"], [("a@example.com",)], "no parameter p_region's column 'region'"),
        (["email", "region"], [("a@example.com", "NSW"), (None, "VIC")], "Row 2 of the recipients has no valid"),
        (["email", "region"], [("not an address", "NSW")], "Row 1 of the recipients has no valid"),
        (["email", "region"], [("a@example.com", 1.5)], "is a float"),
        (["email", "region"], [("a@example.com", "NSW"), ("b@example.com", None)], "Row 2 of the recipients has no"),
        (["email", "region"], [("a@example.com", "  ")], "Row 1 of the recipients has no value in 'region'"),
    ],
)
def test_rows_that_cannot_be_mailed_rightly_fail_the_run(names: list[str], rows: list[Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        recipients(_body("region"), 3, "20261203T000000Z", names, rows)
    assert message in refused.value.message


def test_a_recipients_run_reads_back_by_its_generated_id() -> None:
    assert parse_generated_id("4.20261203T150000Z.r00002") == (4, "20261203T150000Z.r00002")
    run_id = "0123456789abcdef0123456789abcdef"
    assert parse_generated_id(f"4.20261203T150000Z.{run_id}.r00010") == (4, f"20261203T150000Z.{run_id}.r00010")
    for text in ("4.20261203T150000Z.r00000", "4.20261203T150000Z.r0001", "4..r00001", "4.20261203T150000Z.r00001."):
        with pytest.raises(Exception, match="No generated document"):
            parse_generated_id(text)
