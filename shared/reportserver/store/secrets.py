"""Data-source passwords in Secrets Manager: read by the functions that open sources, never stored
in a table, never logged. A secret's value is the password itself, or JSON with a `password` key
(the shape RDS and Secrets Manager's rotation functions write)."""

from __future__ import annotations

import json
import logging

from reportserver.domain.errors import SourceUnavailable
from reportserver.store import aws
from reportserver.store.ttl_cache import TtlCache

log = logging.getLogger(__name__)
PASSWORD_TTL_SECONDS = 300.0  # a rotated password is read again within five minutes, or at once on a refusal


class SecretPasswords:
    def __init__(self, ttl_seconds: float = PASSWORD_TTL_SECONDS) -> None:
        self._cache: TtlCache[str] = TtlCache(ttl_seconds, keep_misses=False)

    def __call__(self, secret_id: str) -> str:
        password = self._cache.get_or_load(secret_id, lambda: self._read(secret_id))
        if password is None:
            raise SourceUnavailable("The report's data source is not available: its password cannot be read")
        return password

    def forget(self, secret_id: str) -> None:
        self._cache.forget(secret_id)

    def _read(self, secret_id: str) -> str | None:
        try:
            value = aws.secretsmanager().get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as error:
            log.error("secret read failed", extra={"secret_id": secret_id, "error_code": aws.error_code(error)})
            return None
        if value.startswith("{"):
            try:
                password = json.loads(value).get("password")
            except (ValueError, AttributeError):
                password = None
            return password if isinstance(password, str) else None
        return str(value)


class DataSourceSecrets:
    """Each data model password as a secret of its own (see `domain.datamodels`)."""

    def create(self, name: str, value: str) -> str:
        return str(aws.secretsmanager().create_secret(Name=name, SecretString=value)["ARN"])

    def delete(self, secret_id: str) -> None:
        """Gone at once (no recovery window): the model that named it no longer does. A secret already
        gone is not an error."""
        try:
            aws.secretsmanager().delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        except Exception as error:
            if aws.error_code(error) != "ResourceNotFoundException":
                log.error("secret delete failed", extra={"secret_id": secret_id, "error_code": aws.error_code(error)})
