"""Dependencies point one way: functions -> http, store -> domain -> (ports) <- sources, render.

Every import of every module in the package is read from its source (imports inside functions too,
since those are how the heavy libraries load late), and checked against the rules below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "reportserver"
# Modules any layer may use: they import nothing of the project.
NEUTRAL = {"reportserver.sqltext", "reportserver.records"}
# What each layer must never import (prefixes).
FORBIDDEN = {
    "reportserver.domain": (
        "reportserver.sources",
        "reportserver.render",
        "reportserver.store",
        "reportserver.http",
        "reportserver.observability",
        "reportserver.settings",
        "reportserver.cli",
        "aws_lambda_powertools",
        "boto3",
        "botocore",
        "pyarrow",
    ),
    "reportserver.sources": ("reportserver.render", "reportserver.store", "reportserver.http", "aws_lambda_powertools"),
    "reportserver.render": ("reportserver.sources", "reportserver.store", "reportserver.http", "aws_lambda_powertools"),
    "reportserver.sqltext": ("reportserver",),
    "reportserver.records": ("reportserver",),
}
RENDERER_SHARED = (
    "reportserver.render.base",
    "reportserver.render.columns",
    "reportserver.render.pdf_document",
    "reportserver.render.page_style",
)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str = "") -> Iterator[str]:
    """Every module a file imports, wherever the import stands, except under `if TYPE_CHECKING:`;
    relative imports (`from ..sources import x`) resolved against the file's module `name`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            if base:
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)


def violations(root: Path) -> list[str]:
    """Every import that breaks a rule, as "module -> imported"."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        for imported in imports(path, name):
            neutral = imported in NEUTRAL or any(imported.startswith(n + ".") for n in NEUTRAL)
            if neutral and name not in NEUTRAL:
                continue
            for layer, forbidden in FORBIDDEN.items():
                if (name == layer or name.startswith(layer + ".")) and any(
                    imported == f or imported.startswith(f + ".") for f in forbidden
                ):
                    found.append(f"{name} -> {imported}")
            sideways = (
                name.startswith("reportserver.render.to_")
                and imported.startswith("reportserver.render.")
                and not imported.startswith(RENDERER_SHARED)
            )
            if sideways:
                found.append(f"{name} -> {imported} (renderers share through render.base)")
    return sorted(set(found))


def test_dependencies_point_one_way() -> None:
    assert violations(PACKAGE) == []


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("domain/bad.py", "from reportserver.sources.sqlite import SqliteSource\n", "reportserver.domain.bad"),
        ("domain/bad.py", "def f():\n    import boto3\n", "reportserver.domain.bad"),
        ("domain/bad.py", "from reportserver.observability import logger\n", "reportserver.domain.bad"),
        ("sources/bad.py", "from reportserver.store import aws\n", "reportserver.sources.bad"),
        ("render/bad.py", "from reportserver.http.api import caller\n", "reportserver.render.bad"),
        ("render/to_bad.py", "from reportserver.render.to_html import RENDERER\n", "reportserver.render.to_bad"),
        ("sqltext.py", "from reportserver.domain import errors\n", "reportserver.sqltext"),
        # Found: relative imports were not read at all.
        ("domain/bad.py", "from ..sources.sqlite import SqliteSource\n", "reportserver.domain.bad"),
        ("domain/bad.py", "from .. import render\n", "reportserver.domain.bad"),
        ("render/to_bad.py", "from .to_html import RENDERER\n", "reportserver.render.to_bad"),
    ],
)
def test_the_rule_catches_an_import_against_the_arrows(tmp_path: Path, module: str, source: str, broken: str) -> None:
    root = tmp_path / "reportserver"
    target = root / module
    target.parent.mkdir(parents=True)
    target.write_text(source, encoding="utf-8")
    assert sorted({v.split(" -> ")[0] for v in violations(root)}) == [broken]
