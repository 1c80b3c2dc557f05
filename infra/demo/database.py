"""Build the demo SQLite database: customers, products, orders and order lines over two years.

Deterministic (a fixed seed), so tests can rely on its counts. Money is kept in integer cents and
shown through `printf('%.2f', cents / 100.0) AS "x [decimal]"` as exact decimals; dates and
timestamps are ISO text with declared types.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

Row = tuple[Any, ...]
SCHEMA_VERSION = 2
FIRST_DAY = date(2024, 7, 1)
LAST_DAY = date(2026, 6, 30)
CUSTOMERS = 2_000
PRODUCTS = 300
ORDERS = 60_000
GST_RATE_PERCENT = 10
REGIONS = ("NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT")
CATEGORIES = ("Stationery", "Furniture", "Electronics", "Kitchen", "Cleaning", "Fresh food", "Books")
GST_FREE_CATEGORIES = frozenset({"Fresh food", "Books"})
STATUSES = ("completed", "completed", "completed", "completed", "shipped", "cancelled", "refunded")
CHANNELS = ("web", "phone", "store", "marketplace")
FIRST_NAMES = (
    "Olivia",
    "Jack",
    "Mia",
    "Noah",
    "Chloé",
    "Jürgen",
    "Aroha",
    "Wei",
    "Priya",
    "Liam",
    "Zoë",
    "Mateo",
    "Ngaio",
    "Hiroshi",
    "Fatima",
    "Oscar",
    "Ava",
    "Lucas",
    "Isla",
    "Ethan",
)
LAST_NAMES = (
    "Smith",
    "Nguyen",
    "O'Brien",
    "Müller",
    "Williams",
    "Chen",
    "Patel",
    "Brown",
    "Kowalski",
    "García",
    "Taylor",
    "Wilson",
    "Lee",
    "Martin",
    "Anderson",
    "Thompson",
    "Walker",
    "Ryan",
)
CITIES = {
    "NSW": "Sydney",
    "VIC": "Melbourne",
    "QLD": "Brisbane",
    "WA": "Perth",
    "SA": "Adelaide",
    "TAS": "Hobart",
    "ACT": "Canberra",
    "NT": "Darwin",
}

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, region TEXT NOT NULL, city TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL, category TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL, unit_price DECIMAL(12,2) NOT NULL, gst_free BOOLEAN NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
    order_date DATE NOT NULL, ordered_at TIMESTAMP NOT NULL, status TEXT NOT NULL, channel TEXT NOT NULL,
    note TEXT);
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL, discount_pct REAL, net_cents INTEGER NOT NULL,
    gst_cents INTEGER NOT NULL);
CREATE INDEX orders_by_date ON orders(order_date);
CREATE INDEX orders_by_customer ON orders(customer_id);
CREATE INDEX lines_by_order ON order_lines(order_id);
"""


def build_demo_database(path: Path, orders: int = ORDERS, seed: int = 42) -> Path:
    """Write the demo database to `path` (replacing it) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".building")
    scratch.unlink(missing_ok=True)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    connection = sqlite3.connect(scratch)
    try:
        connection.executescript(SCHEMA)
        connection.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), ("orders", str(orders))],
        )
        connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", _customers(rng))
        products = _products(rng)
        connection.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)", products)
        order_rows, line_rows = _orders(rng, products, orders)
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", order_rows)
        connection.executemany("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()
    scratch.replace(path)
    return path


def is_current(path: Path, orders: int = ORDERS) -> bool:
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return False
    return meta.get("schema_version") == str(SCHEMA_VERSION) and meta.get("orders") == str(orders)


def _customers(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for customer_id in range(1, CUSTOMERS + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        region = rng.choice(REGIONS)
        email = None if customer_id % 17 == 0 else f"customer{customer_id}@example.com"
        created = datetime.combine(FIRST_DAY, datetime.min.time()) - timedelta(minutes=rng.randrange(2_000_000))
        rows.append((customer_id, name, email, region, CITIES[region], created.isoformat(sep=" ")))
    return rows


def _products(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for product_id in range(1, PRODUCTS + 1):
        category = CATEGORIES[product_id % len(CATEGORIES)]
        cents = rng.randrange(150, 25_000)
        name = f"{category} item {product_id:03d}"
        rows.append(
            (
                product_id,
                f"SKU-{product_id:05d}",
                name,
                category,
                cents,
                f"{cents // 100}.{cents % 100:02d}",
                category in GST_FREE_CATEGORIES,
            )
        )
    return rows


def _orders(rng: random.Random, products: list[Row], count: int) -> tuple[list[Row], list[Row]]:
    span_days = (LAST_DAY - FIRST_DAY).days + 1
    orders: list[Row] = []
    lines: list[Row] = []
    line_id = 0
    for order_id in range(1, count + 1):
        day = FIRST_DAY + timedelta(days=rng.randrange(span_days))
        ordered_at = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(86_400))
        note = None if order_id % 5 else rng.choice(("Leave at door", "Urgent", "Gift wrap, please", "中文备注"))
        orders.append(
            (
                order_id,
                rng.randrange(1, CUSTOMERS + 1),
                day.isoformat(),
                ordered_at.isoformat(sep=" "),
                rng.choice(STATUSES),
                rng.choice(CHANNELS),
                note,
            )
        )
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            line_id += 1
            product = products[rng.randrange(len(products))]
            unit_cents = int(product[4])
            quantity = rng.randrange(1, 6)
            discount = rng.choice((None, None, None, 5.0, 10.0))
            net = unit_cents * quantity * (100 - int(discount or 0)) // 100
            gst = 0 if product[6] else (net * GST_RATE_PERCENT + 50) // 100
            lines.append((line_id, order_id, product[0], quantity, unit_cents, discount, net, gst))
    return orders, lines
