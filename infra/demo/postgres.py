"""The demo shop in PostgreSQL: the same rows as the SQLite demo, in PostgreSQL's own types, and the
demo reports that read it (a second data source for the local stack and the tests)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.local.postgres import Connection

DEMO_PG_SOURCE_NAME = "Demo shop (PostgreSQL)"
READER_ROLE = "report_reader"
LOADED_MARK = "demo_loaded_from"

SCHEMA = """
DROP TABLE IF EXISTS order_lines, orders, products, customers, meta;
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE customers (
    id integer PRIMARY KEY, name text NOT NULL, email text, region text NOT NULL, city text NOT NULL,
    created_at timestamp NOT NULL);
CREATE TABLE products (
    id integer PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL, category text NOT NULL,
    unit_price_cents integer NOT NULL, unit_price numeric(12,2) NOT NULL, gst_free boolean NOT NULL);
CREATE TABLE orders (
    id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers(id),
    order_date date NOT NULL, ordered_at timestamp NOT NULL, status text NOT NULL, channel text NOT NULL,
    note text);
CREATE TABLE order_lines (
    id integer PRIMARY KEY, order_id integer NOT NULL REFERENCES orders(id),
    product_id integer NOT NULL REFERENCES products(id), quantity integer NOT NULL,
    unit_price_cents integer NOT NULL, discount_pct double precision, net_cents integer NOT NULL,
    gst_cents integer NOT NULL);
CREATE INDEX orders_by_date ON orders(order_date);
CREATE INDEX orders_by_customer ON orders(customer_id);
CREATE INDEX lines_by_order ON order_lines(order_id);
"""
TABLES = ("meta", "customers", "products", "orders", "order_lines")


def load_demo_postgres(conninfo: str, sqlite_path: Path) -> bool:
    """Copy the SQLite demo's rows into the database `conninfo` names, unless they are there already
    (from the same file). Returns whether it loaded."""
    import psycopg  # noqa: PLC0415

    stamp = f"{sqlite_path.resolve()}:{sqlite_path.stat().st_mtime_ns}"
    with psycopg.connect(conninfo) as connection:
        found = (
            connection.execute("SELECT value FROM meta WHERE key = %s", (LOADED_MARK,), prepare=False).fetchone()
            if _has_meta(connection)
            else None
        )
        if found and found[0] == stamp:
            return False
        connection.execute(SCHEMA)
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            for table in TABLES:
                rows = source.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
                names = [d[0] for d in rows.description]
                with connection.cursor().copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(_converted(table, names, row))
        finally:
            source.close()
        connection.execute("INSERT INTO meta (key, value) VALUES (%s, %s)", (LOADED_MARK, stamp))
        connection.execute("ANALYZE")
    return True


def demo_reader(server: Connection) -> Connection:
    """A login that may read the demo shop's tables and nothing else, for the demo data source: a report
    server's source connects as such a role, never as a superuser (who may read the server's files with
    `pg_read_file` in a read-only transaction). Its password is derived from the superuser's, so that
    every caller on one server gets the same one."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    password = hmac.new(server.password.encode(), READER_ROLE.encode(), hashlib.sha256).hexdigest()[:32]
    role = sql.Identifier(READER_ROLE)
    with psycopg.connect(server.conninfo(), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
        verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
        connection.execute(
            sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                verb, role, sql.Literal(password)
            )
        )
        connection.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        connection.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(server.database), role))
        connection.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        connection.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
    return dataclasses.replace(server, user=READER_ROLE, password=password)


