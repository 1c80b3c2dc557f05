"""JSON: `{"reports": [{"report_name", "sheet_name", "data": [{column: value}, ...]}]}` (seed 002),
typed as a report call's records are, written batch by batch."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reportserver import records
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet

WRITE_BUFFER_BYTES = 1024 * 1024


class JsonRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("json", "application/json")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        written = 0
        with target.open("wb", buffering=WRITE_BUFFER_BYTES) as handle:
            handle.write(b'{"reports":[')
            for index, sheet in enumerate(sheets):
                header = records.dumps({"report_name": context.title, "sheet_name": sheet.name})
                handle.write((b"," if index else b"") + header[:-1] + b',"data":[')
                first = True
                for batch in sheet.batches:
                    if not batch:
                        continue
                    encoded = records.dumps(records.records(sheet.columns, batch))
                    handle.write((b"" if first else b",") + encoded[1:-1])
                    first = False
                    written += len(batch)
                    progress(written)
                handle.write(b"]}")
            handle.write(b"]}")
        return written


RENDERER = JsonRenderer()
