"""Reports and their fields: definitions, slugs, and turning HTTP parameters into bound values.

A report is one or more SQL queries (one per sheet) with `:name` bind variables, each of which is a
declared field. Values are validated and converted here, then bound by the driver, never pasted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from reportserver import sqltext
from reportserver.domain.errors import InvalidDefinition, InvalidParameter, shown

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FIELD_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
INTEGER_TEXT = re.compile(r"^[+-]?[0-9]{1,18}$")
EXPORT_FORMATS = ("xlsx", "csv", "json", "pdf", "html", "parquet")
DEFAULT_MAX_VALUE_LENGTH = 1000
# ASCII only, and one form each: what a caller may send for a field of each type.
NUMBER_TEXT = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
DATE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DATETIME_TEXT = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
# Only ASCII spaces around a value are dropped: str.strip() also takes U+2003, U+00A0 and U+001C-U+001F.
ASCII_SPACE = " \t\r\n\f\v"
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class Choice(msgspec.Struct, kw_only=True):
    value: str
    label: str


class ReportField(msgspec.Struct, kw_only=True):
    """A declared parameter of a report, bound to the `:name` variable of the same name."""

    name: str
    id: int = 0
    label: str = ""
    type: FieldType = FieldType.STRING
    required: bool = False
    default: str | None = None
    choices: list[Choice] | None = None
    choices_sql: str | None = None
    field_order: int = 0
    max_length: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = DEFAULT_MAX_VALUE_LENGTH
    # Its values are never written to the audit log (its name is): an account number, a person's name.
    sensitive: bool = False

    def __post_init__(self) -> None:
        if not FIELD_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"field name {self.name!r} must be an identifier (letters, digits, '_')")
        if not self.label:
            self.label = self.name.replace("_", " ").capitalize()
        has_choices = self.choices is not None or self.choices_sql is not None
        if self.type is FieldType.CHOICE and not has_choices:
            raise ValueError(f"choice field {self.name!r} needs choices or choices_sql")
        if self.type is not FieldType.CHOICE and has_choices:
            raise ValueError(f"only choice fields take choices ({self.name!r} is {self.type})")
        if self.choices is not None and self.choices_sql is not None:
            raise ValueError(f"field {self.name!r}: give choices or choices_sql, not both")


class ReportQuery(msgspec.Struct, kw_only=True):
    """One SQL statement of a report; a report with several is exported one sheet each."""

    sql: Annotated[str, msgspec.Meta(min_length=1)]
    sheet_name: str = "Sheet1"


class TimeRange(msgspec.Struct, kw_only=True):
    """The fields that an export's UNIX-time `start_time` and `end_time` fill (seed 002)."""

    start_field: str
    end_field: str


