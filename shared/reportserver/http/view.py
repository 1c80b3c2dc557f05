"""The embedded report view (seed 003): one page of a report's rows as HTML, the html export's look, with
a form for its parameters (those the embedding page fixed are shown, not editable) and paging links.

Every value is escaped; the page has no scripts, and its Content-Security-Policy allows none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from reportserver.domain.reports import Report
from reportserver.render.page_style import STYLE

PAGE_ROWS = 100
MAX_PAGE = 1000
PAGE_PARAMETER = "_page"
NONCE_PARAMETER = "nonce"
RESERVED = frozenset({PAGE_PARAMETER, NONCE_PARAMETER})
FORM_STYLE = (
    "form { margin: 0 0 1em; } label { margin-right: 1em; } input { margin-left: .3em; } nav { margin: 1em 0; }"
)
# What the page may load: its own inline styles and form posts; any site may frame it (that is its use).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="null"></td>'
    if isinstance(value, bool):
        return f"<td>{'true' if value else 'false'}</td>"
    if isinstance(value, int | float | Decimal):
        return f'<td class="n">{escape(str(value))}</td>'
    if isinstance(value, datetime | date):
        return f"<td>{escape(value.isoformat())}</td>"
    return f"<td>{escape(str(value))}</td>"


def render_view(
    report: Report,
    parameters: Mapping[str, Sequence[str]],
    locked: Mapping[str, Sequence[str]],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    page: int,
    more: bool,
) -> str:
    inputs = []
    for field in report.fields:
        value = (locked.get(field.name) or parameters.get(field.name) or [field.default or ""])[0]
        fixed = " readonly" if field.name in locked else ""
        inputs.append(
            f'<label>{escape(field.label or field.name)}<input name="{escape(field.name)}" '
            f'value="{escape(str(value))}"{fixed}></label>'
        )
    form = f'<form method="get">{"".join(inputs)}<button type="submit">Show</button></form>' if inputs else ""
    head = "".join(f'<th scope="col">{escape(n)}</th>' for n in names)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    kept = {k: list(v) for k, v in parameters.items() if k not in RESERVED}
    links = []
    if page > 1:
        links.append(f'<a href="?{escape(urlencode({**kept, PAGE_PARAMETER: page - 1}, doseq=True))}">Previous</a>')
    if more and page < MAX_PAGE:
        links.append(f'<a href="?{escape(urlencode({**kept, PAGE_PARAMETER: page + 1}, doseq=True))}">Next</a>')
    first = (page - 1) * PAGE_ROWS + 1
    shown = f"Rows {first}-{first + len(rows) - 1}" if rows else "No rows"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(report.name)}</title>'
        f"<style>{STYLE}{FORM_STYLE}</style></head><body>\n<h1>{escape(report.name)}</h1>\n{form}\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"
        f"<nav>{escape(shown)} {' '.join(links)}</nav>\n</body></html>\n"
    )
