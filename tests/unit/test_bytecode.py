"""The build's bytecode (infra/build/bytecode.py): what Lambda's runtime loads instead of compiling every
module at each cold start, and the build check that finds a module without it."""

from __future__ import annotations

import marshal
import sys
from pathlib import Path

import pytest

from infra.build.bytecode import compile_tree
from infra.build.check_artifacts import UNCHECKED_HASH, without_bytecode


def _tree(root: Path) -> Path:
    for name in ("pkg/__init__.py", "pkg/mod.py", "sqlglot/__init__.py", "sqlglot/dialects/x.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("VALUE = 1\n", encoding="utf-8")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"stale")
    return root


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="bytecode for Lambda's python3.12")
def test_every_module_gets_unchecked_bytecode_naming_its_lambda_path_but_those_left_as_source(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert compile_tree(root, "/opt/python", ["sqlglot"])
    compiled = root / "pkg" / "__pycache__" / "mod.cpython-312.pyc"
    data = compiled.read_bytes()
    assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH  # the stale file was replaced
    assert marshal.loads(data[16:]).co_filename == "/opt/python/pkg/mod.py"
    assert not (root / "sqlglot" / "__pycache__").exists()
    assert without_bytecode(root) == []  # sqlglot is left as source on purpose


def test_the_build_check_names_a_module_without_bytecode(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert set(without_bytecode(root)) == {root / "pkg" / "__init__.py", root / "pkg" / "mod.py"}


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="bytecode for Lambda's python3.12")
def test_a_checkout_path_holding_a_left_as_source_name_skips_nothing(tmp_path: Path) -> None:
    # Found in review: the exclusion matched the whole path, so a build under .../sqlglot/... compiled nothing.
    root = _tree(tmp_path / "sqlglot" / "checkout")
    assert compile_tree(root, "/opt/python", ["sqlglot"])
    assert without_bytecode(root) == []
    assert not (root / "sqlglot" / "__pycache__").exists()


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="bytecode for Lambda's python3.12")
def test_bytecode_older_than_its_source_is_found(tmp_path: Path) -> None:
    # sam build's cache may keep a layer's bytecode while its source changed: the check must see it.
    root = _tree(tmp_path)
    assert compile_tree(root, "/opt/python", ["sqlglot"])
    (root / "pkg" / "mod.py").write_text("VALUE = 2\n", encoding="utf-8")
    assert without_bytecode(root) == [root / "pkg" / "mod.py"]
