"""Benchmark: from ticket creation to `complete` on the local stack, for 100,000 rows as csv.

    python tests/performance/bench_local_export.py [--rows 100000] [--repeats 5]

Starts the local stack as `make run` does, requests the demo Order Lines report (about 130,000 rows)
with `row_limit` as csv and `force_update`, and polls the ticket every 20 ms; the figure is the
ticket's own `completed_at - created_at` (the worker loop's pick-up included) and the wall time the
client waited, medians of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from tests.performance.local_stack import running_stack  # noqa: E402

TARGET_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with running_stack("bench-stack-") as (_stack, state):
        auth = {"Authorization": state["token"]["authorization"]}
        server_side, client_side = [], []
        for _ in range(args.repeats):
            body = {
                "report_name": "order-lines",
                "format": "csv",
                "force_update": True,
                "parameters": {"row_limit": args.rows},
            }
            asked = time.perf_counter()
            ticket_id = requests.post(f"{state['api_url']}/api/exports/", json=body, headers=auth, timeout=30).json()[
                "ticket_id"
            ]
            while True:
                view = requests.get(f"{state['api_url']}/api/exports/{ticket_id}/", headers=auth, timeout=30).json()
                if view["status"] in ("complete", "failed"):
                    break
                time.sleep(0.02)
            client_side.append(time.perf_counter() - asked)
            assert view["status"] == "complete" and view["total_rows"] == args.rows, view
            created = datetime.fromisoformat(view["created_at"].replace("Z", "+00:00"))
            completed = datetime.fromisoformat(view["completed_at"].replace("Z", "+00:00"))
            server_side.append((completed - created).total_seconds())
        ticket_median = statistics.median(server_side)
        print(f"{args.rows:,} rows as csv on the local stack, {args.repeats} runs:")
        print(
            f"  ticket created -> complete: median {ticket_median:.2f} s (runs: "
            + ", ".join(f"{s:.2f}" for s in server_side)
            + f")   target < {TARGET_SECONDS:.0f} s "
            + ("ok" if ticket_median < TARGET_SECONDS else "MISSED")
        )
        print(f"  client POST -> saw complete: median {statistics.median(client_side):.2f} s")
        return 0 if ticket_median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
