"""Benchmark: a per-recipient (billingStatement) job mailing 200 recipients on the local stack.

    python tests/performance/bench_bursting.py [--recipients 200] [--repeats 3]

Starts the local stack as `make run` does (its own PostgreSQL, discarded after), saves a custom query on
the demo PostgreSQL model that gives one row per recipient (an address and one of four regions), and a
billingStatement job of "PG Orders by Region" (csv, one week) bound to it. Each repeat triggers the job
with `POST /api/jobs/{id}/execute` and waits until every recipient's mail is in the stack's `mail_dir`.

Figures, medians of the repeats:
- trigger to last mail (wall seconds), and per recipient (that divided by the recipients);
- the machine's CPU seconds spent by the stack and its PostgreSQL over the same span, per recipient;
- the baseline: one `document` run of the same report to one address, trigger to mail (what a single
  statement costs when it is a run of its own), measured in the same stack between the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from tests.performance.local_stack import running_stack  # noqa: E402

REGIONS = ("NSW", "VIC", "QLD", "WA")


def _cpu_seconds(root_pid: int) -> float:
    """User and system CPU of a process and all its descendants (PostgreSQL included), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(times.get(pid, 0.0) for pid in tree)


def _mails(mail_dir: Path) -> set[str]:
    return {p.name for p in mail_dir.glob("*.eml")}


def _wait_for_mails(mail_dir: Path, before: set[str], addresses: set[str], timeout: float) -> float:
    """Seconds (time.time) when the last of the mails to `addresses` appeared; each address must get
    exactly one (read from the envelopes SES kept), and no other address any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _mails(mail_dir) - before
        if len(new) >= len(addresses):
            time.sleep(1.0)  # a late duplicate would show here
            new = _mails(mail_dir) - before
            envelopes = [json.loads((mail_dir / name).with_suffix(".json").read_text()) for name in new]
            sent_to = sorted(a for e in envelopes for a in e["to"])
            if sent_to != sorted(addresses):
                raise AssertionError(f"mails went to {len(sent_to)} addresses, not each of {len(addresses)} once")
            return max(datetime.fromisoformat(e["received"]).timestamp() for e in envelopes)
        time.sleep(0.05)
    raise TimeoutError(f"{len(_mails(mail_dir) - before)} of {len(addresses)} mails after {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with running_stack("bench-burst-", "--discard-postgres") as (stack, state):
        api, mail_dir = state["api_url"], Path(state["mail_dir"])
        session = requests.Session()
        session.headers["Authorization"] = state["token"]["authorization"]

        def send(method: str, path: str, body: Any = None) -> Any:
            response = session.request(method, api + path, json=body, timeout=60)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return response.json()

        (model,) = [m for m in send("GET", "/api/datamodels")["dataModels"] if "PostgreSQL" in m["name"]]
        regions = "ARRAY[" + ", ".join(f"'{r}'" for r in REGIONS) + "]"
        query = (
            f"SELECT 'r' || n || '@example.com' AS email, ({regions})[1 + n % {len(REGIONS)}] AS region "
            f"FROM generate_series(1, {args.recipients}) AS n"
        )
        send("POST", f"/api/datamodels/{model['id']}/customsqlquery",
             {"optimisticLock": model["optimisticLock"], "name": "bench_recipients", "query": query})  # fmt: skip
        report_id = next(r["id"] for r in state["reports"] if r["slug"] == "pg-orders-by-region")
        week = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-07"}]
        common = {"documentId": report_id, "recurrenceRule": "FREQ=YEARLY", "timeZone": "UTC",
                  "emailDeliveryFormat": "csv", "startDate": "2030-01-01T00:00:00"}  # fmt: skip
        burst_job = send("POST", "/api/jobs", {
            **common, "name": "bench burst", "mode": "billingStatement",
            "parameters": [*week, {"name": "region", "source": "bound", "value": "region"}],
            "billingStatementBinding": {"dataModelId": int(model["id"]), "dataMember": "bench_recipients",
                                        "emailAddressField": "email"},
        })["job"]  # fmt: skip
        single_job = send("POST", "/api/jobs", {
            **common, "name": "bench single", "subscribedEmails": ["one@example.com"],
            "parameters": [*week, {"name": "region", "value": "NSW"}],
        })["job"]  # fmt: skip
        # The stack's own idle cost (its pollers and scheduler loop), taken off each span's CPU
        idle_start, idle_cpu = time.monotonic(), _cpu_seconds(stack.pid)
        time.sleep(10)
        idle_rate = (_cpu_seconds(stack.pid) - idle_cpu) / (time.monotonic() - idle_start)
        everyone = {f"r{n}@example.com" for n in range(1, args.recipients + 1)}
        walls, cpus, singles, single_cpus = [], [], [], []
        for repeat in range(args.repeats):
            before, cpu_before, clock = _mails(mail_dir), _cpu_seconds(stack.pid), time.monotonic()
            started = time.time()
            send("POST", f"/api/jobs/{burst_job['id']}/execute")
            last = _wait_for_mails(mail_dir, before, everyone, timeout=1800)
            walls.append(last - started)
            cpus.append(_cpu_seconds(stack.pid) - cpu_before - idle_rate * (time.monotonic() - clock))
            before, cpu_before, clock = _mails(mail_dir), _cpu_seconds(stack.pid), time.monotonic()
            started = time.time()
            send("POST", f"/api/jobs/{single_job['id']}/execute")
            singles.append(_wait_for_mails(mail_dir, before, {"one@example.com"}, timeout=300) - started)
            single_cpus.append(_cpu_seconds(stack.pid) - cpu_before - idle_rate * (time.monotonic() - clock))
            print(f"repeat {repeat + 1}: {args.recipients} recipients in {walls[-1]:.1f} s "
                  f"({cpus[-1]:.1f} CPU-s); one run alone {singles[-1]:.2f} s ({single_cpus[-1]:.2f} CPU-s)",
                  flush=True)  # fmt: skip
        wall, cpu, single, single_cpu = (statistics.median(v) for v in (walls, cpus, singles, single_cpus))
        n = args.recipients
        print(f"\ncores: {os.cpu_count()}  recipients: {n}  repeats: {args.repeats} (medians)")
        print(f"trigger to last mail:        {wall:8.1f} s")
        print(f"per recipient (wall):        {wall / n * 1000:8.0f} ms")
        print(f"per recipient (CPU, stack):  {cpu / n * 1000:8.0f} ms")
        print(f"idle stack (subtracted):     {idle_rate * 1000:8.0f} CPU-ms a second")
        print(f"one document run, alone:     {single * 1000:8.0f} ms, {single_cpu * 1000:.0f} CPU-ms (to its mail)")
        print(f"per recipient / run alone:   {wall / n / single:8.2f}x wall, {cpu / n / single_cpu:.2f}x CPU")
        return 0


if __name__ == "__main__":
    sys.exit(main())
