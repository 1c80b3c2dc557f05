"""The demo reports over the demo database: what a new user of the local stack can call at once."""

from __future__ import annotations

from typing import Any

# The user groups the demo reports and the tests' tokens name (made by `seed_groups`).
DEMO_GROUPS = ("finance", "sales")
DEMO_SOURCE_NAME = "Demo shop (SQLite)"

# The demo's template report: a header, a table and totals, every sum exact (decimals, never floats).
INVOICE_TEMPLATE = """
{%- set order = sheets[0].rows[0] if sheets[0].rows else none -%}
{%- set lines = sheets[1].rows -%}
<style>
  body { font-family: sans-serif; margin: 2em; color: #222; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ccc; padding: 4px 8px; text-align: left; }
  td.n, th.n { text-align: right; }
  tfoot td { font-weight: bold; }
</style>
{% if order is none %}
<h1>Tax invoice</h1>
<p>No order {{ parameters.order_id }}.</p>
{% else %}
<h1>Tax invoice {{ order.order_id }}</h1>
<p>Demo Shop Pty Ltd &middot; ABN 00 000 000 000</p>
<p><strong>Bill to:</strong> {{ order.customer }}, {{ order.city }} ({{ order.region }})<br>
<strong>Date:</strong> {{ order.order_date }} &middot; <strong>Status:</strong> {{ order.status }}</p>
<table>
  <thead><tr><th>SKU</th><th>Product</th><th class="n">Qty</th><th class="n">Unit price</th>
  <th class="n">Net</th><th class="n">GST</th></tr></thead>
  <tbody>
  {% for line in lines %}
    <tr><td>{{ line.sku }}</td><td>{{ line.product }}</td><td class="n">{{ line.quantity }}</td>
    <td class="n">{{ line.unit_price|number(2) }}</td><td class="n">{{ line.net|number(2) }}</td>
    <td class="n">{{ line.gst|number(2) }}</td></tr>
  {% endfor %}
  </tbody>
  {% set net = lines|sum(attribute="net") %}{% set gst = lines|sum(attribute="gst") %}
  <tfoot>
    <tr><td colspan="4">Total ({{ lines|length }} lines)</td><td class="n">{{ net|number(2) }}</td>
    <td class="n">{{ gst|number(2) }}</td></tr>
    <tr><td colspan="4">Amount due (incl. GST)</td><td class="n" colspan="2">{{ (net + gst)|number(2) }}</td></tr>
  </tfoot>
</table>
{% endif %}
<p><small>Generated {{ generated_at.strftime("%Y-%m-%d %H:%M UTC") }}</small></p>
"""

_DATE_RANGE: list[dict[str, Any]] = [
    {"name": "date_from", "label": "From", "type": "date", "default": "2024-07-01", "field_order": 1},
    {"name": "date_to", "label": "To", "type": "date", "default": "2026-06-30", "field_order": 2},
]

