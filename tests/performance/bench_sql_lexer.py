"""Benchmark: the bind-variable lexer (`reportserver.sqltext`) against sqlglot's tokenizer.

    make bench-lexer     (or: python tests/performance/bench_sql_lexer.py [--rounds N] [--imports N])

Two costs matter to an API function: the cold import (paid on every new container, within a 300 ms
budget for the whole handler) and the time to find a statement's variables (paid at report definition
and on every call and export). Both sides run in the same process for the warm figures, on the demo
reports' statements; each cold import runs in a fresh interpreter (median, start-up subtracted).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from reportserver import sqltext  # noqa: E402
from sqlglot.dialects.sqlite import SQLite  # noqa: E402 - both sides imported before any clock
from sqlglot.tokens import TokenType  # noqa: E402

from infra.demo.reports import DEMO_REPORTS  # noqa: E402

STATEMENTS = [q["sql"] for r in DEMO_REPORTS for q in r["queries"]]


def ours(sql: str) -> list[str]:
    return sqltext.names(sql)


def theirs(sql: str) -> list[str]:
    tokens = SQLite().tokenizer_class().tokenize(sql)
    found = [
        after.text
        for before, after in itertools.pairwise(tokens)
        if before.token_type is TokenType.COLON and after.start == before.end + 1 and after.token_type is TokenType.VAR
    ]
    return list(dict.fromkeys(found))


def warm(function: object, rounds: int) -> float:
    """Median microseconds to lex every demo statement once."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for sql in STATEMENTS:
            function(sql)  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1e6)
    return statistics.median(timings)


def cold_import(module: str, runs: int) -> float:
    """Median milliseconds to import `module` in a fresh interpreter, start-up excluded."""

    def once(code: str) -> float:
        command = [
            sys.executable,
            "-c",
            f"import time; s = time.perf_counter(); {code}; print(time.perf_counter() - s)",
        ]
        env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}"}
        return float(subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout)

    return statistics.median(once(f"import {module}") for _ in range(runs)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--imports", type=int, default=15)
    args = parser.parse_args()
    assert all(ours(sql) == theirs(sql) for sql in STATEMENTS)  # the same answer before any timing
    our_warm, their_warm = warm(ours, args.rounds), warm(theirs, args.rounds)
    our_cold = cold_import("reportserver.sqltext", args.imports)
    their_cold = cold_import("sqlglot.tokens", args.imports)
    print(f"{len(STATEMENTS)} demo statements, medians")
    print(f"{'':24}{'ours':>12}{'sqlglot':>12}{'ratio':>8}")
    print(f"{'cold import (ms)':24}{our_cold:12.1f}{their_cold:12.1f}{their_cold / our_cold:7.0f}x")
    print(f"{'lex all (us, warm)':24}{our_warm:12.0f}{their_warm:12.0f}{their_warm / our_warm:7.1f}x")


if __name__ == "__main__":
    main()
