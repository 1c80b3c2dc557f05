"""Handlers in-process under moto: the template's resources, the demo catalog, tokens of every kind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto import mock_aws
from reportserver.domain.reports import Report
from reportserver.store import aws
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import UsagePlanKeys

from infra.demo.seed import seed_demo
from infra.local import iam
from infra.local.frontdoor import HttpResponse, LocalApi
from infra.local.provision import provision
from infra.local.template import load_template
from tests.bad_inputs import prepare_tokens

TEMPLATE = load_template()
os.environ.update(TEMPLATE.environment())  # before any handler module is imported, as at cold start
# The test database is a tenth of the demo; a lower cap keeps its Order Lines report over it.
os.environ["CALL_MAX_ROWS"] = "10000"
# The worker empties its scratch folder before each export: one of this run's own, as a container's /tmp.
os.environ["EXPORT_SCRATCH_DIR"] = tempfile.mkdtemp(prefix="reportserver-scratch-")


@dataclass
class Stack:
    names: dict[str, str]
    tokens: DynamoTokenStore
    catalog: DynamoCatalog
    reports: list[Report]
    headers: dict[str, str]
    api: LocalApi
    usage: UsagePlanKeys

    def get(self, path: str, auth: str | None = "admin") -> HttpResponse:
        header = self.headers.get(auth, auth) if auth else None
        headers = [("Authorization", header)] if header else []
        return self.api.handle("GET", path, headers, b"")

    def report(self, slug: str) -> Report:
        return next(r for r in self.reports if r.slug == slug)


@pytest.fixture(scope="session")
def stack(demo_database: Path) -> Iterator[Stack]:
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
            tokens = DynamoTokenStore(names["TokensTable"])
            usage = UsagePlanKeys(names["TokenUsagePlan"])
            api = LocalApi(TEMPLATE, identities.functions)
            yield Stack(names, tokens, catalog, reports, prepare_tokens(tokens, usage, "test"), api, usage)
        finally:
            iam.relax()
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    aws.reset()
