"""Start the local stack: moto, the template's resources, demo data, an admin token, the front door.

    python -m infra.local.stack [--port 3000] [--state-dir .local]

Prints a token and a curl line that works, and writes <state-dir>/stack.json for scripts.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 3000
LOCAL_REGION = "us-east-1"
ADMIN_TOKEN_NAME = "local-admin"  # noqa: S105 - a name, not a secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    """Free as the server will bind it: with SO_REUSEADDR, so the sockets of a stack stopped a moment
    ago (TIME_WAIT) do not count as in use (found: a restart within a minute said "in use")."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def configure_local_aws(endpoint: str) -> None:
    """Point every boto3 client of this process at the moto server, with throw-away credentials."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)), help="0 picks a free port"
    )
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameters, as sam deploy takes them (e.g. TokenRateLimit=50)",
    )
    parser.add_argument(
        "--discard-postgres", action="store_true", help="delete the demo PostgreSQL cluster on exit (tests)"
    )
    parser.add_argument(
        "--scheduler-tick", type=float, default=5.0, metavar="SECONDS", help="how often due schedules are fired"
    )
    parser.add_argument(
        "--scheduler-clock-ahead",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the local scheduler's clock this far ahead (tests: a schedule due within it fires at once)",
    )
    args = parser.parse_args(argv)
    from infra.local.template import load_template, parse_overrides  # noqa: PLC0415

    try:
        template = load_template(overrides=parse_overrides(args.parameter_overrides))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.port and not _port_is_free(args.host, args.port):
        print(
            f"Port {args.port} on {args.host} is in use: stop what holds it, or run with PORT=<another>",
            file=sys.stderr,
        )
        return 2

    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a dev-only dependency

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    moto_port = _free_port()
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # the AWS-managed policies SAM attaches to roles
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    configure_local_aws(f"http://127.0.0.1:{moto_port}")

    # Imported after the environment is set: handlers read their settings at import, as at cold start.
    from reportserver.domain.tokens import Permission, basic_header, issue_token  # noqa: PLC0415
    from reportserver.store.catalog import DynamoCatalog  # noqa: PLC0415
    from reportserver.store.identity import DynamoIdentityStore  # noqa: PLC0415
    from reportserver.store.tokens import DynamoTokenStore  # noqa: PLC0415
    from reportserver.store.usage import UsagePlanKeys  # noqa: PLC0415

    from infra.demo.database import build_demo_database, is_current  # noqa: PLC0415
    from infra.demo.postgres import load_demo_postgres  # noqa: PLC0415
    from infra.demo.seed import seed_demo, seed_demo_postgres, seed_groups  # noqa: PLC0415
    from infra.local import iam, mail, scheduler  # noqa: PLC0415
    from infra.local.audit_logs import AuditLogs  # noqa: PLC0415
    from infra.local.frontdoor import LocalApi, serve  # noqa: PLC0415
    from infra.local.postgres import LocalPostgres  # noqa: PLC0415
    from infra.local.provision import provision  # noqa: PLC0415
    from infra.local.queues import pollers, start_background, start_schedules  # noqa: PLC0415

    # From here on IAM is enforced: this process acts as the operator, each function as its own role.
    identities = iam.local_iam(template)
    names = provision(template)
    os.environ.update(template.environment())
    # Links in mails point to this front door (in AWS: the API's execute-api address).
    port = args.port or _free_port()
    os.environ["SERVICE_URL"] = f"http://{args.host}:{port}"
    # A SQLite file as a data model: the local stack only (a file on this machine; never in AWS).
    os.environ["SQLITE_DATA_MODELS"] = "on"

    state_dir: Path = args.state_dir.resolve()
    mail_dir = mail.capture(state_dir / mail.MAIL_FOLDER)  # every mail SES accepts, as an .eml file
    # Lambda gives each container its own /tmp; stacks on one machine must not empty each other's scratch.
    os.environ["EXPORT_SCRATCH_DIR"] = str(state_dir / "scratch")
    os.environ["REFRESH_SCRATCH_DIR"] = str(state_dir / "refreshes")
    os.environ["SNAPSHOT_DIR"] = str(state_dir / "snapshots")
    database = state_dir / "demo.sqlite"
    if not is_current(database):
        print("Building the demo database ...", flush=True)
        build_demo_database(database)
    catalog = DynamoCatalog(names["CatalogTable"])
    reports = seed_demo(catalog, database)
    # The same shop in a real PostgreSQL server: the second demo data source.
    postgres = LocalPostgres(state_dir / "postgres")
    print("Starting PostgreSQL ...", flush=True)
    postgres.start()
    atexit.register(postgres.remove if args.discard_postgres else postgres.stop)  # however the stack ends
    if load_demo_postgres(postgres.connection.conninfo(), database):
        print("Loaded the demo shop into PostgreSQL", flush=True)
    reports += seed_demo_postgres(catalog, postgres.connection, os.environ["DATA_SOURCE_SECRET_PREFIX"])
    seed_groups(DynamoIdentityStore(names["IdentityTable"]))

    now = datetime.now(UTC)
    _, secret = issue_token(
        DynamoTokenStore(names["TokensTable"]),
        UsagePlanKeys(names["TokenUsagePlan"]),
        name=ADMIN_TOKEN_NAME,
        groups=["*"],
        permissions=[Permission.ADMIN],
        expires_at=now + timedelta(days=30),
        created_by="local-stack",
        now=now,
        description="Created by the local stack at start",
    )
    api = LocalApi(template, identities.functions)
    audit_logs = AuditLogs(api, "AuditWriterFunction")  # CloudWatch Logs' subscription to the audit lines
    audit_logs.install()
    for function in template.functions():
        api.handler(function)  # import every handler now: a broken one fails the start, not a request
    server = serve(api, args.host, port)
    api_url = f"http://{args.host}:{server.server_address[1]}"
    authorization = basic_header(ADMIN_TOKEN_NAME, secret)
    state: dict[str, Any] = {
        "api_url": api_url,
        "token": {"name": ADMIN_TOKEN_NAME, "secret": secret, "authorization": authorization},
        "moto_url": os.environ["AWS_ENDPOINT_URL"],
        # The operator's credentials for scripts and the CLI (IAM is enforced: others are refused).
        "operator": identities.operator,
        "region": LOCAL_REGION,
        "resources": names,
        "parameters": template.values,
        "reports": [{"id": r.id, "slug": r.slug, "name": r.name} for r in reports],
        # The demo PostgreSQL server, as its superuser (the demo data source reads as a read-only role).
        "postgres": postgres.connection.as_dict(),
        # Every mail SES accepted, as <time>-<message id>.eml (and its envelope as .json): `make mail` lists them.
        "mail_dir": str(mail_dir),
        "pid": os.getpid(),
    }
    state_file = state_dir / "stack.json"
    state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    state_file.chmod(0o600)
    _print_banner(api_url, secret, authorization, reports, state_file)

    stopping = threading.Event()
    start_background(pollers(api, template), stopping)  # the export worker and dead-letter loops
    start_schedules(api, template, stopping)  # EventBridge schedules (the export sweeper)
    scheduler.start(stopping, args.scheduler_tick, args.scheduler_clock_ahead)  # EventBridge Scheduler's (jobs)
    audit_logs.run_forever()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        state_file.unlink(missing_ok=True)
        moto.stop()
    return 0


def _print_banner(api_url: str, secret: str, authorization: str, reports: list[Any], state_file: Path) -> None:
    lines = [
        "",
        f"reportserver local stack is up at {api_url}",
        "",
        f"  token name:    {ADMIN_TOKEN_NAME}   (groups: *, permission: admin; shown once)",
        f"  token secret:  {secret}",
        f"  header:        Authorization: {authorization}",
        "",
        "Try it:",
        f"  curl -s -H 'Authorization: {authorization}' {api_url}/api/call/gst-balance/",
        "The same shop in PostgreSQL (its server's login is in stack.json):",
        f"  curl -s -H 'Authorization: {authorization}' '{api_url}/api/call/pg-sales-by-month/?date_from=2025-07-01'",
        "",
        "Make a user (in the demo group 'finance', id 1) and log in as it (OAuth password grant):",
        f"  curl -s -H 'Authorization: {authorization}' -H 'Content-Type: application/json' {api_url}/api/users/ \\",
        """    -d '{"userName": "ada", "password": "a long passphrase", "groupsId": [1]}'""",
        f"  curl -s -d 'grant_type=password&username=ada&password=a long passphrase' {api_url}/oauth/token",
        f"  curl -s -H 'Authorization: Bearer <access_token>' {api_url}/api/reports/",
        "",
        "Demo reports: " + ", ".join(r.slug for r in reports),
        f"Scripts can read {state_file}. Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
