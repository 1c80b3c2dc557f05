"""Data models over the API (seed 001's `/api/datamodels`), against the session's real PostgreSQL server,
through the front door under moto with IAM enforced."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql
from reportserver.domain.reports import parse_report

from infra.local.postgres import Connection
from tests.integration.conftest import Stack


def _name(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """An admin token of its own per test (its own request bucket)."""
    return stack.with_own_admin()


@dataclasses.dataclass(frozen=True)
class Login:
    user: str
    password: str


@pytest.fixture(scope="module")
def login(postgres: Connection) -> Iterator[Login]:
    """A role of its own with a password no other test uses, that may read the shop's tables."""
    role, password = f"dm_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        connection.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        connection.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
    yield Login(role, password)


def _provider(postgres: Connection, login: Login, **changes: Any) -> dict[str, Any]:
    return {
        "providerType": "postgresql",
        "serverName": postgres.host,
        "port": postgres.port,
        "database": postgres.database,
        "userName": login.user,
        "password": login.password,
        "sslMode": "disable",
    } | changes


def _create(stack: Stack, provider: dict[str, Any], **fields: Any) -> dict[str, Any]:
    status, answer = stack.send("POST", "/api/datamodels/", {"name": _name(), "providerModel": provider} | fields)
    assert status == 201, answer
    return dict(answer["dataModel"])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The model and its secret


def test_a_postgresql_model_keeps_its_password_only_in_secrets_manager(
    stack: Stack, postgres: Connection, login: Login, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a data model made with a password
    capfd.readouterr()
    made = _create(stack, _provider(postgres, login), description="the shop", commandTimeout=10)
    model = f"/api/datamodels/{made['id']}"
    # When it is used every way the API has
    answers = [json.dumps(made)]
    for method, path in [
        ("GET", "/api/datamodels/"),
        ("GET", model),
        ("GET", f"{model}/connection"),
        ("POST", f"{model}/test"),
        ("GET", f"{model}/tables"),
        ("GET", f"{model}/tables/orders/columns"),
        ("GET", f"{model}/datamembers"),
    ]:
        status, answer = stack.send(method, path)
        assert status == 200, (path, answer)
        answers.append(json.dumps(answer))
    # Then the password is in no answer, no log line and no item of any table (the audit log's too), only
    # in its secret
    logged = "".join(capfd.readouterr())
    stack.audit.deliver()
    tables = [name for key, name in stack.names.items() if key.endswith("Table")]
    assert {"CatalogTable", "AuditTable", "TokensTable", "IdentityTable"} <= set(stack.names)
    scans = boto3.client("dynamodb").get_paginator("scan")
    items = [item for table in tables for page in scans.paginate(TableName=table) for item in page["Items"]]
    assert any(made["name"] in json.dumps(item) for item in items)  # the scan sees the model's own item
    assert login.password not in "".join(answers) + logged + json.dumps(items, default=str)
    connection = json.loads(answers[3])["providerModel"]
    assert connection == {
        "providerType": "postgresql",
        "serverName": postgres.host,
        "port": postgres.port,
        "database": postgres.database,
        "userName": login.user,
        "sslMode": "disable",
        "hasPassword": True,
    }
    stored = stack.catalog.data_source(str(made["id"]))
    assert stored is not None and stored.password_secret.startswith("arn:aws:secretsmanager:")
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=stored.password_secret)
    assert secret["SecretString"] == login.password
    assert ":secret:reportserver/" in stored.password_secret and "/datasource/" in stored.password_secret


def test_a_model_answers_as_seed_001_shows_it(stack: Stack, postgres: Connection, login: Login) -> None:
    made = _create(stack, _provider(postgres, login), description="d", commandTimeout=12)
    assert made["name"].startswith("m-") and made["description"] == "d" and made["commandTimeout"] == 12
    assert made["providerType"] == "postgresql" and made["optimisticLock"] == 1 and isinstance(made["id"], int)
    listed = stack.send("GET", "/api/datamodels")[1]["dataModels"]
    assert {**{k: v for k, v in made.items() if k != "providerModel"}} in listed
    tested = stack.send("POST", f"/api/datamodels/{made['id']}/test")[1]
    assert tested["ok"] is True and tested["elapsedMs"] >= 0


