"""Put the demo data source and reports into a catalog, through the same domain validation as admins."""

from __future__ import annotations

from pathlib import Path

from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report, parse_report
from reportserver.store.catalog import DynamoCatalog

from infra.demo.reports import DEMO_REPORTS, DEMO_SOURCE_ID


def seed_demo(catalog: DynamoCatalog, database: Path) -> list[Report]:
    catalog.put_data_source(DataSource(id=DEMO_SOURCE_ID, name="Demo shop (SQLite)", database=str(database)))
    return [catalog.create_report(parse_report({**d, "data_source_id": DEMO_SOURCE_ID})) for d in DEMO_REPORTS]
