"""Template reports (seed 000's `/template/<report_id>/`): an admin's HTML template filled with the report's
rows and parameters, in Jinja2's immutable sandbox with autoescaping on.

Superset's history (CVE-2023-27524's neighbours, and the sandbox escapes found in templated SQL) is the
lesson: the template never sees a Python object it could climb out of (no `self`, no `cycler`, no
`lipsum`, no `__globals__`), only plain values (text, numbers, dates, lists and dicts of them), and
cannot mutate them. It is also bounded, as a report's query is: every loop, call, attribute and
operator checks a time budget, big repetitions (`'x' * 10**9`, `9 ** 9 ** 9`) are refused before they
are made, and the page stops at a size limit. A template that breaks a bound fails with a message;
it never hangs the function or fills its memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from reportserver.domain.errors import InvalidDefinition, TemplateRefused, shown

MAX_TEMPLATE_SECONDS = 5.0
MAX_PAGE_BYTES = 5_000_000  # under Lambda's 6 MB response
MAX_SEQUENCE = 1_000_000  # the longest string or list an operator may make
MAX_RANGE = 100_000
MAX_EXPONENT = 1_000


@dataclass
class Budget:
    """The time and size one rendering may take; checked from the sandbox's hooks."""

    seconds: float = MAX_TEMPLATE_SECONDS
    max_bytes: int = MAX_PAGE_BYTES
    started: float = field(default_factory=time.monotonic)

    def check(self) -> None:
        if time.monotonic() - self.started > self.seconds:
            raise TemplateRefused(f"The template took longer than {self.seconds:g} s to render")


@dataclass(frozen=True)
class Sheet:
    """One query's result as the template sees it."""

    name: str
    columns: list[str]
    rows: list[dict[str, Any]]


def _environment(budget: Budget) -> Any:
    from jinja2 import StrictUndefined  # noqa: PLC0415 - only template reports load Jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+"})

        def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            budget.check()
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj: Any, attribute: str) -> Any:
            budget.check()
            return _sized(super().getattr(obj, attribute))

        def getitem(self, obj: Any, argument: Any) -> Any:
            budget.check()
            return _sized(super().getitem(obj, argument))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            budget.check()
            if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise TemplateRefused(f"An exponent over {MAX_EXPONENT} is refused")
            if operator == "*":
                sized = left if isinstance(left, (str, list, tuple)) else right
                times = right if sized is left else left
                sequence = isinstance(sized, (str, list, tuple)) and isinstance(times, int)
                if sequence and len(sized) * max(times, 0) > MAX_SEQUENCE:
                    raise TemplateRefused("A repetition longer than a million items is refused")
            result = super().call_binop(context, operator, left, right)
            if isinstance(result, (str, list, tuple)) and len(result) > MAX_SEQUENCE:
                raise TemplateRefused("A value longer than a million items is refused")
            return result

    environment = BoundedSandbox(autoescape=True, undefined=StrictUndefined)
    environment.globals.clear()  # no cycler, joiner, lipsum: each is a way to a module's globals
    environment.globals.update(range=_bounded_range(budget), namespace=_namespace())
    environment.filters["number"] = _number
    return environment


def _sized(value: Any) -> Any:
    """A value read back (a namespace's, say): one grown past the bound by `~` in a loop stops here."""
    if isinstance(value, str) and len(value) > MAX_SEQUENCE:
        raise TemplateRefused("A value longer than a million characters is refused")
    return value


def _namespace() -> Any:
    from jinja2.utils import Namespace  # noqa: PLC0415

    return Namespace


def _bounded_range(budget: Budget) -> Any:
    def bounded(*args: int) -> Iterator[int]:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise TemplateRefused(f"A range of more than {MAX_RANGE} numbers is refused")
        return _checked(numbers, budget)

    return bounded


def _checked(items: Sequence[Any], budget: Budget) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index % 64 == 0:
            budget.check()
        yield item


class _Rows(list[Any]):
    """A sheet's rows: a plain list to the template, whose iteration checks the budget (an empty loop
    nested in loops over the rows calls no hook of the sandbox)."""

    budget: Budget

    def __iter__(self) -> Iterator[Any]:
        return _checked(list(list.__iter__(self)), self.budget)


def _rows(rows: list[dict[str, Any]], budget: Budget) -> _Rows:
    checked = _Rows(rows)
    checked.budget = budget
    return checked


def _number(value: Any, places: int = 2) -> str:
    """`{{ total|number(2) }}`: a number with thousands separators and `places` decimals, from a Decimal
    exactly (never through a float); text for anything else."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, (int, Decimal)):
        places = max(0, min(int(places), 20))
        return f"{Decimal(value):,.{places}f}"
    if isinstance(value, float):
        return f"{value:,.{max(0, min(int(places), 20))}f}"
    return str(value)


def compile_template(source: str) -> None:
    """Refuse (400) a template that does not parse, at save time."""
    from jinja2 import TemplateSyntaxError  # noqa: PLC0415

    try:
        _environment(Budget()).from_string(source)
    except TemplateSyntaxError as error:
        raise InvalidDefinition(f"The template does not parse: line {error.lineno}: {shown(str(error), 200)}") from None


def render_template(
    source: str,
    sheets: list[Sheet],
    parameters: Mapping[str, Any],
    report: Mapping[str, Any],
    generated_at: datetime,
    budget: Budget | None = None,
) -> str:
    """The template's page: `rows` and `columns` are the first sheet's, `sheets` all of them, with the
    report's `parameters` (as bound), `report` (name, description, slug) and `generated_at`."""
    from jinja2 import TemplateError  # noqa: PLC0415
    from jinja2.exceptions import SecurityError  # noqa: PLC0415

    budget = budget or Budget()
    checked = [Sheet(s.name, list(s.columns), _rows([dict(r) for r in s.rows], budget)) for s in sheets]
    context = {
        "report": dict(report),
        "parameters": dict(parameters),
        "sheets": [{"name": s.name, "columns": s.columns, "rows": s.rows} for s in checked],
        "rows": checked[0].rows if checked else _rows([], budget),
        "columns": checked[0].columns if checked else [],
        "generated_at": generated_at,
    }
    pieces: list[str] = []
    size = 0
    try:
        template = _environment(budget).from_string(source)
        for piece in template.generate(context):
            size += len(piece.encode("utf-8", "replace"))
            if size > budget.max_bytes:
                raise TemplateRefused(f"The page is larger than {budget.max_bytes:,} bytes")
            pieces.append(piece)
            budget.check()
    except TemplateRefused:
        raise
    except SecurityError as error:
        raise TemplateRefused(f"The template tried what the sandbox forbids: {shown(str(error), 200)}") from None
    except TemplateError as error:
        raise TemplateRefused(f"The template failed: {shown(str(error), 200)}") from None
    except (ArithmeticError, TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
        raise TemplateRefused(f"The template failed: {type(error).__name__}: {shown(str(error), 200)}") from None
    except RecursionError:
        raise TemplateRefused("The template recursed too deeply") from None
    return "".join(pieces)


def template_value(value: Any) -> Any:
    """A result value as a template sees it: plain values only (text, numbers, dates, bytes as text)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if value is None or isinstance(value, (str, int, float, Decimal, bool, date, datetime)):
        return value
    return str(value)


def whole_page(title: str, contents: str) -> str:
    """A template's contents as a whole HTML page; a template that is a whole document is kept as is."""
    from html import escape  # noqa: PLC0415

    head = contents.lstrip()[:15].lower()
    if head.startswith(("<!doctype", "<html")):
        return contents
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body>\n{contents}\n</body></html>\n"
    )
