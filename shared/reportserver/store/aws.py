"""boto3 clients and resources, created lazily and once per container.

Importing this module needs no AWS settings and does not import boto3 (a few hundred milliseconds
of cold start): the first call does. `reset()` lets tests start afresh under moto.
"""

from __future__ import annotations

import functools
import os
from typing import Any


@functools.cache
def dynamodb() -> Any:
    import boto3  # noqa: PLC0415 - deferred: boto3 is the heaviest import of the API functions

    return boto3.resource("dynamodb")


@functools.cache
def s3() -> Any:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    # Path-style addressing where an endpoint is overridden (the local stack's moto server on 127.0.0.1).
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    return boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": style}))


@functools.cache
def sqs() -> Any:
    import boto3  # noqa: PLC0415

    return boto3.client("sqs")


def reset() -> None:
    for client in (dynamodb, s3, sqs):
        client.cache_clear()


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
