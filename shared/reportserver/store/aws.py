"""boto3 clients and resources, created lazily and once per container.

Importing this module needs no AWS settings and does not import boto3 (a few hundred milliseconds
of cold start): the first call does. `reset()` lets tests start afresh under moto.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def dynamodb() -> Any:
    import boto3  # noqa: PLC0415 - deferred: boto3 is the heaviest import of the API functions

    return boto3.resource("dynamodb")


def reset() -> None:
    dynamodb.cache_clear()


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
