"""Conditional delivery: the test on a query's result, compared as exact decimals."""

from __future__ import annotations

import operator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.conditions import evaluate
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.jobs import CONDITION_OPERATORS, DeliveryCondition

_PYTHON = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq,
           "!=": operator.ne}  # fmt: skip
_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12)


def _condition(measure: str, op: str, threshold: Decimal | int) -> DeliveryCondition:
    return DeliveryCondition(dataModelId=1, dataMember="q", measure=measure, operator=op, threshold=str(threshold))


@given(st.integers(min_value=0, max_value=50), st.sampled_from(CONDITION_OPERATORS), st.integers(-2, 52))
def test_rows_are_counted_and_compared(count: int, op: str, threshold: int) -> None:
    outcome = evaluate(_condition("rows", op, threshold), ["a"], [(1,)] * count)
    assert outcome.holds == _PYTHON[op](count, threshold)
    assert outcome.observed == str(count) and outcome.condition == f"rows {op} {threshold}"


@given(_DECIMALS, st.sampled_from(CONDITION_OPERATORS), _DECIMALS)
def test_a_value_is_compared_exactly(value: Decimal, op: str, threshold: Decimal) -> None:
    outcome = evaluate(_condition("Backlog", op, threshold), ["backlog"], [(value,), (Decimal(10**13),)])
    assert outcome.holds == _PYTHON[op](value, threshold)  # the first row's, never rounded
    assert Decimal(outcome.observed or "NaN") == value


@pytest.mark.parametrize("rows", [[], [(None,)], [("n/a",)], [(True,)], [("NaN",)]])
def test_no_number_never_holds(rows: list[tuple[Any, ...]]) -> None:
    for op in CONDITION_OPERATORS:
        outcome = evaluate(_condition("backlog", op, 0), ["backlog"], rows)
        assert not outcome.holds and outcome.observed is None


def test_a_measure_the_query_does_not_give_fails_the_run_naming_the_columns() -> None:
    with pytest.raises(InvalidParameter) as refused:
        evaluate(_condition("backlog", ">", 0), ["queued", "done"], [(1, 2)])
    assert refused.value.message == "The condition's query has no column 'backlog' (its columns: queued, done)"


def test_a_float_is_compared_as_it_prints_not_as_its_binary_expansion() -> None:
    assert evaluate(_condition("v", "=", Decimal("0.1")), ["v"], [(0.1,)]).holds


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", "-inf", "1_000"])
def test_what_is_not_a_finite_number_never_holds_and_never_raises(value: Any) -> None:
    for op in CONDITION_OPERATORS:
        outcome = evaluate(_condition("v", op, 0), ["v"], [(value,)])
        assert not outcome.holds and outcome.observed is None, (value, op)
