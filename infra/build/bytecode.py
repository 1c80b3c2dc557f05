"""Compile a built artifact's Python to bytecode, as Lambda's python3.12 runtime loads it.

Lambda cannot write `__pycache__` into /var/task or /opt: without bytecode in the artifact, every cold
start compiles every module it imports (measured: the API handlers' cold import took 300-400 ms from
source, 140-160 ms from bytecode). The bytecode is `unchecked-hash`, so it does not depend on the files'
times (a zip need not keep them); it records the paths the files have in Lambda (`/var/task`, `/opt/python`).
`sam build`'s cache hashes each layer's own folder only: after a change here, build without the cache
(`check_artifacts` fails on bytecode that does not match its source or this Python).

    python -m infra.build.bytecode <folder> <folder as Lambda mounts it> [package to leave as source...]

A package left as source is compiled when first imported, in every new container: sqlglot (3 MB of
source, 4.3 MB more as bytecode) is imported only when a report is saved, and the export worker carries
the API layer too (BENCHMARKS.md, "Built artifacts").
"""

from __future__ import annotations

import compileall
import py_compile
import re
import shutil
import sys
from pathlib import Path

RUNTIME = (3, 12)  # template.yaml's Runtime: python3.12


def compile_tree(folder: Path, mounted_as: str, left_as_source: list[str]) -> bool:
    for stale in folder.rglob("__pycache__"):  # another interpreter's, or checked by timestamps
        shutil.rmtree(stale, ignore_errors=True)
    # Only below `folder`: a checkout path that itself holds such a name skips nothing.
    names = "|".join(re.escape(name) for name in left_as_source)
    skipped = f"^{re.escape(str(folder).rstrip('/'))}/(?:.+/)?(?:{names})/" if left_as_source else ""
    return bool(
        compileall.compile_dir(
            str(folder),
            ddir=mounted_as,
            quiet=1,
            workers=0,
            rx=re.compile(skipped) if skipped else None,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    )


def main(argv: list[str]) -> int:
    if sys.version_info[:2] != RUNTIME:
        print(f"bytecode for python{RUNTIME[0]}.{RUNTIME[1]} needs that Python, not {sys.version.split()[0]}")
        return 1
    folder, mounted_as = Path(argv[0]), argv[1]
    return 0 if compile_tree(folder, mounted_as, argv[2:]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
