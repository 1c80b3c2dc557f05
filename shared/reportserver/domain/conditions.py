"""Conditional delivery (issue 10, beyond the seeds): a job delivers only when a query's result holds a
test, `rows > 0` or `<column> >= <threshold>`, compared as exact decimals. Each run records what it saw."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from reportserver.domain.errors import InvalidParameter
from reportserver.domain.jobs import DeliveryCondition

_TESTS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq, "!=": operator.ne,
}  # fmt: skip


class ConditionOutcome(msgspec.Struct, kw_only=True):
    condition: str  # the test, as written: "rows > 0"
    observed: str | None  # what the query gave (None: no row, or no number)
    holds: bool


def evaluate(condition: DeliveryCondition, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> ConditionOutcome:
    """Whether the test holds for this result. A measure that is not a number (no row, NULL, text) never
    holds: a report is not mailed on a value nobody can compare."""
    if condition.measure == "rows":
        observed: Decimal | None = Decimal(len(rows))
    else:
        columns = {name.casefold(): i for i, name in enumerate(names)}
        index = columns.get(condition.measure.casefold())
        if index is None:
            raise InvalidParameter(
                "condition.measure",
                f"The condition's query has no column '{condition.measure}' (its columns: {', '.join(names)})",
            )
        observed = _number(rows[0][index]) if rows else None
    if observed is None:
        return ConditionOutcome(condition=condition.text, observed=None, holds=False)
    holds = _TESTS[condition.operator](observed, Decimal(condition.threshold))
    return ConditionOutcome(condition=condition.text, observed=str(observed), holds=holds)


def _number(value: Any) -> Decimal | None:
    """A finite number, or None: NaN and infinities never compare (NaN != 0 must not mail anyone)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the float as printed, not its binary expansion
    else:
        text = str(value).strip()
        if "_" in text:
            return None  # 1_000 is Python's way of writing a number, not a database's
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
    return number if number.is_finite() else None
