"""Per-recipient runs (`mode: billingStatement`, also called bursting; issue 10): a query on the job's
data model gives one row per recipient; each gets its own file, made with the job's `bound` parameters
taken from that row, and mailed to that row's address only.

A run of such a job reads the rows and sends one message per recipient to the job-run queue; each
message is a run of its own (`<run key>.r<index>`), recorded once, exported by the worker and delivered
like any run. So a thousand recipients are a thousand small runs spread over the queue, not one function
that outlives its timeout, and a message delivered twice is still one mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from reportserver.domain.errors import InvalidParameter, shown
from reportserver.domain.jobs import TABLE_MEMBER, JobBody
from reportserver.domain.ports import DataSource, QueryParameter, Source

MAX_RECIPIENTS_PER_RUN = 10_000  # a run's fan-out: more is refused, not cut short
RECIPIENT_INDEX_DIGITS = 5
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class RecipientMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A job-run queue message: one recipient of a per-recipient run."""

    job_id: int
    run: str  # the run's key
    index: int  # from 1, in the rows' order
    address: str
    name: str | None = None
    parameters: dict[str, str] = msgspec.field(default_factory=dict)  # the bound ones, as text

    def key(self) -> str:
        if not 0 < self.index < 10**RECIPIENT_INDEX_DIGITS:
            raise ValueError("a recipient's index is 1 to 99999")
        return recipient_key(self.run, self.index)


def recipient_key(run_key: str, index: int) -> str:
    return f"{run_key}.r{index:0{RECIPIENT_INDEX_DIGITS}d}"


def recipients(
    body: JobBody, job_id: int, run_key: str, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> list[RecipientMessage]:
    """The run's recipients from the binding's rows: the address column, the name column if any, and each
    bound parameter's column as the text a report parameter takes. A row without an address, or with one
    that is not an address, fails the run, naming the row: a statement mailed to nobody, or to a wrong
    address, must not pass unnoticed."""
    binding = body.billingStatementBinding
    if binding is None:
        raise InvalidParameter("billingStatementBinding", "A billingStatement job needs billingStatementBinding")
    where = {name.casefold(): i for i, name in enumerate(names)}
    bound = {p.name: str(p.value) for p in body.parameters if p.source == "bound"}
    columns = {"emailAddressField": binding.emailAddressField, **({"emailRecipientField": binding.emailRecipientField}
                                                                   if binding.emailRecipientField else {})}  # fmt: skip
    missing = [f"{field} '{column}'" for field, column in columns.items() if column.casefold() not in where]
    missing += [f"parameter {name}'s column '{column}'" for name, column in bound.items()
                if column.casefold() not in where]  # fmt: skip
    if missing:
        raise InvalidParameter(
            "billingStatementBinding",
            f"The recipients' rows have no {', '.join(missing)} (their columns: {', '.join(names) or 'none'})",
        )
    found: list[RecipientMessage] = []
    for index, row in enumerate(rows, start=1):
        if index > MAX_RECIPIENTS_PER_RUN:
            raise InvalidParameter(
                "billingStatementBinding", f"The recipients' query gave more than {MAX_RECIPIENTS_PER_RUN:,} rows"
            )
        address = row[where[binding.emailAddressField.casefold()]]
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
            raise InvalidParameter(
                "billingStatementBinding.emailAddressField",
                f"Row {index} of the recipients has no valid address in '{binding.emailAddressField}': "
                f"{shown(repr(address), 60)}",
            )
        name = row[where[binding.emailRecipientField.casefold()]] if binding.emailRecipientField else None
        values = {}
        for parameter, column in bound.items():
            value = row[where[column.casefold()]]
            if value is None or (isinstance(value, str) and not value.strip()):
                # An empty value would be read as "not given" (the field's default, or every row): a statement
                # of someone else's data. Refused, naming the row.
                raise InvalidParameter(
                    "billingStatementBinding",
                    f"Row {index} of the recipients has no value in '{column}' for parameter {parameter}",
                )
            values[parameter] = _text(value)
        recipient = RecipientMessage(
            job_id=job_id, run=run_key, index=index, address=address.strip(),
            name=None if name is None else str(name)[:200], parameters=values,
        )  # fmt: skip
        found.append(recipient)
    # Numbered in a stable order (address, then values), not the rows' order: a start retried reads the
    # rows again, perhaps in another order, and each recipient must get the same run (and one mail).
    found.sort(key=lambda r: (r.address.casefold(), sorted(r.parameters.items()), r.name or ""))
    return [msgspec.structs.replace(r, index=n) for n, r in enumerate(found, start=1)]


def _text(value: Any) -> str:
    """A row's value as a report parameter is given in text: exactly, never through a float."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise InvalidParameter("parameters", "A bound parameter's column is a float: give it as a decimal or text")
    if isinstance(value, Decimal):
        return format(value, "f")  # 0.0000001, not 0E-7: the same number, as a person writes it
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def member_rows(
    model_id: int,
    member: str,
    data_source: Callable[[str], DataSource | None],
    open_source: Callable[[DataSource], Source],
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A data member's rows (a per-recipient run's recipients, a condition's result), at most
    `MAX_RECIPIENTS_PER_RUN` and one: a custom query (with its saved parameter values) or every row of a
    table or view."""
    model = data_source(str(model_id))
    if model is None:
        raise InvalidParameter("dataModelId", f"No data model {model_id}")
    query = next((q for q in model.custom_queries if q.name == member), None)
    if query is not None:
        sql, params = query.query, {p.name: _saved_value(p) for p in query.parameters}
    elif TABLE_MEMBER.fullmatch(member):  # as the job's dataMember was checked on save
        sql, params = f"SELECT * FROM {member}", {}  # noqa: S608 - each part a plain name, checked
    else:
        raise InvalidParameter("dataMember", f"No member {shown(member)!r} in data model {model_id}")
    rows: list[tuple[Any, ...]] = []
    with open_source(model).run(sql, params) as result:
        names = list(result.names)
        for batch in result.batches:
            rows += [tuple(row) for row in batch]
            if len(rows) > MAX_RECIPIENTS_PER_RUN:
                break  # refused by `recipients`, which counts them
    return names, rows


def _saved_value(parameter: QueryParameter) -> Any:
    text = parameter.value
    if parameter.isNull or text is None:
        return None
    try:
        converters: Mapping[str, Callable[[str], Any]] = {
            "string": str, "integer": int, "number": Decimal, "date": date.fromisoformat,
            "datetime": datetime.fromisoformat, "boolean": lambda t: t.strip().lower() in ("true", "1", "yes"),
        }  # fmt: skip
        return converters[parameter.type](text)
    except (ValueError, ArithmeticError):
        raise InvalidParameter(
            "dataMember", f"The query's parameter {parameter.name} is not a {parameter.type}"
        ) from None
