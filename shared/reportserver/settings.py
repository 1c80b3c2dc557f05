"""Typed settings, one model per function, read once from the environment at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
# Headers and the status line share the 6 MB response with the body; keep a margin for them.
MAX_SYNC_BODY_BYTES = LAMBDA_RESPONSE_LIMIT_BYTES - 64 * 1024


class SettingsError(RuntimeError):
    """A function started without the configuration it needs: fail at start, not on a request."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise SettingsError(f"{cls.__name__} is not configured: {problems}") from None


class AuthSettings(_Settings):
    tokens_table: str = Field(alias="TOKENS_TABLE", min_length=3)


class ReportsSettings(_Settings):
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    call_max_rows: int = Field(alias="CALL_MAX_ROWS", default=50_000, ge=1, le=1_000_000)
    call_max_bytes: int = Field(alias="CALL_MAX_BYTES", default=5_000_000, ge=1024, le=MAX_SYNC_BODY_BYTES)
    catalog_cache_seconds: float = Field(alias="CATALOG_CACHE_SECONDS", default=30.0, ge=0, le=3600)
