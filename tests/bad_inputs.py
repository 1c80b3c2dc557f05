"""The table of bad inputs, with the status and body each must get. Integration tests run it through the
handlers in-process; e2e tests run it over HTTP against the local stack."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reportserver.domain.tokens import ApiToken, TokenStore, UsageKeys, basic_header, hash_secret, issue_token

TEN_KB = "x" * 10_240


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class BadInput:
    id: str
    path: str
    auth: str | None  # a key of the prepared headers ("admin", "sales", ...), or a literal header, or None
    status: int
    message: str  # the body's message must contain this
    parameter: str | None = None


BAD_INPUTS = [
    BadInput("missing header", "/api/call/gst-balance/", None, 401, "Missing Authorization header"),
    BadInput("basic not base64", "/api/call/gst-balance/", "Basic %%%not-base64%%%", 401, "not valid base64"),
    BadInput(
        "basic without colon", "/api/call/gst-balance/", _basic("nocolon"), 401, "expected <token name>:<token secret>"
    ),
    BadInput(
        "basic empty name",
        "/api/call/gst-balance/",
        _basic(":rs_secret-------------------------------------"),
        401,
        "empty token name or secret",
    ),
    BadInput("basic empty secret", "/api/call/gst-balance/", _basic("local-admin:"), 401, "empty token name or secret"),
    BadInput(
        "unknown token",
        "/api/call/gst-balance/",
        _basic("ghost:rs_nothing------------------------------------"),
        401,
        "Invalid token",
    ),
    BadInput(
        "unknown bearer",
        "/api/call/gst-balance/",
        "Bearer rs_nothing------------------------------------",
        401,
        "Invalid token",
    ),
    # Of the checksummed form, but its checksum fails (a mistyped secret): refused before any lookup.
    BadInput("checksum-invalid bearer", "/api/call/gst-balance/", "Bearer rsk_" + "A" * 49, 401, "Invalid token"),
    BadInput("wrong secret", "/api/call/gst-balance/", "wrong_secret", 401, "Invalid token"),
    BadInput("unsupported scheme", "/api/call/gst-balance/", "Digest abc", 401, "Unsupported authorization scheme"),
    BadInput("expired token", "/api/call/gst-balance/", "expired", 401, "Token expired"),
    BadInput("deactivated token", "/api/call/gst-balance/", "deactivated", 401, "Token deactivated"),
    BadInput(
        "reserved api.user",
        "/api/call/gst-balance/",
        _basic("api.user:rs_x------------------------------------------"),
        401,
        "reserved for internal",
    ),
    BadInput(
        "reserved in capitals",
        "/api/call/gst-balance/",
        _basic("API.User:rs_x------------------------------------------"),
        401,
        "reserved for internal",
    ),
    # Found: a name past DynamoDB's 2,048-byte key limit crashed the authorizer (500).
    BadInput(
        "basic name too long",
        "/api/call/gst-balance/",
        _basic("a" * 2100 + ":rs_x------------------------------------------"),
        401,
        "Invalid token",
    ),
    BadInput(
        "basic name with a newline",
        "/api/call/gst-balance/",
        _basic("test-admin\n:rs_x------------------------------------------"),
        401,
        "Invalid token",
    ),
    BadInput(
        "token without the report's group",
        "/api/call/gst-balance/",
        "sales",
        403,
        "may not run this report (not in its groups, no read permission)",
    ),
    BadInput("unknown report id", "/api/call/999999/", "admin", 404, "Unknown report '999999'"),
    BadInput("unknown report slug", "/api/call/no-such-report/", "admin", 404, "Unknown report 'no-such-report'"),
    BadInput("unknown parameter", "/api/call/gst-balance/?bogus=1", "admin", 400, "Unknown parameter 'bogus'", "bogus"),
    BadInput(
        "bad integer",
        "/api/call/customer-search/?name=a&min_orders=abc",
        "admin",
        400,
        "'min_orders' must be a whole number",
        "min_orders",
    ),
    BadInput(
        "bad date",
        "/api/call/gst-balance/?date_from=2025-13-01",
        "admin",
        400,
        "'date_from' must be a date as YYYY-MM-DD",
        "date_from",
    ),
    # Found: Python's parsers took these (week dates, Arabic-Indic digits, underscores, huge exponents).
    BadInput(
        "week date",
        "/api/call/gst-balance/?date_from=2025-W01-1",
        "admin",
        400,
        "'date_from' must be a date as YYYY-MM-DD",
        "date_from",
    ),
    BadInput(
        "arabic-indic digits",
        "/api/call/customer-search/?name=a&min_orders=%D9%A1%D9%A2",
        "admin",
        400,
        "'min_orders' must be a whole number",
        "min_orders",
    ),
    BadInput(
        "number with underscores",
        "/api/call/product-catalogue/?min_price=1_000",
        "admin",
        400,
        "'min_price' must be a number",
        "min_price",
    ),
    BadInput(
        "number with a huge exponent",
        "/api/call/product-catalogue/?min_price=1e999999999",
        "admin",
        400,
        "'min_price' must be a number",
        "min_price",
    ),
    BadInput(
        "boolean word outside the list",
        "/api/call/product-catalogue/?gst_free=on",
        "admin",
        400,
        "'gst_free' must be true or false",
        "gst_free",
    ),
    BadInput(
        "bad choice",
        "/api/call/orders-by-region/?region=Atlantis",
        "admin",
        400,
        "'region' must be one of the field's choices",
        "region",
    ),
    BadInput(
        "bad boolean",
        "/api/call/product-catalogue/?gst_free=maybe",
        "admin",
        400,
        "'gst_free' must be true or false",
        "gst_free",
    ),
    BadInput(
        "missing required",
        "/api/call/sales-by-day/?date_from=2025-07-01",
        "admin",
        400,
        "Missing required parameter 'date_to'",
        "date_to",
    ),
    BadInput(
        "repeated parameter",
        "/api/call/gst-balance/?date_from=2025-01-01&date_from=2025-02-01",
        "admin",
        400,
        "'date_from' was given more than once",
        "date_from",
    ),
    BadInput("10 kB value", f"/api/call/customer-search/?name={TEN_KB}", "admin", 400, "'name' is too long", "name"),
    BadInput(
        "injection in an integer",
        "/api/call/customer-search/?name=a&min_orders=1;%20DROP%20TABLE%20orders",
        "admin",
        400,
        "'min_orders' must be a whole number",
        "min_orders",
    ),
    BadInput("dot-dot path", "/api/call/../", "admin", 404, "Unknown report '..'"),
    BadInput("encoded slash path", "/api/call/gst-balance%2F..%2Forders/", "admin", 404, "Unknown report"),
    BadInput("too large for a call", "/api/call/order-lines/", "admin", 413, "POST /api/exports/"),
    BadInput("unknown choices field", "/api/choices/999999/", "admin", 404, "Unknown report field"),
    BadInput("unknown definition", "/report/get/no-such-report", "admin", 404, "Unknown report"),
    BadInput("unknown route", "/api/nothing-here/", "admin", 404, "Not found"),
]

INJECTIONS = ["' OR 1=1 --", "1; DROP TABLE orders", "%' OR '1'='1", "Smith'); DELETE FROM customers; --"]


def new_token(store: TokenStore, usage: UsageKeys, name: str) -> str:
    """A token for every group, valid for a day: its secret (Basic: `basic_header(name, secret)`)."""
    now = datetime.now(UTC)
    _, secret = issue_token(
        store,
        usage,
        name=name,
        groups=["*"],
        permissions=[],
        expires_at=now + timedelta(days=1),
        created_by="tests",
        now=now,
    )
    return secret


def keyless_token(store: TokenStore, name: str, secret: str, token_id: str = "") -> str:
    """A valid token as stored before rate limits: no API key in the usage plan. Its Basic header."""
    now = datetime.now(UTC)
    store.create(
        ApiToken(
            name=name,
            secret_hash=hash_secret(secret),
            groups=["*"],
            expires_at=now + timedelta(days=1),
            created_at=now,
            created_by="tests",
            token_id=token_id,
        )
    )
    return basic_header(name, secret)


def prepare_tokens(store: TokenStore, usage: UsageKeys, prefix: str) -> dict[str, str]:
    """Tokens of every kind the table names, as Authorization headers keyed as it names them."""
    now = datetime.now(UTC)
    headers = {}
    # admin: every report and the admin permission; reader: every report, nothing more; sales: its group's.
    for kind, groups, permissions in (("admin", ["*"], ["admin"]), ("reader", ["*"], []), ("sales", ["sales"], [])):
        _, secret = issue_token(
            store,
            usage,
            name=f"{prefix}-{kind}",
            groups=groups,
            permissions=permissions,
            expires_at=now + timedelta(days=30),
            created_by="tests",
            now=now,
        )
        headers[kind] = basic_header(f"{prefix}-{kind}", secret)
        headers[f"{kind}_bearer"] = f"Bearer {secret}"
    for kind, expires, active in (
        ("expired", now - timedelta(seconds=1), True),
        ("deactivated", now + timedelta(days=1), False),
    ):
        secret = f"rs_known-{kind}".ljust(46, "-")  # each its own: a secret finds its token (Basic too)
        store.create(
            ApiToken(
                name=f"{prefix}-{kind}",
                secret_hash=hash_secret(secret),
                groups=["*"],
                expires_at=expires,
                active=active,
                created_at=now,
                created_by="tests",
            )
        )
        headers[kind] = basic_header(f"{prefix}-{kind}", secret)
    headers["wrong_secret"] = basic_header(f"{prefix}-admin", "rs_not_the_secret-----------------------------")
    return headers
