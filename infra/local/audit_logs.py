"""CloudWatch Logs' subscription, for the local stack: the API functions' audit lines (what Lambda would
ship to their log groups) are collected here and handed to the audit writer function in the event shape
a subscription filter sends (`awslogs.data`: gzip, base64), as the template's CloudWatchLogs events say."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from collections import deque
from typing import Any

from reportserver.http import audit

MAX_WAITING = 100_000  # lines kept while the writer is behind; CloudWatch Logs keeps them, so do we


class AuditLogs:
    def __init__(self, api: Any, writer: str, log_group: str = "/reportserver/local/api") -> None:
        self._api = api
        self._writer = writer
        self._log_group = log_group
        self._lines: deque[bytes] = deque(maxlen=MAX_WAITING)
        self._lock = threading.Lock()

    def install(self) -> None:
        """From now on the functions' audit lines come here (and still to stdout, as to their log)."""
        audit.set_sink(self.collect)

    def collect(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)

    def deliver(self, batch: int = 500) -> int:
        """Hand what waits to the writer, a subscription event per batch; return how many lines went."""
        sent = 0
        while True:
            with self._lock:
                lines = [self._lines.popleft() for _ in range(min(batch, len(self._lines)))]
            if not lines:
                return sent
            now = int(time.time() * 1000)
            document = {
                "messageType": "DATA_MESSAGE",
                "owner": "123456789012",
                "logGroup": self._log_group,
                "logStream": "local",
                "subscriptionFilters": ["AuditRecords"],
                "logEvents": [
                    {"id": uuid.uuid4().hex, "timestamp": now, "message": line.decode("utf-8").rstrip("\n")}
                    for line in lines
                ],
            }
            data = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
            try:
                self._api.invoke(self._writer, {"awslogs": {"data": data}})
            except Exception:
                with self._lock:  # as CloudWatch Logs retries: the lines wait for the next round
                    self._lines.extendleft(reversed(lines))
                raise
            sent += len(lines)

    def run_forever(self, every_seconds: float = 1.0) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(every_seconds)
                try:
                    self.deliver()
                except Exception as error:  # keep going: the writer may be down for a moment
                    print(f"[audit] delivery failed, will retry: {error}", flush=True)

        thread = threading.Thread(target=loop, name="audit-logs", daemon=True)
        thread.start()
        return thread