def test_a_new_password_is_a_new_secret_and_the_old_one_is_deleted(
    stack: Stack, postgres: Connection, login: Login
) -> None:
    made = _create(stack, _provider(postgres, login))
    old = stack.catalog.data_source(str(made["id"]))
    assert old is not None
    body = {"optimisticLock": 1, "providerModel": _provider(postgres, login)}
    status, changed = stack.send("PUT", f"/api/datamodels/{made['id']}", body)
    assert status == 200, changed
    new = stack.catalog.data_source(str(made["id"]))
    assert new is not None and new.password_secret != old.password_secret and new.version == 2
    client = boto3.client("secretsmanager")
    assert client.get_secret_value(SecretId=new.password_secret)["SecretString"] == login.password
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=old.password_secret)


def test_a_password_left_out_is_kept_only_while_the_server_and_login_stay(
    stack: Stack, postgres: Connection, login: Login
) -> None:
    made = _create(stack, _provider(postgres, login))
    model = f"/api/datamodels/{made['id']}"
    same = {k: v for k, v in _provider(postgres, login).items() if k != "password"}
    status, kept = stack.send("PUT", model, {"optimisticLock": 1, "providerModel": same, "commandTimeout": 7})
    assert status == 200, kept
    assert kept["dataModel"]["commandTimeout"] == 7 and stack.send("POST", f"{model}/test")[0] == 200
    # Pointing the stored password at another server would hand it to whoever runs that server
    elsewhere = same | {"serverName": "collector.example.com"}
    status, refused = stack.send("PUT", model, {"optimisticLock": 2, "providerModel": elsewhere})
    assert status == 400 and refused["parameter"] == "providerModel.password", refused
    status, refused = stack.send("PUT", model, {"optimisticLock": 2, "providerModel": same | {"userName": "postgres"}})
    assert status == 400 and "password" in refused["message"]
    # Nor over a weaker connection: a TLS mode lowered needs the password again (raised, it does not)
    stronger = same | {"sslMode": "require"}
    assert stack.send("PUT", model, {"optimisticLock": 2, "providerModel": stronger})[0] == 200
    status, refused = stack.send("PUT", model, {"optimisticLock": 3, "providerModel": same | {"sslMode": "prefer"}})
    assert status == 400 and "weakened" in refused["message"], refused
    assert stack.send("GET", model)[1]["dataModel"]["providerModel"]["serverName"] == postgres.host


def test_a_stale_optimistic_lock_is_409_and_changes_nothing(stack: Stack, postgres: Connection, login: Login) -> None:
    made = _create(stack, _provider(postgres, login))
    model = f"/api/datamodels/{made['id']}"
    assert stack.send("PUT", f"{model}/rename", {"optimisticLock": 1, "name": _name("renamed")})[0] == 200
    before = stack.catalog.data_source(str(made["id"]))
    secrets_before = _secret_names()
    # When a change made from the first read arrives, with a new password
    stale = {"optimisticLock": 1, "providerModel": _provider(postgres, login, password="another"), "name": "x"}
    status, answer = stack.send("PUT", model, stale)
    # Then it is refused and nothing changed: not the model, not its secret, and no secret is left behind
    assert status == 409, answer
    assert "optimisticLock" in answer["message"]
    assert stack.catalog.data_source(str(made["id"])) == before
    assert _secret_names() == secrets_before
    assert stack.send("PUT", f"{model}/rename", {"optimisticLock": 1, "name": "y"})[0] == 409
    assert stack.send("DELETE", model, {"optimisticLock": 1})[0] == 409
    assert stack.send("POST", f"{model}/test")[0] == 200


def _secret_names() -> list[str]:
    client = boto3.client("secretsmanager")
    return sorted(s["Name"] for page in client.get_paginator("list_secrets").paginate() for s in page["SecretList"])


def test_a_model_used_by_a_report_cannot_be_deleted(stack: Stack, postgres: Connection, login: Login) -> None:
    demo = stack.report("gst-balance").data_source_id
    status, answer = stack.send("DELETE", f"/api/datamodels/{demo}")
    assert status == 409 and "gst-balance" in answer["message"], answer
    # A model no report uses goes, with its secret
    made = _create(stack, _provider(postgres, login))
    stored = stack.catalog.data_source(str(made["id"]))
    assert stored is not None
    assert stack.send("DELETE", f"/api/datamodels/{made['id']}", {"optimisticLock": 1})[0] == 200
    assert stack.send("GET", f"/api/datamodels/{made['id']}")[0] == 404
    assert stored.password_secret not in [s for s in _secret_names()]
    client = boto3.client("secretsmanager")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=stored.password_secret)


# Bad input


