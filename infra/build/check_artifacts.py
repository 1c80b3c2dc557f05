"""Check what `sam build` made: each function with its layers under Lambda's 250 MB unzipped limit,
each handler importable by python3.12 from its own code and layers alone (as Lambda loads it), every
module compiled to the bytecode Lambda's runtime loads (but the packages the build leaves as source),
and each handler's cold import from its artifact (median of a few fresh interpreters).

    python -m infra.build.check_artifacts .aws-sam/build

Reads the built template (.aws-sam/build/template.yaml) to know which layers each function uses.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.local.template import load_template

LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def function_parts(build_dir: Path) -> dict[str, tuple[str, list[Path]]]:
    """Function logical id -> (handler, [its code folder, then each layer's folder])."""
    template = load_template(build_dir / "template.yaml")
    global_layers = template.document.get("Globals", {}).get("Function", {}).get("Layers", [])
    parts = {}
    for logical_id, resource in template.of_type("AWS::Serverless::Function").items():
        layers = [*global_layers, *resource["Properties"].get("Layers", [])]  # as SAM merges them
        names = [layer["Ref"] if isinstance(layer, dict) else str(layer) for layer in layers]
        parts[logical_id] = (
            resource["Properties"]["Handler"],
            [build_dir / logical_id, *(build_dir / n for n in names)],
        )
    return parts


LEFT_AS_SOURCE = ("sqlglot",)  # layers/api/Makefile: imported only when a report is saved
UNCHECKED_HASH = 0b01  # PEP 552: hash-based, not checked against the source


def without_bytecode(folder: Path) -> list[Path]:
    """The modules in `folder` without current bytecode for python3.12 beside them: unchecked-hash, of
    this Python's magic number (the build's python3.12), and of the source as it is now."""
    missing = []
    for source in folder.rglob("*.py"):
        if any(part in LEFT_AS_SOURCE for part in source.relative_to(folder).parts[:-1]):
            continue
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        try:
            header = compiled.read_bytes()[:16]
        except OSError:
            header = b""
        current = (
            header[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(header[4:8], "little") == UNCHECKED_HASH
            and header[8:16] == importlib.util.source_hash(source.read_bytes())
        )
        if not current:
            missing.append(source)
    return missing


def cold_import_ms(handler: str, folders: list[Path], environment: dict[str, Any], runs: int = 5) -> float:
    """The handler module's import from its artifact alone, median of `runs` fresh interpreters."""
    paths = [str(folders[0])] + [str(f / "python") for f in folders[1:]]
    module = handler.rsplit(".", 1)[0]
    probe = (
        f"import sys, time; sys.path[:0] = {paths!r}; started = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - started)"
    )
    env = {"PATH": os.environ.get("PATH", ""), **{k: str(v) for k, v in environment.items()}}
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            ["python3.12", "-I", "-B", "-c", probe], capture_output=True, text=True, env=env, check=False
        )
        samples.append(float(result.stdout.split()[-1]) * 1000 if result.returncode == 0 else float("nan"))
    return statistics.median(samples)


def imports_alone(handler: str, folders: list[Path], environment: dict[str, Any]) -> str:
    """Import the handler with only its code and its layers' python/ on the path; "" if that works."""
    paths = [str(folders[0])] + [str(f / "python") for f in folders[1:]]
    probe = f"import sys; sys.path[:0] = {paths!r}; import {handler.rsplit('.', 1)[0]}"
    if any(f.name == "WorkerDependenciesLayer" for f in folders):
        # The worker loads its renderers (pyarrow, fpdf2, fonts) on demand: load every one of them here.
        probe += "; from reportserver.render import renderer_for, supported_formats"
        probe += "; [renderer_for(f) for f in supported_formats()]; import adbc_driver_sqlite.dbapi"
    if "reports" in handler or any(f.name == "WorkerDependenciesLayer" for f in folders):
        # The SQLite source reads column types through the sqlite library the runtime's Python links.
        probe += (
            "; import sqlite3, tempfile, os; d = tempfile.mkdtemp(); p = os.path.join(d, 'c.db')"
            "; sqlite3.connect(p).execute('CREATE TABLE t (d DATE)')"
            "; from reportserver.sources.sqlite import SqliteSource"
            "; assert [str(c.type) for c in SqliteSource(p).describe('SELECT d FROM t')] == ['date']"
        )
    # The template's settings (resolved as the local stack does): handlers validate them at import.
    env = {"PATH": os.environ.get("PATH", ""), **{k: str(v) for k, v in environment.items()}}
    result = subprocess.run(
        ["python3.12", "-I", "-B", "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    return "" if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]


def main(argv: list[str]) -> int:
    build_dir = Path(argv[0] if argv else ".aws-sam/build")
    failed = False
    environments = {
        name: spec.environment for name, spec in load_template(build_dir / "template.yaml").functions().items()
    }
    for function, (handler, folders) in sorted(function_parts(build_dir).items()):
        sizes = {folder.name: tree_size(folder) for folder in folders}
        total = sum(sizes.values())
        detail = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items())
        import_error = imports_alone(handler, folders, environments[function])
        uncompiled = [path for folder in folders for path in without_bytecode(folder)]
        size_verdict = "ok" if total <= LAMBDA_UNZIPPED_LIMIT_BYTES else "OVER THE 250 MB LIMIT"
        import_verdict = "imports alone" if not import_error else f"DOES NOT IMPORT: {import_error}"
        bytecode_verdict = (
            "all bytecode" if not uncompiled else f"NO BYTECODE FOR {len(uncompiled)} modules, e.g. {uncompiled[0]}"
        )
        failed |= total > LAMBDA_UNZIPPED_LIMIT_BYTES or bool(import_error) or bool(uncompiled)
        cold = cold_import_ms(handler, folders, environments[function])
        print(
            f"{function}: {total / 1e6:.1f} MB unzipped ({detail}) {size_verdict}; {import_verdict}; "
            f"{bytecode_verdict}; cold import {cold:.0f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
