"""Open the right `Source` for a data-source definition."""

from reportserver.domain.ports import DataSource, Source
from reportserver.sources.sqlite import SqliteSource


def open_source(definition: DataSource) -> Source:
    # Only SQLite in this slice; the `kind` literal makes an unknown kind fail validation earlier.
    return SqliteSource(definition.database, definition.query_timeout_seconds)