@pytest.mark.parametrize(
    ("provider", "parameter", "words"),
    [
        ({"providerType": "db2"}, "providerModel.providerType", ["'db2' is not supported", "sqLite, postgresql"]),
        ({"providerType": "mongo"}, "providerModel.providerType", ["'mongo' is unknown", "sqLite, postgresql"]),
        ({"providerType": "postgresql", "connectionString": "x"}, "providerModel", ["connectionString"]),
        ({"providerType": "sqLite", "database": "/x.db", "password": "p"}, "providerModel.password", ["sqLite"]),
        ({"providerType": "postgresql", "database": "d", "userName": "u", "password": "p"}, "providerModel.serverName",
         ["serverName is required"]),
        ({"providerType": "postgresql", "serverName": "h/x", "database": "d", "userName": "u", "password": "p"},
         "providerModel.serverName", ["host name"]),
        ({"providerType": "postgresql", "serverName": "h", "database": "d", "userName": "u"}, "providerModel.password",
         ["Give the password"]),
        ({"providerType": "postgresql", "serverName": "h", "database": "d", "userName": "u", "password": "p",
          "sslMode": "sometimes"}, "providerModel.sslMode", ["require"]),
    ],
)  # fmt: skip
def test_a_bad_provider_is_400_naming_what_is_wrong(
    stack: Stack, provider: dict[str, Any], parameter: str, words: list[str]
) -> None:
    status, answer = stack.send("POST", "/api/datamodels", {"name": _name(), "providerModel": provider})
    assert status == 400, answer
    assert answer["parameter"] == parameter, answer
    assert all(w in answer["message"] for w in words), answer


def test_a_connection_without_tls_to_a_remote_host_is_refused(stack: Stack, postgres: Connection, login: Login) -> None:
    provider = _provider(postgres, login, serverName="db.example.com", sslMode="prefer")
    status, answer = stack.send("POST", "/api/datamodels", {"name": _name(), "providerModel": provider})
    assert status == 400 and "in clear" in answer["message"], answer


def test_a_model_name_is_unique_in_any_letter_case(stack: Stack, postgres: Connection, login: Login) -> None:
    made = _create(stack, _provider(postgres, login))
    again = {"name": made["name"].upper(), "providerModel": _provider(postgres, login)}
    status, answer = stack.send("POST", "/api/datamodels", again)
    assert status == 409 and "already exists" in answer["message"], answer


@pytest.mark.parametrize("model_id", ["0", "-1", "abc", "1e3", "99999999", "\uff11"])
def test_an_unknown_or_malformed_model_id_is_404(stack: Stack, model_id: str) -> None:
    assert stack.send("GET", f"/api/datamodels/{model_id}")[0] == 404


# A source that fails: always a 502 within the model's commandTimeout, never a hang, never a secret


@pytest.mark.parametrize(
    "case",
    ["wrong password", "unknown user", "closed port", "unknown host", "silent host", "unknown database"],
)
def test_a_failing_source_answers_502_within_its_command_timeout_without_the_secret(
    stack: Stack, postgres: Connection, login: Login, case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = f"never-shown-{uuid.uuid4().hex}"
    provider = {
        "wrong password": _provider(postgres, login, password=secret),
        "unknown user": _provider(postgres, login, userName="nobody_here", password=secret),
        "closed port": _provider(postgres, login, port=_closed_port(), password=secret),
        "unknown host": _provider(postgres, login, serverName="no-such-host.invalid", sslMode="require",
                                  password=secret),
        # TEST-NET-1 (RFC 5737): packets go nowhere, nothing answers
        "silent host": _provider(postgres, login, serverName="192.0.2.1", sslMode="require", password=secret),
        "unknown database": _provider(postgres, login, database="no_such_db", password=secret),
    }[case]  # fmt: skip
    made = _create(stack, provider, commandTimeout=3)
    capfd.readouterr()
    started = time.monotonic()
    status, answer = stack.send("POST", f"/api/datamodels/{made['id']}/test")
    took = time.monotonic() - started
    logged = "".join(capfd.readouterr())
    assert status == 502, answer
    assert took < 3 + 1.5, took
    assert secret not in json.dumps(answer) + logged
    assert answer["message"] and "Traceback" not in answer["message"]


def test_a_report_query_over_the_command_timeout_is_cancelled_on_the_server(
    stack: Stack, postgres: Connection, login: Login
) -> None:
    made = _create(stack, _provider(postgres, login), commandTimeout=2)
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    report = stack.catalog.create_report(
        parse_report(
            {
                "name": f"Slow {marker}",
                "data_source_id": str(made["id"]),
                "queries": [{"sql": f"SELECT pg_sleep(30) AS {marker}"}],
            }
        )
    )
    started = time.monotonic()
    status = stack.get(f"/api/call/{report.slug}/").status
    assert status == 502 and time.monotonic() - started < 6
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        running = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s", (f"%{marker}%",)
        ).fetchone()
    assert running == (0,)


