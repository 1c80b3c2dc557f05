"""Template reports' sandbox: escapes refused, bounds kept, values shown exactly and escaped."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape
from reportserver.domain.errors import InvalidDefinition, TemplateRefused
from reportserver.domain.templates import Budget, Sheet, compile_template, render_template

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def _render(source: str, rows: list[dict[str, object]] | None = None, seconds: float = 5.0) -> str:
    sheets = [Sheet("S", list((rows or [{}])[0]), rows or [])]
    return render_template(source, sheets, {"p": "x"}, {"name": "R"}, NOW, Budget(seconds=seconds))


# Known escapes from Jinja's sandbox write-ups and Superset's advisories: each is refused, none runs.
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format(1) }}",
    "{{ '{x.__class__.__mro__}'.format_map({'x': 1}) }}",
    "{{ rows.append(1) }}",
    "{{ rows[0].update({'x': 1}) }}",
    "{{ parameters.clear() }}",
    "{{ generated_at.__class__.__init__.__globals__ }}",
    "{{ config }}",
    "{{ request }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ (rows|attr('__class__')) }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{% set x = rows.pop() %}",
    "{{ [].__reduce_ex__(2) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_sandbox_escape_is_refused(source: str) -> None:
    with pytest.raises(TemplateRefused):
        _render(source, [{"a": 1}])


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in rows %}{% for b in rows %}{% for c in rows %}{% endfor %}{% endfor %}{% endfor %}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% set s = namespace(n=0) %}{% for a in range(100000) %}{% for b in range(100000) %}"
        "{% set s.n = s.n + 1 %}{% endfor %}{% endfor %}",
    ],
)
def test_a_template_that_loops_forever_stops_at_its_time_budget(source: str) -> None:
    rows = [{"i": i} for i in range(5000)]
    started = time.monotonic()
    with pytest.raises(TemplateRefused, match="longer than 1 s"):
        _render(source, rows, seconds=1.0)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{% for a in range(100000) %}{% for b in range(1000) %}" + "x" * 100 + "{% endfor %}{% endfor %}", "larger"),
        ("{{ 'x' * 100000000 }}", "repetition"),
        ("{{ [1] * 100000000 }}", "repetition"),
        ("{% set s = namespace(v='x') %}{% for i in range(60) %}{% set s.v = s.v ~ s.v %}{% endfor %}", "million"),
        ("{{ 9 ** 99999 }}", "exponent"),
        ("{{ range(10000000)|list }}", "range"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
        # Found in review: each of these hung the render, or built hundreds of megabytes, or ran out of memory
        ("{{ (((9 ** 1000) ** 1000) ** 1000) > 1 }}", "bits"),
        ("{{ ('x' * 999999 ~ 'x' * 999999 ~ 'x' * 999999)|wordwrap(1)|length }}", "million"),
        ("{{ ('x' * 999999)|wordwrap(1) }}", "Wrapping"),
        ("{{ '%01400000000d' % 1 }}", "format width"),
        ("{{ '%0200000000d' % 1 }}", "format width"),
        ("{{ ('a' * 1000)|replace('a', 'x' * 999999) }}", "replacement"),
        ("{{ 'x'|center(300000000) }}", "width"),
        ("{{ 'x'|indent(300000000) }}", "width"),
        ("{{ '{:>300000000}'.format(1) }}", "format width"),
        ("{{ '%*d'|format(300000000, 1) }}", "format width"),
        ("{{ range(100000)|join('x' * 999) }}", "joined"),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", "million"),
    ],
)
def test_a_template_that_would_make_too_much_is_refused(source: str, words: str) -> None:
    with pytest.raises(TemplateRefused, match=words):
        _render(source, [{"a": 1}])


def test_a_template_past_the_sandboxs_checks_is_stopped_by_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if a way past every check above were found: the child's CPU and memory limits still end it
    from reportserver.domain import templates

    monkeypatch.setattr(templates, "MAX_SEQUENCE", 10**12)
    monkeypatch.setattr(templates, "MAX_RANGE", 10**9)
    started = time.monotonic()
    with pytest.raises(TemplateRefused):
        _render("{% for i in range(1000000000) %}{% endfor %}{{ 'x' * 2000000000 }}", [{"a": 1}], seconds=1.0)
    assert time.monotonic() - started < 5


def test_values_from_the_database_are_escaped() -> None:
    rows = [{"name": "<script>alert(1)</script>", "note": "\"'&"}]
    page = _render("<p>{{ rows[0].name }}</p><p title='{{ rows[0].note }}'></p>", rows)
    assert "<script>" not in page
    assert page == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><p title='&#34;&#39;&amp;'></p>"


def test_an_undefined_name_fails_rather_than_showing_nothing() -> None:
    with pytest.raises(TemplateRefused, match="undefined"):
        _render("{{ totl }}", [{"total": 1}])


def test_a_template_that_does_not_parse_is_refused_at_save() -> None:
    with pytest.raises(InvalidDefinition, match="line 1"):
        compile_template("{% for x in rows %}")


def test_sums_of_decimals_are_exact() -> None:
    rows = [{"net": Decimal("0.10")} for _ in range(3)] + [{"net": Decimal("1234567.89")}]
    assert _render("{{ (rows|sum(attribute='net'))|number(2) }}", rows) == "1,234,568.19"


@given(text=st.text(max_size=50))
def test_any_text_is_shown_escaped_and_whole(text: str) -> None:
    assert _render("{{ rows[0].t }}", [{"t": text}]) == str(escape(text))


@given(
    value=st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=2, allow_nan=False),
    places=st.integers(min_value=2, max_value=6),
)
def test_the_number_filter_shows_a_decimal_exactly(value: Decimal, places: int) -> None:
    shown = _render("{{ rows[0].v|number(" + str(places) + ") }}", [{"v": value}])
    assert Decimal(shown.replace(",", "")) == value
    assert len(shown.split(".")[1]) == places


def test_a_page_is_made_here_when_no_process_can_be_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    assert _render("{{ rows|length }}", [{"a": 1}, {"a": 2}]) == "2"
    with pytest.raises(TemplateRefused, match="repetition"):
        _render("{{ 'x' * 100000000 }}", [{"a": 1}])
    assert len(os.listdir("/proc/self/fd")) == before  # the pipe's ends are closed
