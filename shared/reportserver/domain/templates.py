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

import contextlib
import functools
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
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
MAX_INTEGER_BITS = 100_000
MAX_WRAPPED = 100_000
# The hard bounds: the page renders in a child process (a fork), which the kernel stops past these.
CHILD_MEMORY_BYTES = 256 * 1024 * 1024  # over what the parent had mapped when it forked
CHILD_GRACE_SECONDS = 1.0


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
        intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

        def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            budget.check()
            for value in (*args, *kwargs.values()):
                _sized(value)  # a macro recursing on a doubling string stops at the bound
            return _sized(super().call(__context, __obj, *args, **kwargs))

        def getattr(self, obj: Any, attribute: str) -> Any:
            budget.check()
            if isinstance(obj, str) and attribute in ("format", "format_map"):
                _narrow_format(obj, "{")  # the sandbox wraps the method: its text is known only here
            return _sized(super().getattr(obj, attribute))

        def getitem(self, obj: Any, argument: Any) -> Any:
            budget.check()
            return _sized(super().getitem(obj, argument))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            budget.check()
            if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise TemplateRefused(f"An exponent over {MAX_EXPONENT} is refused")
            if operator in ("**", "*") and _integer(left) and _integer(right):
                bits = abs(left).bit_length() * (right if operator == "**" else 1) + (
                    abs(right).bit_length() if operator == "*" else 0
                )
                if bits > MAX_INTEGER_BITS:
                    raise TemplateRefused(f"A number of more than {MAX_INTEGER_BITS:,} bits is refused")
            if operator == "%" and isinstance(left, str):
                _narrow_format(left, "%")
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
    for name in _SIZED_FILTERS:  # filters that can make a value of any size: bounded before they run
        environment.filters[name] = _bounded_filter(name, environment.filters[name])
    return environment


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# A format's width or precision of five digits or more (`%0200000000d`, `{:>300000000}`) makes a value
# of that size before any bound could see it; `*` takes the width from an argument.
_WIDE_FORMAT = re.compile(r"[0-9]{5,}|\*")


def _narrow_format(text: str, marker: str) -> None:
    for piece in text.split(marker)[1:]:
        spec = piece.split("}", 1)[0] if marker == "{" else piece[:40]
        if _WIDE_FORMAT.search(spec[:40]):
            raise TemplateRefused("A format width or precision of 10,000 or more is refused")


_SIZED_FILTERS = ("center", "indent", "wordwrap", "replace", "format", "join", "truncate")