# The database behind it


def test_tables_columns_and_procedures_are_read_from_the_database(
    stack: Stack, postgres: Connection, login: Login
) -> None:
    function = f"shop_double_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE FUNCTION public.{}(amount numeric, times integer) RETURNS numeric "
                    "LANGUAGE sql IMMUTABLE AS 'SELECT amount * times'").format(sql.Identifier(function))
        )  # fmt: skip
    made = _create(stack, _provider(postgres, login))
    model = f"/api/datamodels/{made['id']}"
    tables = stack.send("GET", f"{model}/tables")[1]["tables"]
    assert {"name": "orders", "schema": "public", "type": "table"} in tables
    columns = stack.send("GET", f"{model}/tables/orders/columns")[1]["columns"]
    assert columns[0] == {"name": "id", "dataType": "integer", "nullable": False, "mode": ""}
    assert stack.send("GET", f"{model}/tables/public.orders/columns")[1]["columns"] == columns
    assert stack.send("GET", f"{model}/tables/no_such_table/columns")[0] == 404
    procedures = stack.send("GET", f"{model}/procedures")[1]["procedures"]
    assert {"name": function, "schema": "public", "type": "function"} in procedures
    parameters = stack.send("GET", f"{model}/procedures/{function}/columns")[1]["columns"]
    assert [(p["name"], p["dataType"], p["mode"]) for p in parameters] == [
        ("amount", "numeric", "IN"),
        ("times", "integer", "IN"),
    ]
    assert stack.send("GET", f"{model}/procedures/no_such_function/columns")[0] == 404


def test_a_sqlite_model_has_tables_and_no_procedures(stack: Stack) -> None:
    demo = stack.report("gst-balance").data_source_id
    tables = stack.send("GET", f"/api/datamodels/{demo}/tables")[1]["tables"]
    assert {"name": "orders", "schema": "main", "type": "table"} in tables
    columns = stack.send("GET", f"/api/datamodels/{demo}/tables/orders/columns")[1]["columns"]
    assert [c["name"] for c in columns][:2] == ["id", "customer_id"]
    assert stack.send("GET", f"/api/datamodels/{demo}/procedures")[1]["procedures"] == []
    assert stack.send("GET", f"/api/datamodels/{demo}/procedures/x/columns")[0] == 404


# Custom SQL queries


def test_a_custom_query_is_checked_kept_and_listed(stack: Stack, postgres: Connection, login: Login) -> None:
    made = _create(stack, _provider(postgres, login))
    model = f"/api/datamodels/{made['id']}"
    body = {
        "optimisticLock": 1,
        "name": "big_orders",
        "query": "SELECT id, customer_id FROM orders WHERE id > :minimum::integer",
        "parameters": [{"name": "minimum", "type": "integer", "value": "100", "isNull": False}],
    }
    status, saved = stack.send("POST", f"{model}/customsqlquery", body)
    assert status == 201, saved
    assert saved["optimisticLock"] == 2 and saved["query"]["name"] == "big_orders"
    assert stack.send("GET", f"{model}/customsqlquery/big_orders")[1]["query"] == saved["query"]
    assert stack.send("GET", f"{model}/queries")[1]["queries"] == [saved["query"]]
    members = stack.send("GET", f"{model}/datamembers")[1]["dataMembers"]
    assert {"name": "big_orders", "type": "query"} in members and {"name": "orders", "type": "table"} in members
    # Renamed by a PUT on its old name
    renamed = body | {"optimisticLock": 2, "name": "large_orders"}
    status, changed = stack.send("PUT", f"{model}/customsqlquery/big_orders", renamed)
    assert status == 200, changed
    assert [q["name"] for q in stack.send("GET", f"{model}/queries")[1]["queries"]] == ["large_orders"]
    assert stack.send("GET", f"{model}/customsqlquery/big_orders")[0] == 404
    assert stack.send("POST", f"{model}/customsqlquery", body | {"optimisticLock": 3, "name": "large_orders"})[0] == 409


