"""boto3 clients and resources, created lazily and once per container.

Importing this module needs no AWS settings and does not import boto3 (a few hundred milliseconds
of cold start): the first call does. `reset()` lets tests start afresh under moto.

In Lambda every call uses the function's own role (the default credential chain). The local stack
runs every function in one process, so it says whose credentials a call uses with `acting_as`: each
function's handler runs as its own role there too, and a call its role does not allow fails as in AWS.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Credentials as boto3's keyword arguments (aws_access_key_id, ...), frozen so they can key a cache.
Credentials = frozenset[tuple[str, str]]
_acting_as: ContextVar[Credentials | None] = ContextVar("aws_acting_as", default=None)


@contextmanager
def acting_as(credentials: dict[str, str] | None) -> Iterator[None]:
    """Every client this context (thread or task) gets uses these credentials; None: the default chain."""
    token = _acting_as.set(frozenset(credentials.items()) if credentials else None)
    try:
        yield
    finally:
        _acting_as.reset(token)


def dynamodb() -> Any:
    return _dynamodb(_acting_as.get())


def s3() -> Any:
    return _s3(_acting_as.get())


def sqs() -> Any:
    return _sqs(_acting_as.get())


def apigateway() -> Any:
    return _apigateway(_acting_as.get())


def secretsmanager() -> Any:
    return _secretsmanager(_acting_as.get())


def scheduler() -> Any:
    return _scheduler(_acting_as.get())


def ses() -> Any:
    return _ses(_acting_as.get())


def athena(region: str) -> Any:
    """Athena in a data model's region (its data lake may be in another than the functions')."""
    return _athena(_acting_as.get(), region)


class AthenaClients:
    """What an Athena source calls: Athena in its region, and S3 for the result files."""

    def athena(self, region: str) -> Any:
        return athena(region)

    def s3(self) -> Any:
        return s3()


@functools.cache
def _session(credentials: Credentials | None) -> Any:
    import boto3  # noqa: PLC0415 - deferred: boto3 is the heaviest import of the API functions

    return boto3.Session(**dict(credentials or ()))


@functools.cache
def _dynamodb(credentials: Credentials | None) -> Any:
    return _session(credentials).resource("dynamodb")


@functools.cache
def _s3(credentials: Credentials | None) -> Any:
    from botocore.config import Config  # noqa: PLC0415

    # Path-style addressing where an endpoint is overridden (the local stack's moto server on 127.0.0.1).
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    return _session(credentials).client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": style}))


@functools.cache
def _sqs(credentials: Credentials | None) -> Any:
    return _session(credentials).client("sqs")


@functools.cache
def _apigateway(credentials: Credentials | None) -> Any:
    return _session(credentials).client("apigateway")


@functools.cache
def _secretsmanager(credentials: Credentials | None) -> Any:
    return _session(credentials).client("secretsmanager")


@functools.cache
def _scheduler(credentials: Credentials | None) -> Any:
    return _session(credentials).client("scheduler")


@functools.cache
def _ses(credentials: Credentials | None) -> Any:
    return _session(credentials).client("ses")


@functools.cache
def _athena(credentials: Credentials | None, region: str) -> Any:
    return _session(credentials).client("athena", region_name=region or None)


def reset() -> None:
    for cached in (_session, _dynamodb, _s3, _sqs, _apigateway, _secretsmanager, _scheduler, _ses, _athena):
        cached.cache_clear()


def pages(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every page of a DynamoDB query or scan (`table.query`, `table.scan`), following LastEvaluatedKey."""
    while True:
        page = call(**request)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def written(call: Callable[..., Any], **request: Any) -> bool:
    """A DynamoDB conditional write (`table.put_item`, `update_item`, `delete_item`): False when its
    condition did not hold; any other error is raised."""
    try:
        call(**request)
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
