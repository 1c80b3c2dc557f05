"""In-memory stand-ins for the storage protocols, so domain tests need no AWS."""

from __future__ import annotations

from reportserver.domain.errors import AlreadyExists
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report
from reportserver.domain.tokens import ApiToken


class MemoryTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, ApiToken] = {}

    def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
        return self.tokens.get(name)

    def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None:
        return next((t for t in self.tokens.values() if t.secret_hash == secret_hash), None)

    def create(self, token: ApiToken) -> None:
        if token.name in self.tokens:
            raise AlreadyExists(token.name)
        self.tokens[token.name] = token


class MemoryUsageKeys:
    """API keys of a usage plan, by id: what `issue_token` adds and a deletion removes."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def add(self, token: ApiToken) -> str:
        if token.usage_key in self.keys.values():
            raise AssertionError("API Gateway refuses a second key of the same value")
        key_id = f"key-{len(self.keys) + 1}"
        self.keys[key_id] = token.usage_key
        return key_id

    def remove(self, key_id: str) -> None:
        self.keys.pop(key_id, None)


class MemoryCatalog:
    def __init__(self, reports: list[Report], sources: list[DataSource]) -> None:
        self.reports = {r.id: r for r in reports}
        self.sources = {s.id: s for s in sources}

    def report_by_id(self, report_id: int) -> Report | None:
        return self.reports.get(report_id)

    def report_by_slug(self, slug: str) -> Report | None:
        return next((r for r in self.reports.values() if r.slug == slug), None)

    def report_by_field_id(self, field_id: int) -> Report | None:
        return next((r for r in self.reports.values() if any(f.id == field_id for f in r.fields)), None)

    def list_reports(self) -> list[Report]:
        return list(self.reports.values())

    def data_source(self, data_source_id: str) -> DataSource | None:
        return self.sources.get(data_source_id)
