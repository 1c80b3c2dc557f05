"""Put the demo data source and reports into a catalog, through the same domain validation as admins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reportserver.domain.access import Grant, Principal
from reportserver.domain.identity import GroupCreate, IdentityAdmin, IdentityStore
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report, parse_report
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.secrets import store_password

from infra.demo.postgres import DEMO_PG_REPORTS, DEMO_PG_SOURCE_ID, demo_reader
from infra.demo.reports import DEMO_GROUPS, DEMO_REPORTS, DEMO_SOURCE_ID
from infra.local.postgres import Connection


def seed_demo(catalog: DynamoCatalog, database: Path) -> list[Report]:
    catalog.put_data_source(DataSource(id=DEMO_SOURCE_ID, name="Demo shop (SQLite)", database=str(database)))
    return [catalog.create_report(parse_report({**d, "data_source_id": DEMO_SOURCE_ID})) for d in DEMO_REPORTS]


def seed_demo_postgres(catalog: DynamoCatalog, server: Connection, secret_prefix: str) -> list[Report]:
    """The PostgreSQL demo shop as a second data source, read by a role that may only read its tables
    (its password in Secrets Manager, never in the catalog), and its reports."""
    server = demo_reader(server)
    secret = store_password(f"{secret_prefix}{DEMO_PG_SOURCE_ID}", server.password)
    catalog.put_data_source(
        DataSource(
            id=DEMO_PG_SOURCE_ID,
            name="Demo shop (PostgreSQL)",
            kind="postgresql",
            host=server.host,
            port=server.port,
            database=server.database,
            user=server.user,
            password_secret=secret,
            ssl_mode="disable",  # loopback only: the local server has no TLS
        )
    )
    return [catalog.create_report(parse_report({**d, "data_source_id": DEMO_PG_SOURCE_ID})) for d in DEMO_PG_REPORTS]


def seed_groups(store: IdentityStore) -> None:
    """The user groups the demo reports and tokens name, through the same domain code as the API."""
    operator = Principal("token", "demo-seed", ("*",), (Grant("admin"),), "demo-seed")
    identity = IdentityAdmin(store, _NoKeys(), PasswordHasher(), lambda: datetime.now(UTC))
    for name in DEMO_GROUPS:
        identity.create_group(operator, GroupCreate(name=name))


class _NoKeys:
    """Groups have no API keys; nothing here makes one."""

    def add(self, name: str, owner_id: str, value: str) -> str:
        raise AssertionError("a group has no API key")

    def remove(self, key_id: str) -> None:
        raise AssertionError("a group has no API key")