@pytest.mark.parametrize(
    ("query", "parameters", "words"),
    [
        ("DELETE FROM orders", [], ["must be a query", "DELETE"]),
        ("INSERT INTO orders (id) VALUES (1)", [], ["INSERT"]),
        ("UPDATE orders SET total = 0", [], ["UPDATE"]),
        ("DROP TABLE orders", [], ["DROP"]),
        ("ALTER TABLE orders ADD x int", [], ["ALTER"]),
        ("CREATE TABLE x (a int)", [], ["CREATE"]),
        ("COPY orders TO PROGRAM 'rm -rf /'", [], ["COPY"]),
        ("SELECT * INTO stolen FROM orders", [], ["INTO"]),
        ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", [], ["DELETE"]),
        ("SELECT 1; DROP TABLE orders", [], ["exactly one statement"]),
        ("SELECT 1; SELECT 2", [], ["exactly one statement"]),
        ("SELECT nextval('s')", [], ["nextval"]),
        ("SELECT * FROM orders FOR UPDATE", [], ["locks rows"]),
        ("SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')", [], ["query_to_xml"]),
        ("SELECT * FROM pg_ls_logdir()", [], ["pg_ls_logdir"]),
        ("SELECT pg_logical_emit_message(true, 'x', 'y')", [], ["pg_logical_emit_message"]),
        ("SELECT lo_get(1)", [], ["lo_get"]),
        ("SELECT * FROM ts_stat('SELECT to_tsvector(set_config(''a.b'', ''1'', false))')", [], ["ts_stat"]),
        ("DO $$ BEGIN END $$", [], ["DO"]),
        ("SELECT * FROM ordrs", [], ["does not prepare", 'relation "ordrs" does not exist']),
        ("SELECT * FROM orders WHERE id = :id", [], [":id", "not a declared"]),
        ("SELECT 1", [{"name": "unused"}], ["unused", "never uses"]),
        ("SELEC 1", [], ["does not parse"]),
        ("SELECT 'unterminated", [], ["cannot be read"]),
    ],
)
def test_a_custom_query_that_is_not_one_read_statement_is_400(
    stack: Stack, postgres: Connection, login: Login, query: str, parameters: list[dict[str, Any]], words: list[str]
) -> None:
    made = _create(stack, _provider(postgres, login))
    body = {"optimisticLock": 1, "name": "q", "query": query, "parameters": parameters}
    status, answer = stack.send("POST", f"/api/datamodels/{made['id']}/customsqlquery", body)
    assert status == 400, answer
    assert all(w in answer["message"] for w in words), answer
    assert stack.send("GET", f"/api/datamodels/{made['id']}")[1]["dataModel"]["optimisticLock"] == 1


# Who may


def test_data_model_scopes_decide_who_reads_and_changes_which_model(
    stack: Stack, postgres: Connection, login: Login
) -> None:
    first, second = _create(stack, _provider(postgres, login)), _create(stack, _provider(postgres, login))
    status, group = stack.send("POST", "/api/usergroups", {"name": _name("g")})
    assert status == 201
    grants = [{"scope": "dataModel", "entityId": first["id"], "accessMode": 2}]
    body = {"optimisticLock": group["group"]["optimisticLock"], "permissions": grants}
    assert stack.send("POST", f"/api/usergroups/{group['group']['id']}/permissions", body)[0] == 200
    user = stack.new_user(groups=[group["group"]["id"]])
    bearer = stack.bearer_of(user["userName"])
    # Reads the one model it may, and sees only it in the list
    assert stack.send("GET", f"/api/datamodels/{first['id']}", auth=bearer)[0] == 200
    assert stack.send("GET", f"/api/datamodels/{second['id']}", auth=bearer)[0] == 403
    listed = stack.send("GET", "/api/datamodels", auth=bearer)[1]["dataModels"]
    assert [m["id"] for m in listed] == [first["id"]]
    # Read is not modify, delete or create
    rename = {"optimisticLock": 1, "name": _name()}
    assert stack.send("PUT", f"/api/datamodels/{first['id']}/rename", rename, auth=bearer)[0] == 403
    assert stack.send("DELETE", f"/api/datamodels/{first['id']}", auth=bearer)[0] == 403
    new = {"name": _name(), "providerModel": _provider(postgres, login)}
    status, answer = stack.send("POST", "/api/datamodels", new, auth=bearer)
    assert status == 403 and "allDataModels" in answer["message"], answer
