"""The local stack, started as a user starts it (python -m infra.local.stack) and stopped after the session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reportserver.store import aws
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import UsagePlanKeys

from tests.bad_inputs import prepare_tokens

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120
# The stack's scheduler loop ticks twice a second with its clock a minute ahead: a schedule due within the
# next minute fires at once, so a test watches a job fire by itself without waiting for the clock.
SCHEDULER_TICK_SECONDS = 0.5
SCHEDULER_CLOCK_AHEAD_SECONDS = 60


@dataclass
class RunningStack:
    state: dict[str, Any]
    banner: str
    state_dir: Path
    headers: dict[str, str]

    @property
    def url(self) -> str:
        return str(self.state["api_url"])


def _wait_for_state(process: subprocess.Popen[str], state_file: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited with {process.returncode}")
        if state_file.exists():
            return dict(json.loads(state_file.read_text(encoding="utf-8")))
        time.sleep(0.2)
    raise RuntimeError("local stack did not start in time")


def _read_banner(log_file: Path) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log_file.read_text(encoding="utf-8")
        if "curl -s" in text:
            return text
        time.sleep(0.1)
    return log_file.read_text(encoding="utf-8")


def _tokens_on_the_stack(state: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Tokens of every kind the bad-input table names, written to the stack's own moto server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", state["moto_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", state["operator"]["aws_access_key_id"])  # IAM is enforced there
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", state["operator"]["aws_secret_access_key"])
    aws.reset()
    try:
        store = DynamoTokenStore(state["resources"]["TokensTable"])
        return prepare_tokens(store, UsagePlanKeys(state["resources"]["TokenUsagePlan"]), "e2e")
    finally:
        aws.reset()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir = tmp_path_factory.mktemp("stack")
    log_file = state_dir / "stack.log"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'shared'}"}
    with log_file.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "infra.local.stack", "--port", "0"),
                *("--state-dir", str(state_dir), "--discard-postgres"),
                *("--scheduler-tick", str(SCHEDULER_TICK_SECONDS)),
                *("--scheduler-clock-ahead", str(SCHEDULER_CLOCK_AHEAD_SECONDS)),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        state = _wait_for_state(process, state_dir / "stack.json")
        monkeypatch = pytest.MonkeyPatch()
        try:
            headers = _tokens_on_the_stack(state, monkeypatch)
        finally:
            monkeypatch.undo()
        yield RunningStack(state, _read_banner(log_file), state_dir, headers)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
