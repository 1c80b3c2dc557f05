"""Open the right `Source` for a data-source definition."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reportserver.domain.errors import InvalidParameter, SourceUnavailable
from reportserver.domain.ports import DataSource
from reportserver.sources.sqlite import SqliteSource

if TYPE_CHECKING:  # the report functions never load the data model admin, nor Athena's source
    from contextlib import AbstractContextManager

    from reportserver.domain.datamodels import OpenedSource
    from reportserver.domain.refreshes import LiveReading
    from reportserver.sources.athena import AthenaClients

PasswordReader = Callable[[str], str]


# The connect timeout is libpq's whole seconds (at least 2); a source's limit under 2 s still gets 2.
MIN_CONNECT_TIMEOUT_SECONDS = 2
MAX_CONNECT_TIMEOUT_SECONDS = 10


def _no_passwords(secret_id: str) -> str:
    raise SourceUnavailable("The report's data source is not available: no password store is configured")


class SourceOpener:
    """Opens sources; a PostgreSQL source's password is read (and kept a few minutes) by `passwords`."""

    def __init__(self, passwords: PasswordReader = _no_passwords, athena: AthenaClients | None = None) -> None:
        self._passwords = passwords
        self._athena = athena

    def __call__(self, definition: DataSource) -> OpenedSource:
        if definition.kind == "athena":
            from reportserver.sources.athena import AthenaSource  # noqa: PLC0415

            if self._athena is None:
                raise SourceUnavailable("The report's data source is not available: Athena is not configured")
            return AthenaSource(definition, self._athena)
        if definition.kind == "postgresql":
            from reportserver.sources.postgres import PostgresSource, PostgresTarget  # noqa: PLC0415

            password = self._passwords(definition.password_secret) if definition.password_secret else ""
            timeout = int(min(max(definition.query_timeout_seconds, 2), MAX_CONNECT_TIMEOUT_SECONDS))
            target = PostgresTarget(
                host=definition.host,
                port=definition.port,
                database=definition.database,
                user=definition.user,
                password=password,
                ssl_mode=definition.ssl_mode,
                connect_timeout_seconds=max(MIN_CONNECT_TIMEOUT_SECONDS, timeout),
            )
            return PostgresSource(target, definition.query_timeout_seconds)
        return SqliteSource(definition.database, definition.query_timeout_seconds)


# SQLite only (its definitions carry no secret); the functions build theirs with Secrets Manager.
open_source = SourceOpener()


def at_one_moment(
    opener: Callable[[DataSource], OpenedSource],
) -> Callable[[DataSource], AbstractContextManager[LiveReading]]:
    """The refresh's way in: a model's live database with its statements at one moment (PostgreSQL's
    REPEATABLE READ transaction); snapshots are of PostgreSQL and SQLite models only."""
    from reportserver.sources.postgres import PostgresSource  # noqa: PLC0415

    def read(model: DataSource) -> AbstractContextManager[LiveReading]:
        source = opener(model)
        if not isinstance(source, PostgresSource | SqliteSource):
            raise InvalidParameter("snapshot", f"Data model {model.number} is not a PostgreSQL or SQLite model")
        return source.one_moment()

    return read