DEMO_REPORTS: list[dict[str, Any]] = [
    {
        "name": "GST Balance",
        "description": "GST collected on sales per month, for the business activity statement.",
        "category": "Finance",
        "groups": ["finance"],
        "fields": _DATE_RANGE,
        "queries": [
            {
                "sheet_name": "GST by month",
                "sql": """
            SELECT strftime('%Y-%m', o.order_date) AS month,
                   count(DISTINCT o.id) AS orders,
                   printf('%.2f', (sum(l.net_cents)) / 100.0) AS "net_sales [decimal]",
                   printf('%.2f', (sum(l.gst_cents)) / 100.0) AS "gst_collected [decimal]",
                   printf('%.2f', (sum(l.net_cents + l.gst_cents)) / 100.0) AS "gross_sales [decimal]"
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.order_date BETWEEN :date_from AND :date_to AND o.status <> 'cancelled'
            GROUP BY month ORDER BY month""",
            }
        ],
    },
    {
        "name": "Sales by Day",
        "description": "Orders, net sales and GST per day within a date range.",
        "time_range": {"start_field": "date_from", "end_field": "date_to"},
        "category": "Sales",
        "fields": [dict(f, required=True, default=None) for f in _DATE_RANGE],
        "queries": [
            {
                "sheet_name": "Daily sales",
                "sql": """
            SELECT o.order_date AS "day [date]", count(DISTINCT o.id) AS orders,
                   sum(l.quantity) AS units,
                   printf('%.2f', (sum(l.net_cents)) / 100.0) AS "net_sales [decimal]",
                   printf('%.2f', (sum(l.gst_cents)) / 100.0) AS "gst [decimal]"
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.order_date BETWEEN :date_from AND :date_to AND o.status <> 'cancelled'
            GROUP BY o.order_date ORDER BY o.order_date""",
            }
        ],
    },
    {
        "name": "Orders by Region",
        "description": "Every order placed by customers of one region, with its status and total.",
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
            SELECT o.id AS order_id, o.order_date, o.ordered_at, c.name AS customer, c.city,
                   o.status, o.channel,
                   printf('%.2f', (sum(l.net_cents + l.gst_cents)) / 100.0) AS "total [decimal]", o.note
            FROM orders o JOIN customers c ON c.id = o.customer_id JOIN order_lines l ON l.order_id = o.id
            WHERE c.region = :region AND (:status IS NULL OR o.status = :status)
              AND o.order_date BETWEEN :date_from AND :date_to
            GROUP BY o.id ORDER BY o.ordered_at""",
            }
        ],
    },
    {
        "name": "Customer Search",
        "description": "Customers whose name contains the given text, with their order count.",
        "formats": ["csv", "json", "xlsx"],
        "category": "Customers",
        "fields": [
            {"name": "name", "label": "Name contains", "type": "string", "required": True, "field_order": 1},
            {
                "name": "min_orders",
                "label": "At least this many orders",
                "type": "integer",
                "default": "0",
                "field_order": 2,
            },
        ],
        "queries": [
            {
                "sheet_name": "Customers",
                "sql": """
            SELECT c.id, c.name, c.email, c.region, c.city, c.created_at, count(o.id) AS orders
            FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
            WHERE c.name LIKE '%' || :name || '%'
            GROUP BY c.id HAVING count(o.id) >= :min_orders ORDER BY c.name, c.id""",
            }
        ],
    },
    {
        "name": "Order Lines",
        "description": "Every order line with its product, prices and GST: the big one (about 130,000 rows).",
        "cache_seconds": 300,
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
                   printf('%.2f', (l.net_cents) / 100.0) AS "net [decimal]",
                   printf('%.2f', (l.gst_cents) / 100.0) AS "gst [decimal]",
                   p.gst_free, o.status
            FROM (SELECT l.id FROM order_lines l JOIN orders o ON o.id = l.order_id
                  WHERE o.order_date BETWEEN :date_from AND :date_to
                  ORDER BY l.id LIMIT coalesce(:row_limit, -1)) AS chosen
            JOIN order_lines l ON l.id = chosen.id
            JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
            ORDER BY l.id""",
            }
        ],
    },
    {
        "name": "Product Catalogue",
        "description": "Products with their category, price and GST treatment.",
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
            WHERE (:category IS NULL OR category = :category)
              AND (:gst_free IS NULL OR gst_free = :gst_free)
              AND (:min_price IS NULL OR unit_price_cents >= :min_price * 100)
            ORDER BY sku""",
            }
        ],
    },
    {
        "name": "Sales Summary",
        "description": "Net sales and GST by product category and by customer region: two sheets.",
        "category": "Sales",
        "fields": _DATE_RANGE,
        "time_range": {"start_field": "date_from", "end_field": "date_to"},
        "queries": [
            {
                "sheet_name": "By category",
                "sql": """
            SELECT p.category, count(*) AS lines, sum(l.quantity) AS units,
                   printf('%.2f', (sum(l.net_cents)) / 100.0) AS "net_sales [decimal]",
                   printf('%.2f', (sum(l.gst_cents)) / 100.0) AS "gst [decimal]"
            FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
            WHERE o.order_date BETWEEN :date_from AND :date_to AND o.status <> 'cancelled'
            GROUP BY p.category ORDER BY p.category""",
            },
            {
                "sheet_name": "By region",
                "sql": """
            SELECT c.region, count(DISTINCT o.id) AS orders,
                   printf('%.2f', (sum(l.net_cents)) / 100.0) AS "net_sales [decimal]",
                   printf('%.2f', (sum(l.gst_cents)) / 100.0) AS "gst [decimal]"
            FROM orders o JOIN customers c ON c.id = o.customer_id JOIN order_lines l ON l.order_id = o.id
            WHERE o.order_date BETWEEN :date_from AND :date_to AND o.status <> 'cancelled'
            GROUP BY c.region ORDER BY c.region""",
            },
        ],
    },
    {
        "name": "Invoice",
        "description": "A tax invoice for one order: a template report (its page at /template/invoice/).",
        "category": "Sales",
        "type": "template",
        "formats": ["html", "pdf", "xlsx", "csv", "json"],
        "fields": [{"name": "order_id", "label": "Order", "type": "integer", "required": True, "default": "1"}],
        "queries": [
            {
                "sheet_name": "Order",
                "sql": """
            SELECT o.id AS order_id, o.order_date, o.status, c.name AS customer, c.email, c.city, c.region
            FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = :order_id""",
            },
            {
                "sheet_name": "Lines",
                "sql": """
            SELECT p.sku, p.name AS product, l.quantity, p.unit_price,
                   printf('%.2f', l.net_cents / 100.0) AS "net [decimal]",
                   printf('%.2f', l.gst_cents / 100.0) AS "gst [decimal]"
            FROM order_lines l JOIN products p ON p.id = l.product_id
            WHERE l.order_id = :order_id ORDER BY l.id""",
            },
        ],
        "template": INVOICE_TEMPLATE,
    },
]
