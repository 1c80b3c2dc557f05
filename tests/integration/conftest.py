"""Handlers in-process under moto: the template's resources, the demo catalog, tokens of every kind."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from moto import mock_aws
from reportserver.domain.access import Grant
from reportserver.domain.reports import Report
from reportserver.domain.tokens import basic_header, issue_token
from reportserver.http import audit
from reportserver.store import aws
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import UsagePlanKeys

from infra.demo.seed import seed_demo, seed_demo_postgres, seed_groups
from infra.local import iam
from infra.local.audit_logs import AuditLogs
from infra.local.frontdoor import HttpResponse, LocalApi
from infra.local.postgres import Connection
from infra.local.provision import provision
from infra.local.template import load_template
from tests.bad_inputs import prepare_tokens

TEMPLATE = load_template()
os.environ.update(TEMPLATE.environment())  # before any handler module is imported, as at cold start
# The test database is a tenth of the demo; a lower cap keeps its Order Lines report over it.
os.environ["CALL_MAX_ROWS"] = "10000"
# As on the local stack: an admin may add a SQLite file as a data model (never in AWS).
os.environ["SQLITE_DATA_MODELS"] = "on"
# The worker empties its scratch folder before each export: one of this run's own, as a container's /tmp.
os.environ["EXPORT_SCRATCH_DIR"] = tempfile.mkdtemp(prefix="reportserver-scratch-")
# Data models' snapshots: written by the refresh function, copied by those that read reports (their /tmp).
os.environ["REFRESH_SCRATCH_DIR"] = tempfile.mkdtemp(prefix="reportserver-refreshes-")
os.environ["SNAPSHOT_DIR"] = tempfile.mkdtemp(prefix="reportserver-snapshots-")


USER_PASSWORD = "correct horse battery staple"


@dataclass
class Stack:
    names: dict[str, str]
    tokens: DynamoTokenStore
    catalog: DynamoCatalog
    reports: list[Report]
    headers: dict[str, str]
    api: LocalApi
    usage: UsagePlanKeys
    audit: AuditLogs

    def with_own_admin(self, prefix: str = "admin") -> Stack:
        """This stack with an admin token of its own as "admin": its own usage-plan bucket (20 requests a
        second, 40 at once), so that one test's requests never throttle the next test's (429)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        _, secret = issue_token(
            self.tokens, self.usage, name=name, groups=["*"], permissions=["admin"],
            expires_at=now + timedelta(days=1), created_by="tests", now=now,
        )  # fmt: skip
        return dataclasses.replace(self, headers={**self.headers, "admin": basic_header(name, secret)})

    def get(self, path: str, auth: str | None = "admin") -> HttpResponse:
        header = self.headers.get(auth, auth) if auth else None
        headers = [("Authorization", header)] if header else []
        return self.api.handle("GET", path, headers, b"")

    def report(self, slug: str) -> Report:
        return next(r for r in self.reports if r.slug == slug)

    def send(self, method: str, path: str, body: object = None, auth: str | None = "admin") -> tuple[int, Any]:
        """A request with a JSON body (None: none); its status and its JSON answer."""
        header = self.headers.get(auth, auth) if auth else None
        headers = [("Authorization", header)] if header else []
        payload = b"" if body is None else json.dumps(body).encode()
        if payload:
            headers.append(("Content-Type", "application/json"))
        response = self.api.handle(method, path, headers, payload)
        return response.status, json.loads(response.body) if response.body else None

    def login(self, user_name: str, password: str, source_ip: str = "198.51.100.7") -> HttpResponse:
        form = urlencode({"grant_type": "password", "username": user_name, "password": password}).encode()
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        return self.api.handle("POST", "/oauth/token", headers, form, source_ip)

    def new_user(self, groups: list[int] | None = None, password: str = USER_PASSWORD, **fields: Any) -> dict[str, Any]:
        """A user made by the admin token (a fresh name each time); its view."""
        body = {"userName": f"user-{uuid.uuid4().hex[:10]}", "password": password, "groupsId": groups or []}
        status, answer = self.send("POST", "/api/users/", body | fields)
        assert status == 201, answer
        return dict(answer["user"])

    def nonce(self, body: dict[str, Any] | None = None, auth: str = "admin") -> str:
        status, answer = self.send("POST", "/api/v1/nonce-tokens/", body or {}, auth=auth)
        assert status == 201, answer
        return str(answer["nonce"])

    def view(self, path: str, cookie: str | None = None) -> HttpResponse:
        """A report view request as a browser in an iframe makes it: no Authorization, perhaps a cookie."""
        return self.api.handle("GET", path, [("Cookie", f"rs_view={cookie}")] if cookie else [], b"")

    def open_view(self, report: str, body: dict[str, Any] | None = None, auth: str = "admin") -> str:
        """A nonce for the report, used: the embed session's cookie value."""
        nonce = self.nonce({"report_id": report, **(body or {})}, auth=auth)
        first = self.view(f"/report/view/{report}/?nonce={nonce}")
        assert first.status == 302, first.body
        cookie = dict(first.headers)["Set-Cookie"]
        return cookie.split(";")[0].split("=", 1)[1]

    def operator_user(self, groups: list[int] | None = None) -> dict[str, Any]:
        """A user made as the operator, past the API (for tests of the functions the API needs)."""
        from reportserver.domain.access import Principal
        from reportserver.domain.identity import IdentityAdmin, UserCreate
        from reportserver.domain.passwords import PasswordHasher
        from reportserver.store.identity import DynamoIdentityStore

        admin = Principal("token", "operator", ("*",), (Grant("admin"),), "operator")
        store = DynamoIdentityStore(self.names["IdentityTable"])
        identity = IdentityAdmin(store, self.usage, PasswordHasher(n=2**14), lambda: datetime.now(UTC))
        body = UserCreate(userName=f"user-{uuid.uuid4().hex[:10]}", password=USER_PASSWORD, groupsId=groups or [])
        return identity.create_user(admin, body).view()

    def bearer_of(self, user_name: str, password: str = USER_PASSWORD) -> str:
        response = self.login(user_name, password)
        assert response.status == 200, response.body
        return "Bearer " + json.loads(response.body)["access_token"]


@pytest.fixture(scope="session")
def stack(demo_database: Path, postgres: Connection) -> Iterator[Stack]:
    """The template's resources under moto with IAM enforced: each handler runs as its function's role
    (translated from template.yaml by SAM), the set-up and the tests' own checks as the operator."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        aws.reset()
        identities = iam.local_iam(TEMPLATE)
        try:
            names = provision(TEMPLATE)
            catalog = DynamoCatalog(names["CatalogTable"])
            reports = seed_demo(catalog, demo_database)
            reports += seed_demo_postgres(catalog, postgres, os.environ["DATA_SOURCE_SECRET_PREFIX"])
            seed_groups(DynamoIdentityStore(names["IdentityTable"]))
            tokens = DynamoTokenStore(names["TokensTable"])
            usage = UsagePlanKeys(names["TokenUsagePlan"])
            api = LocalApi(TEMPLATE, identities.functions)
            audit_logs = AuditLogs(api, "AuditWriterFunction")
            audit_logs.install()
            yield Stack(names, tokens, catalog, reports, prepare_tokens(tokens, usage, "test"), api, usage, audit_logs)
        finally:
            audit.set_sink(None)
            iam.relax()
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    aws.reset()
