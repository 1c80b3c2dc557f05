"""Renderers: one per export format behind one interface, each streaming row batches into a file."""

from __future__ import annotations

import importlib
from pathlib import Path

from reportserver.render.base import RenderContext, Renderer

# Imported on demand: the heavy libraries (pyarrow, fpdf2) load only for the formats that use them.
_MODULES = {
    "xlsx": "reportserver.render.to_xlsx",
    "csv": "reportserver.render.to_csv",
    "json": "reportserver.render.to_json",
    "html": "reportserver.render.to_html",
    "parquet": "reportserver.render.to_parquet",
    "pdf": "reportserver.render.to_pdf",
}


def supported_formats() -> frozenset[str]:
    return frozenset(_MODULES)


def renderer_for(export_format: str) -> Renderer:
    module = importlib.import_module(_MODULES[export_format])
    renderer: Renderer = module.RENDERER
    return renderer


def write_template_page(export_format: str, page: str, target: Path, context: RenderContext) -> None:
    """A template report's page as an html or pdf file (fpdf2 loads only for a pdf)."""
    importlib.import_module("reportserver.render.template_page").write_page(export_format, page, target, context)
