"""What a Lambda proxy response weighs when Lambda sends it, for caps that must stay under its limit.

Lambda's Python runtime serialises the handler's whole result (status, headers, and the body as one
JSON string) with `json.dumps(..., ensure_ascii=False)` on python3.12 and later; its 6 MB limit applies
to that text. Inside the body string every `"` and `\\` is escaped again, so a body of quotes weighs
up to twice its own size. Non-ASCII text is sent as UTF-8 (ensure_ascii=False), so it weighs its bytes.
"""

from __future__ import annotations

import json
from typing import Any

# 6 MB as Lambda counts it: "Response payload size (...) exceeded maximum allowed payload size (6291456 bytes)".
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
# Status, headers and the envelope's keys take the rest; none of ours comes near this.
ENVELOPE_ALLOWANCE_BYTES = 16 * 1024
MAX_BODY_WEIGHT_BYTES = LAMBDA_RESPONSE_LIMIT_BYTES - ENVELOPE_ALLOWANCE_BYTES
RUNTIMES_MEASURED = ("python3.12", "python3.13")  # the runtimes that serialise with ensure_ascii=False


def body_weight(chunk: bytes) -> int:
    """The bytes a piece of a JSON body adds to the serialised response (its own, plus an escape for
    each quote and backslash). A body made by msgspec holds no raw control characters to escape."""
    return len(chunk) + chunk.count(b'"') + chunk.count(b"\\")


def serialised_size(result: dict[str, Any]) -> int:
    """The size of a handler's whole result as the runtime sends it (what the local front door checks)."""
    return len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