def _has_meta(connection: Any) -> bool:
    row = connection.execute("SELECT to_regclass('public.meta') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _converted(table: str, names: list[str], row: tuple[Any, ...]) -> tuple[Any, ...]:
    if table != "products":
        return row
    return tuple(bool(v) if n == "gst_free" else v for n, v in zip(names, row, strict=True))


_DATE_RANGE: list[dict[str, Any]] = [
    {"name": "date_from", "label": "From", "type": "date", "default": "2024-07-01", "field_order": 1},
    {"name": "date_to", "label": "To", "type": "date", "default": "2026-06-30", "field_order": 2},
]

# Written for PostgreSQL: numeric sums are exact decimals (no printf), and each parameter's type is
# clear to the server (a parameter used only in `IS NULL` gets a cast).
DEMO_PG_REPORTS: list[dict[str, Any]] = [
    {
        "name": "PG Sales by Month",
        "description": "Orders, net sales and GST per month, from the PostgreSQL demo shop.",
        "category": "Finance",
        "fields": _DATE_RANGE,
        "time_range": {"start_field": "date_from", "end_field": "date_to"},
        "queries": [
            {
                "sheet_name": "Sales by month",
                "sql": """
            SELECT to_char(o.order_date, 'YYYY-MM') AS month, count(DISTINCT o.id) AS orders,
                   sum(l.net_cents)::numeric / 100 AS "net_sales [decimal(2)]",
                   sum(l.gst_cents)::numeric / 100 AS "gst_collected [decimal(2)]",
                   sum(l.net_cents + l.gst_cents)::numeric / 100 AS "gross_sales [decimal(2)]"
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.order_date BETWEEN :date_from AND :date_to AND o.status <> 'cancelled'
            GROUP BY 1 ORDER BY 1""",
            }
        ],
    },
    {
        "name": "PG Orders by Region",
        "description": "Every order placed by customers of one region, from the PostgreSQL demo shop.",
        "category": "Sales",
        "fields": [
            {
                "name": "region",
                "label": "Region",
                "type": "choice",
                "required": True,
                "field_order": 1,
                "choices_sql": "SELECT DISTINCT region, region FROM customers ORDER BY region",
            },
            {
                "name": "status",
                "label": "Status",
                "type": "choice",
                "field_order": 2,
                "choices": [
                    {"value": s, "label": s.capitalize()} for s in ("completed", "shipped", "cancelled", "refunded")
                ],
            },
            *[dict(f, field_order=f["field_order"] + 2) for f in _DATE_RANGE],
        ],
        "queries": [
            {
                "sheet_name": "Orders",
                "sql": """
            SELECT o.id AS order_id, o.order_date, o.ordered_at, c.name AS customer, c.city, o.status,
                   o.channel, sum(l.net_cents + l.gst_cents)::numeric / 100 AS "total [decimal(2)]", o.note
            FROM orders o JOIN customers c ON c.id = o.customer_id JOIN order_lines l ON l.order_id = o.id
            WHERE c.region = :region AND (:status::text IS NULL OR o.status = :status)
              AND o.order_date BETWEEN :date_from AND :date_to
            GROUP BY o.id, c.id ORDER BY o.ordered_at, o.id""",
            }
        ],
    },
    {
        "name": "PG Order Lines",
        "description": "Every order line with its product, prices and GST (about 130,000 rows), from PostgreSQL.",
        "time_range": {"start_field": "date_from", "end_field": "date_to"},
        "category": "Sales",
        "fields": [
            *_DATE_RANGE,
            {"name": "row_limit", "label": "At most this many rows", "type": "integer", "field_order": 3},
        ],
        "queries": [
            {
                "sheet_name": "Order lines",
                "sql": """
            SELECT l.id AS line_id, o.id AS order_id, o.order_date, o.ordered_at, p.sku,
                   p.name AS product, p.category, l.quantity, p.unit_price, l.discount_pct,
                   l.net_cents::numeric / 100 AS "net [decimal(2)]", l.gst_cents::numeric / 100 AS "gst [decimal(2)]",
                   p.gst_free, o.status
            FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
            WHERE o.order_date BETWEEN :date_from AND :date_to
            ORDER BY l.id LIMIT :row_limit::bigint""",
            }
        ],
    },
    {
        "name": "PG Product Catalogue",
        "description": "Products with their category, price and GST treatment, from PostgreSQL.",
        "category": "Products",
        "fields": [
            {
                "name": "category",
                "label": "Category",
                "type": "choice",
                "field_order": 1,
                "choices_sql": "SELECT DISTINCT category FROM products ORDER BY category",
            },
            {"name": "gst_free", "label": "GST-free only", "type": "boolean", "field_order": 2},
            {"name": "min_price", "label": "Minimum price", "type": "number", "field_order": 3},
        ],
        "queries": [
            {
                "sheet_name": "Products",
                "sql": """
            SELECT id, sku, name, category, unit_price, gst_free FROM products
            WHERE (:category::text IS NULL OR category = :category)
              AND (:gst_free::boolean IS NULL OR gst_free = :gst_free)
              AND (:min_price::numeric IS NULL OR unit_price >= :min_price)
            ORDER BY sku""",
            }
        ],
    },
]
