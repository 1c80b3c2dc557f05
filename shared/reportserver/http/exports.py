"""The export requests' bodies (seeds 002 and 001) and how each becomes the domain's `ExportOrder`."""

from __future__ import annotations

from typing import Any

import msgspec

from reportserver.domain.errors import InvalidParameter
from reportserver.domain.exports import DEFAULT_FORMAT, ExportOrder

Value = str | int | float | bool


class ExportRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of POST /api/exports/ (seeds 001 and 002)."""

    report_name: str | None = None
    report_id: str | int | None = None
    format: str = DEFAULT_FORMAT
    parameters: dict[str, Value | list[Value] | None] = msgspec.field(default_factory=dict)
    start_time: int | float | None = None
    end_time: int | float | None = None
    force_update: bool = False
    csv_bom: bool = False
    # None: as the report says (on unless the report turns it off); false for CSV that programs read.
    csv_neutralise_formulas: bool | None = None

    def order(self) -> ExportOrder:
        return ExportOrder(
            report=self._report(),
            format=self.format,
            parameters=_text_lists(self.parameters),
            start_time=self.start_time,
            end_time=self.end_time,
            force_update=self.force_update,
            csv_bom=self.csv_bom,
            csv_neutralise_formulas=self.csv_neutralise_formulas,
        )

    def _report(self) -> str:
        if self.report_id is not None and str(self.report_id).strip():
            return str(self.report_id).strip()
        if self.report_name and self.report_name.strip():
            return self.report_name.strip()
        raise InvalidParameter("report_id", "Give the report as report_name (name or slug) or report_id")


class DocumentExport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Seed 001's body: `{"exportOptions": {"exportFormat", "forceUpdate"}, "documentParameters": [...]}`."""

    exportOptions: dict[str, Any] = msgspec.field(default_factory=dict)  # noqa: N815 - seed 001's names
    documentParameters: list[dict[str, Any]] = msgspec.field(default_factory=list)  # noqa: N815

    def order(self, report_id: str) -> ExportOrder:
        """`documentParameters` is a list of named values: `{"name": ..., "value" | "values": ...}`."""
        parameters: dict[str, Value | list[Value] | None] = {}
        for entry in self.documentParameters:
            name = entry.get("name", entry.get("Name"))
            if not isinstance(name, str) or not name:
                raise InvalidParameter("documentParameters", "Each document parameter needs a name")
            value = entry.get("value", entry.get("Value", entry.get("values", entry.get("Values"))))
            if value is not None and not _is_value(value):
                raise InvalidParameter(name, f"Parameter '{name}' must be a value or a list of values")
            parameters[name] = value
        export_format = self.exportOptions.get("exportFormat", DEFAULT_FORMAT)
        if not isinstance(export_format, str):
            raise InvalidParameter("exportFormat", "exportOptions.exportFormat must be text")
        force_update = self.exportOptions.get("forceUpdate", False)
        if not isinstance(force_update, bool):
            raise InvalidParameter("forceUpdate", "exportOptions.forceUpdate must be true or false")
        neutralise = self.exportOptions.get("csvNeutraliseFormulas")
        if neutralise is not None and not isinstance(neutralise, bool):
            raise InvalidParameter("csvNeutraliseFormulas", "exportOptions.csvNeutraliseFormulas must be true or false")
        return ExportOrder(
            report=report_id,
            format=export_format,
            parameters=_text_lists(parameters),
            force_update=force_update,
            csv_neutralise_formulas=neutralise,
        )


def _is_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, Value) for v in value)
    return isinstance(value, Value)


def _text_lists(parameters: dict[str, Value | list[Value] | None]) -> dict[str, list[str]]:
    """Each parameter as a list of texts, as a query string gives them (NULLs in a list dropped)."""
    return {
        name: [_as_text(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
        for name, value in parameters.items()
    }


def _as_text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