class Report(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    data_source_id: str
    queries: Annotated[list[ReportQuery], msgspec.Meta(min_length=1)]
    id: int = 0
    slug: str = ""
    description: str = ""
    category: str = ""  # the category's name, kept with the report for its callers
    category_id: int = 0  # 0: in no category
    fields: list[ReportField] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=lambda: ["*"])
    formats: list[str] = msgspec.field(default_factory=lambda: list(EXPORT_FORMATS))
    cache_seconds: Annotated[int, msgspec.Meta(ge=0)] = 0
    # CSV text cells that a spreadsheet would run as formulas (=, +, -, @, tab, CR first) get a leading
    # apostrophe (OWASP's advice); a report whose CSV feeds programs, not spreadsheets, may turn it off.
    csv_neutralise_formulas: bool = True
    time_range: TimeRange | None = None
    # `table`: its rows; `template`: an HTML page made from its rows by `template` (seed 000's /template/).
    type: Literal["table", "template"] = "table"
    template: Annotated[str, msgspec.Meta(max_length=200_000)] = ""
    version: int = 0

    def __post_init__(self) -> None:
        if not self.slug:
            self.slug = slugify(self.name)
        if self.type == "template" and not self.template.strip():
            raise ValueError("a template report needs its template (HTML)")
        if not SLUG_PATTERN.fullmatch(self.slug) or self.slug.isdigit():
            raise ValueError(f"slug {self.slug!r} must be lower-case words joined by '-', not only digits")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique within a report")
        unknown_formats = sorted(set(self.formats) - set(EXPORT_FORMATS))
        if unknown_formats:
            raise ValueError(f"unknown formats {unknown_formats}; allowed: {list(EXPORT_FORMATS)}")
        declared = set(names)
        if self.time_range is not None:
            for name in (self.time_range.start_field, self.time_range.end_field):
                field = self.field(name)
                if field is None or field.type not in (FieldType.DATE, FieldType.DATETIME):
                    raise ValueError(f"time range field {name!r} must be a date or datetime field of the report")
        for query in self.queries:
            undeclared = sorted(set(bind_variables(query.sql)) - declared)
            if undeclared:
                raise ValueError(f"bind variables {undeclared} in sheet {query.sheet_name!r} are not fields")

    def sorted_fields(self) -> list[ReportField]:
        # Stable: fields with the same field_order keep the order they were declared in.
        return sorted(self.fields, key=lambda f: f.field_order)

    def field(self, name: str) -> ReportField | None:
        return next((f for f in self.fields if f.name == name), None)

    def field_types(self) -> dict[str, str]:
        """Each `:name` parameter's field type (`date`, `string`...): what its value is bound as."""
        return {f.name: str(f.type) for f in self.fields}

    def time_range_field(self, bound: str) -> str | None:
        """The field that `start_time` or `end_time` fills, if the report declares a time range."""
        if self.time_range is None:
            return None
        return self.time_range.start_field if bound == "start_time" else self.time_range.end_field

    def public_view(self) -> dict[str, Any]:
        """The definition a caller may see: no SQL text, no data-source connection details."""
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "category": self.category,
            "type": self.type,
            "formats": self.formats,
            "groups": self.groups,
            "sheets": [q.sheet_name for q in self.queries],
            "time_range": self.time_range is not None,
            "cache_seconds": self.cache_seconds,
            "csv_neutralise_formulas": self.csv_neutralise_formulas,
            "fields": [field_view(f) for f in self.sorted_fields()],
        }


# What the catalog keeps besides reports' definitions: categories, and each saved revision of a report.


class Category(msgspec.Struct, kw_only=True):
    id: int
    name: str
    version: int = 1

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "optimisticLock": self.version}


class Revision(msgspec.Struct, kw_only=True):
    """One saved state of a report: its version, and the definition as it was."""

    id: int
    report_id: int
    comment: str = ""
    saved_at: datetime
    saved_by: str
    definition: Report

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "comment": self.comment,
            "savedAt": self.saved_at.isoformat(),
            "savedBy": self.saved_by,
        }


@dataclass(frozen=True)
class Expected:
    """The versions of the data model and category a report's save was checked against: the write lands
    only while they are still those (a model changed, or a category renamed, meanwhile: save again)."""

    model: int
    category: int | None = None


def field_view(field: ReportField) -> dict[str, Any]:
    return {
        "id": field.id,
        "name": field.name,
        "label": field.label,
        "type": field.type.value,
        "required": field.required,
        "default": field.default,
        "field_order": field.field_order,
        "has_choices": field.type is FieldType.CHOICE,
        "choices": msgspec.to_builtins(field.choices),
    }


def parse_report(definition: Mapping[str, Any]) -> Report:
    """Validate a definition from an admin or a seed file, with a message that names the problem."""
    try:
        return msgspec.convert(definition, Report)
    except msgspec.ValidationError as error:
        raise InvalidDefinition(f"Invalid report definition: {error}") from None


def slugify(name: str) -> str:
    """Seed 000's slug: lower case, spaces to hyphens ("GST Balance" -> "gst-balance"), ASCII only."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def bind_variables(sql: str) -> list[str]:
    """The `:name` variables of a statement, in order of first use (`::` casts are not variables)."""
    try:
        return sqltext.names(sql)
    except sqltext.UnterminatedSql as error:
        raise ValueError(f"the SQL cannot be read: {error}") from None


ChoicesLoader = Callable[[ReportField], Sequence[Choice]]


def bind_parameters(
    report: Report,
    raw: Mapping[str, Sequence[str]],
    load_choices: ChoicesLoader,
    reserved: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Validate HTTP parameters against the report's fields and return driver-ready bound values.

    `raw` maps each parameter name to every value it was given (query strings may repeat a name).
    Every field is bound: a missing optional field without a default binds NULL.
    """
    for name in raw:
        if name not in reserved and report.field(name) is None:
            allowed = ", ".join(f.name for f in report.sorted_fields()) or "none"
            raise InvalidParameter(name, f"Unknown parameter '{shown(name)}'; this report takes: {allowed}")
    bound: dict[str, Any] = {}
    for field in report.fields:
        values = raw.get(field.name)
        if values is not None and len(values) > 1:
            raise InvalidParameter(field.name, f"Parameter '{field.name}' was given more than once")
        text = values[0] if values else None
        if text is None or text == "":
            text = field.default
        if text is None or text == "":
            if field.required:
                raise InvalidParameter(field.name, f"Missing required parameter '{field.name}'")
            bound[field.name] = None
            continue
        bound[field.name] = convert_value(field, text, load_choices)
    return bound


