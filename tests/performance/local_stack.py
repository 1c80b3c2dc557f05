"""The local stack for a benchmark: started as `make run` starts it, in its own state folder, and
stopped afterwards (`with running_stack(...) as (process, state):`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 180


@contextmanager
def running_stack(prefix: str, *options: str) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """The stack's process and its `stack.json`, once written; `options` are the stack's own."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'shared'}", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    stack = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack", "--port", "0", "--state-dir", str(state_dir), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        state_file = state_dir / "stack.json"
        deadline = time.monotonic() + START_SECONDS
        while not state_file.exists() and time.monotonic() < deadline:
            if stack.poll() is not None:
                raise RuntimeError(f"the local stack exited with {stack.returncode}")
            time.sleep(0.2)
        yield stack, json.loads(state_file.read_text(encoding="utf-8"))
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill()