def _bounded_filter(name: str, original: Any) -> Any:
    """The filter, refused before it runs when its result could pass the size bound (or, for `wordwrap`,
    when its input is long enough to take seconds)."""

    from jinja2 import Environment  # noqa: PLC0415
    from jinja2.nodes import EvalContext  # noqa: PLC0415

    @functools.wraps(original)  # keeps Jinja's pass_eval_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, (Environment, EvalContext))]
        subject = values[0] if values else ""
        rest = values[1:]
        for value in values:
            _sized(value)
        if name in ("center", "indent"):
            width = rest[0] if rest else kwargs.get("width", 0)
            if _integer(width) and width > MAX_SEQUENCE:
                raise TemplateRefused(f"A width over {MAX_SEQUENCE:,} is refused")
            indented = name == "indent" and isinstance(subject, str) and _integer(width)
            if indented and (subject.count("\n") + 1) * max(width, 0) + len(subject) > MAX_SEQUENCE:
                raise TemplateRefused("An indented text longer than a million characters is refused")
        if name == "wordwrap" and isinstance(subject, str) and len(subject) > MAX_WRAPPED:
            raise TemplateRefused(f"Wrapping a text of more than {MAX_WRAPPED:,} characters is refused")
        if name == "replace" and isinstance(subject, str) and len(rest) >= 2:
            old, new = str(rest[0]), str(rest[1])
            count = subject.count(old) if old else len(subject) + 1
            if len(subject) + count * max(len(new) - len(old), 0) > MAX_SEQUENCE:
                raise TemplateRefused("A replacement longer than a million characters is refused")
        if name == "format" and isinstance(subject, str):
            _narrow_format(subject, "%")
        if name == "join" and not isinstance(subject, str):
            subject = list(subject)
            separator = str(rest[0]) if rest else str(kwargs.get("d", ""))
            if sum(len(str(i)) for i in subject) + len(separator) * max(len(subject) - 1, 0) > MAX_SEQUENCE:
                raise TemplateRefused("A joined text longer than a million characters is refused")
            args = tuple(subject if a is values[0] else a for a in args)
        return _sized(original(*args, **kwargs))

    return bounded


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
    except (RecursionError, MemoryError):
        raise InvalidDefinition("The template is nested too deeply to be read") from None
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
    report's `parameters` (as bound), `report` (name, description, slug) and `generated_at`.

    The page is made in a child process where the kernel bounds its CPU time and memory: a template
    that finds a way past the sandbox's own checks is stopped there, never the function. Where the
    system cannot fork, it is made here, bounded by those checks only."""
    # The clock starts now: the time the report's queries took is theirs, not the template's.
    budget = Budget(seconds=budget.seconds, max_bytes=budget.max_bytes) if budget else Budget()
    work = functools.partial(_render_here, source, sheets, parameters, report, generated_at, budget)
    if not hasattr(os, "fork"):
        return work()
    _environment(budget)  # Jinja2 imported and its sandbox built here: the child takes no import lock
    return _in_child(work, budget)


def _in_child(work: Callable[[], str], budget: Budget) -> str:
    """Run `work` in a forked child under CPU and memory limits; its page (or refusal) comes back on a pipe."""
    reading, writing = os.pipe()
    try:
        with warnings.catch_warnings():
            # A fork in a process with threads: the child only renders and writes to its pipe (no
            # logging, no imports; Jinja's lexer cache gets a lock of its own), then leaves with os._exit.
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
    except OSError:  # no process to spare (EAGAIN, ENOMEM): made here, bounded by the sandbox's checks
        os.close(reading)
        os.close(writing)
        return work()
    if child == 0:  # pragma: no cover - the child's own process; what it sends is tested
        os.close(reading)
        outcome = b"X"
        try:
            _fresh_locks()
            _limit_child(budget)
            outcome = b"O" + work().encode("utf-8", "replace")
        except TemplateRefused as refused:
            outcome = b"R" + refused.message.encode("utf-8", "replace")
        except MemoryError:
            outcome = b"R" + b"The template needed more memory than a page may use"
        except BaseException as error:
            outcome = b"R" + f"The template failed: {type(error).__name__}".encode()
        finally:
            try:
                view = memoryview(outcome)
                while view:
                    view = view[os.write(writing, view) :]
            finally:
                os._exit(0)
    os.close(writing)
    ended = False
    try:
        received = _received(reading, child, budget)
        ended = True
    finally:
        os.close(reading)
        if not ended:  # whatever stopped the reading (a refusal, an error here), the child goes
            _kill(child)
        _reap(child)
    kind, text = received[:1], received[1:].decode("utf-8", "replace")
    if kind == b"O":
        return text
    if kind == b"R":
        raise TemplateRefused(text)
    raise TemplateRefused("The template's page could not be made: it was stopped at its time or memory limit")


def _received(reading: int, child: int, budget: Budget) -> bytes:
    """Read the child's answer within its time; past its time or size, the child is killed."""
    import select  # noqa: PLC0415

    deadline = budget.started + budget.seconds + CHILD_GRACE_SECONDS
    chunks: list[bytes] = []
    size = 0
    poller = select.poll()  # not select(): any descriptor number
    poller.register(reading, select.POLLIN | select.POLLHUP)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise TemplateRefused(f"The template took longer than {budget.seconds:g} s to render")
        chunk = os.read(reading, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > budget.max_bytes + 1024:
            raise TemplateRefused(f"The page is larger than {budget.max_bytes:,} bytes")
        chunks.append(chunk)


def _kill(child: int) -> None:
    import signal  # noqa: PLC0415

    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)


def _fresh_locks() -> None:
    """In the child: Jinja's module-wide lexer cache with a lock of its own (another thread of the
    parent may have held the old one when it forked)."""
    from jinja2 import lexer  # noqa: PLC0415
    from jinja2.utils import LRUCache  # noqa: PLC0415

    lexer._lexer_cache = LRUCache(50)  # type: ignore[assignment]


def _limit_child(budget: Budget) -> None:
    """The kernel's own bounds on the child: CPU seconds, and memory over what it shares with its parent."""
    import resource  # noqa: PLC0415

    seconds = int(budget.seconds + CHILD_GRACE_SECONDS) + 1
    _soft, hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)
    if hard_cpu == resource.RLIM_INFINITY or hard_cpu > seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a child stopped at its limit leaves no core
    mapped = _mapped_bytes()
    if mapped:
        limit = mapped + CHILD_MEMORY_BYTES
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # an inherited hard limit is kept, never raised
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard if hard != resource.RLIM_INFINITY else limit))


def _mapped_bytes() -> int:
    """This process's mapped memory (Linux's VmSize); 0 where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def _reap(child: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(child, 0)


def _render_here(
    source: str,
    sheets: list[Sheet],
    parameters: Mapping[str, Any],
    report: Mapping[str, Any],
    generated_at: datetime,
    budget: Budget,
) -> str:
    """`render_template`'s page, made in this process within `budget`."""
    from jinja2 import TemplateError  # noqa: PLC0415
    from jinja2.exceptions import SecurityError  # noqa: PLC0415

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