def convert_value(field: ReportField, text: str, load_choices: ChoicesLoader) -> Any:
    """Convert one textual value to the field's type, or raise `InvalidParameter` naming the field."""
    if len(text) > field.max_length:
        raise InvalidParameter(
            field.name, f"Parameter '{field.name}' is too long (at most {field.max_length} characters)"
        )
    try:
        return _CONVERTERS[field.type](field, text, load_choices)
    except (ValueError, InvalidOperation, OverflowError):
        raise InvalidParameter(
            field.name, f"Parameter '{field.name}' must be {_EXPECTED[field.type]}; got {shown(text, 40)!r}"
        ) from None


def _to_integer(_field: ReportField, text: str, _load: ChoicesLoader) -> int:
    stripped = text.strip(ASCII_SPACE)
    if not INTEGER_TEXT.fullmatch(stripped):
        raise ValueError(text)
    return int(stripped)


def _to_number(_field: ReportField, text: str, _load: ChoicesLoader) -> Decimal:
    # Not Decimal's own grammar: it takes "1_000", "NaN", "Infinity" and exponents of any size.
    stripped = text.strip(ASCII_SPACE)
    if not NUMBER_TEXT.fullmatch(stripped):
        raise ValueError(text)
    return Decimal(stripped)


def _to_date(_field: ReportField, text: str, _load: ChoicesLoader) -> date:
    # YYYY-MM-DD only: fromisoformat also reads week dates (2025-W01-1) and basic forms (20250101).
    stripped = text.strip(ASCII_SPACE)
    if not DATE_TEXT.fullmatch(stripped):
        raise ValueError(text)
    return date.fromisoformat(stripped)


def _to_datetime(_field: ReportField, text: str, _load: ChoicesLoader) -> datetime:
    stripped = text.strip(ASCII_SPACE)
    if not DATETIME_TEXT.fullmatch(stripped):
        raise ValueError(text)
    if len(stripped) == 10:
        return datetime.combine(date.fromisoformat(stripped), datetime.min.time())
    value = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _to_boolean(_field: ReportField, text: str, _load: ChoicesLoader) -> bool:
    word = text.strip(ASCII_SPACE).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def _to_choice(field: ReportField, text: str, load_choices: ChoicesLoader) -> str:
    values = {choice.value for choice in load_choices(field)}
    if text not in values:
        raise ValueError(text)
    return text


def _to_string(_field: ReportField, text: str, _load: ChoicesLoader) -> str:
    return text


_CONVERTERS: dict[FieldType, Callable[[ReportField, str, ChoicesLoader], Any]] = {
    FieldType.STRING: _to_string,
    FieldType.INTEGER: _to_integer,
    FieldType.NUMBER: _to_number,
    FieldType.DATE: _to_date,
    FieldType.DATETIME: _to_datetime,
    FieldType.BOOLEAN: _to_boolean,
    FieldType.CHOICE: _to_choice,
}

_EXPECTED = {
    FieldType.STRING: "text",
    FieldType.INTEGER: "a whole number",
    FieldType.NUMBER: "a number",
    FieldType.DATE: "a date as YYYY-MM-DD",
    FieldType.DATETIME: "a date-time as YYYY-MM-DDTHH:MM[:SS]",
    FieldType.BOOLEAN: "true or false (also 1/0, yes/no, Y/N)",
    FieldType.CHOICE: "one of the field's choices (see /api/choices/<field id>/)",
}
