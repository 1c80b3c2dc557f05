"""JSON: `{"reports": [{"report_name", "sheet_name", "columns", "data": [{column: value}, ...]}]}` (seed 002),
typed as a report call's records are; each batch is built as text in C++ and written as one buffer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reportserver import records
from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet

WRITE_BUFFER_BYTES = 1024 * 1024


def _rows(batch: pa.RecordBatch, keys: list[str]) -> pa.Array:
    """`,{"a":1,"b":"x"}` per row, in one element-wise join: the keys are literal pieces between the
    values, and a NULL value is written as null by the join itself."""
    pieces: list[Any] = []
    for number, (key, column) in enumerate(zip(keys, batch.columns, strict=True)):
        pieces += [(",{" if number == 0 else ",") + key, columns.json_value(column)]
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="null")


class JsonRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("json", "application/json")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        written = 0
        with target.open("wb", buffering=WRITE_BUFFER_BYTES) as handle:
            handle.write(b'{"reports":[')
            for index, sheet in enumerate(sheets):
                header = records.dumps(
                    {"report_name": context.title, "sheet_name": sheet.name, "columns": sheet.columns}
                )
                handle.write((b"," if index else b"") + header[:-1] + b',"data":[')
                keys = [records.dumps(name).decode("utf-8") + ":" for name in sheet.columns]
                first = True
                for batch in sheet.batches:
                    if not batch.num_rows:
                        continue
                    text = memoryview(columns.payload(_rows(batch, keys)))
                    handle.write(text[1:] if first else text)
                    first = False
                    written += batch.num_rows
                    progress(written)
                handle.write(b"]}")
            handle.write(b"]}")
        return written


RENDERER = JsonRenderer()
