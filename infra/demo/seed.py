"""Put the demo data source and reports into a catalog, through the same domain validation as admins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reportserver.domain.access import Grant, Principal
from reportserver.domain.datamodels import DataModelAdmin, DataModelCreate, ProviderModel
from reportserver.domain.documents import Category
from reportserver.domain.identity import GroupCreate, IdentityAdmin, IdentityStore
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.reports import Report, parse_report
from reportserver.sources.registry import open_source
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.secrets import DataSourceSecrets

from infra.demo.postgres import DEMO_PG_REPORTS, DEMO_PG_SOURCE_NAME, demo_reader
from infra.demo.reports import DEMO_GROUPS, DEMO_REPORTS, DEMO_SOURCE_NAME
from infra.local.postgres import Connection

OPERATOR = Principal("token", "demo-seed", ("*",), (Grant("admin"),), "demo-seed")


def _models(catalog: DynamoCatalog, secret_prefix: str) -> DataModelAdmin:
    """The data model admin of the API, with SQLite files allowed (the demo's)."""
    return DataModelAdmin(catalog, DataSourceSecrets(), open_source, secret_prefix, sqlite_files=True)


def seed_demo(catalog: DynamoCatalog, database: Path) -> list[Report]:
    """The SQLite demo shop as a data model (seed 001's, made as the API makes one) and its reports."""
    provider = ProviderModel(providerType="sqLite", database=str(database))
    model = _models(catalog, "").create(OPERATOR, DataModelCreate(name=DEMO_SOURCE_NAME, providerModel=provider))
    filed = _filed(catalog, DEMO_REPORTS)
    return [catalog.create_report(parse_report({**d, "data_source_id": model.id})) for d in filed]


def seed_demo_postgres(catalog: DynamoCatalog, server: Connection, secret_prefix: str) -> list[Report]:
    """The PostgreSQL demo shop as a second data model, read by a role that may only read its tables
    (its password in Secrets Manager, never in the catalog), and its reports."""
    server = demo_reader(server)
    provider = ProviderModel(
        providerType="postgresql",
        serverName=server.host,
        port=server.port,
        database=server.database,
        userName=server.user,
        password=server.password,
        sslMode="disable",  # loopback only: the local server has no TLS
    )
    body = DataModelCreate(name=DEMO_PG_SOURCE_NAME, providerModel=provider)
    model = _models(catalog, secret_prefix).create(OPERATOR, body)
    return [
        catalog.create_report(parse_report({**d, "data_source_id": model.id})) for d in _filed(catalog, DEMO_PG_REPORTS)
    ]


def _filed(catalog: DynamoCatalog, definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definitions with their categories' ids, each category made (as the API makes one) if new."""
    categories = {c.name: c for c in catalog.categories()}
    filed = []
    for definition in definitions:
        name = definition.get("category", "")
        if name and name not in categories:
            categories[name] = Category(id=catalog.next_category_id(), name=name)
            catalog.create_category(categories[name])
        filed.append({**definition, "category_id": categories[name].id} if name else definition)
    return filed


def seed_groups(store: IdentityStore) -> None:
    """The user groups the demo reports and tokens name, through the same domain code as the API."""
    identity = IdentityAdmin(store, _NoKeys(), PasswordHasher(), lambda: datetime.now(UTC))
    for name in DEMO_GROUPS:
        identity.create_group(OPERATOR, GroupCreate(name=name))


class _NoKeys:
    """Groups have no API keys; nothing here makes one."""

    def add(self, name: str, owner_id: str, value: str) -> str:
        raise AssertionError("a group has no API key")

    def remove(self, key_id: str) -> None:
        raise AssertionError("a group has no API key")
