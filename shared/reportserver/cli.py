"""Command line for operators: create the first admin token (no token needed), list and delete tokens.

    python -m reportserver.cli token create --name NAME --groups '*' --permissions admin --days 90
    python -m reportserver.cli --local token create ...   # against the running local stack
    python -m reportserver.cli token list | delete|deactivate|activate --name NAME | add-keys | prune-keys

It talks to the TokensTable named by --table or TOKENS_TABLE, and adds each new token's API key to the
usage plan named by --usage-plan or TOKEN_USAGE_PLAN_ID (the stack's outputs TokensTableName and
TokenUsagePlanId), with the usual AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

from reportserver.domain.errors import DomainError
from reportserver.domain.tokens import USAGE_KEY_PREFIX, basic_header, issue_token, token_expiry
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import UsagePlanKeys


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reportserver.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", default=os.environ.get("TOKENS_TABLE"), help="TokensTable name")
    parser.add_argument(
        "--usage-plan",
        default=os.environ.get("TOKEN_USAGE_PLAN_ID"),
        help="TokenUsagePlan id: each token gets its own API key there (its rate and burst)",
    )
    parser.add_argument("--local", action="store_true", help="use the running local stack (see --stack-json)")
    parser.add_argument("--stack-json", default=".local/stack.json", help="the local stack's state file")
    commands = parser.add_subparsers(dest="area", required=True)
    token = commands.add_parser("token").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--groups", type=_csv, default=["*"], help="comma-separated; '*' for all")
    create.add_argument(
        "--permissions",
        type=_csv,
        default=[],
        help="comma-separated: admin, execute_subscription, refresh_data",
    )
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--days", type=int, choices=(30, 60, 90))
    expiry.add_argument("--expires-on", type=date.fromisoformat, help="YYYY-MM-DD, within a year")
    create.add_argument("--description", default="")
    create.add_argument("--created-by", default=os.environ.get("USER", "cli"))
    token.add_parser("list", help="list tokens (never their secrets)")
    delete = token.add_parser("delete", help="delete a token and its API key")
    delete.add_argument("--name", required=True)
    for action, what in (("deactivate", "refuse a token (401) until it is activated"), ("activate", "let it in again")):
        token.add_parser(action, help=what).add_argument("--name", required=True)
    token.add_parser("add-keys", help="give every token made before rate limits its API key (run once after upgrading)")
    prune = token.add_parser("prune-keys", help="list (--apply: delete) the plan's API keys that no token names")
    prune.add_argument("--apply", action="store_true", help="delete them (without it, only list them)")
    return parser


def _use_local_stack(stack_json: str) -> tuple[str, str]:
    path = Path(stack_json)
    if not path.is_file():
        raise DomainError(f"no running local stack: {path} does not exist (start one with `make run`)")
    state = json.loads(path.read_text(encoding="utf-8"))
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": state["moto_url"],
            # The local stack enforces IAM: the CLI acts as its operator, as an admin would in AWS.
            "AWS_ACCESS_KEY_ID": state["operator"]["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": state["operator"]["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": state["region"],
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    return str(state["resources"]["TokensTable"]), str(state["resources"]["TokenUsagePlan"])


ORPHAN_GRACE = timedelta(minutes=10)  # a key younger than this may belong to a token being issued


def add_missing_keys(store: DynamoTokenStore, usage: UsagePlanKeys) -> int:
    """Give each token whose API key is not in the usage plan (made before rate limits, or its key
    deleted) a key of its own, as `issue_token` does."""
    added = 0
    members = usage.member_ids()
    for token in store.list_tokens():
        if token.usage_key and token.usage_key_id in members:
            continue
        # A fresh value: an old token's id may hold characters an API key's value may not.
        keyed = msgspec.structs.replace(token, usage_key=USAGE_KEY_PREFIX + uuid.uuid4().hex)
        key_id = usage.add(keyed.name, keyed.owner_id, keyed.usage_key)
        if store.set_usage_key(token, keyed.usage_key, key_id):  # if it still has the key it was read with
            added += 1
        else:
            usage.remove(key_id)  # deleted, made again or given a key meanwhile: this key names nothing
    return added


def _delete(store: DynamoTokenStore, usage: UsagePlanKeys, name: str) -> int:
    found = store.find_by_name(name, fresh=True)
    if found is None:
        print(f"error: no token named {name!r}", file=sys.stderr)
        return 1
    # Only the token read: if the name was deleted and made again meanwhile, the new one stays.
    if not store.delete(name, found.secret_hash):
        print(f"error: token {name!r} changed while it was being deleted; nothing deleted", file=sys.stderr)
        return 1
    usage.remove(found.usage_key_id)  # after the token: a failure here leaves a key no token names
    print(f"deleted token {name!r}")
    return 0


def _set_active(store: DynamoTokenStore, name: str, *, active: bool) -> int:
    found = store.find_by_name(name, fresh=True)
    if found is None:
        print(f"error: no token named {name!r}", file=sys.stderr)
        return 1
    if not store.set_active(found, active):
        print(f"error: token {name!r} changed meanwhile; nothing changed", file=sys.stderr)
        return 1
    # Within the revocation delay (README) a deactivated token may still be let in by cached decisions.
    print(f"{'activated' if active else 'deactivated'} token {name!r}")
    return 0


def _prune(store: DynamoTokenStore, usage: UsagePlanKeys, now: datetime, *, apply: bool) -> int:
    tokens = store.list_tokens()
    orphans = usage.orphans({t.usage_key for t in tokens if t.usage_key}, now, ORPHAN_GRACE)
    if orphans and not tokens:
        # A plan with keys and a table without tokens: the wrong table, most likely. Refused.
        print("error: the tokens table has no tokens; is it this usage plan's table?", file=sys.stderr)
        return 1
    for key_id in orphans if apply else []:
        usage.remove(key_id)
    verb = "deleted" if apply else "would delete (run again with --apply)"
    print(f"{verb} {len(orphans)} API key(s) that no token names: {', '.join(orphans) or '-'}")
    return 0


def _missing_names(action: str, table: str | None, usage_plan: str | None) -> str:
    if not table:
        return "name the tokens table with --table or TOKENS_TABLE (or use --local)"
    if action in ("create", "add-keys", "prune-keys") and not usage_plan:
        return "name the usage plan with --usage-plan or TOKEN_USAGE_PLAN_ID (or use --local)"
    return ""


def _create(store: DynamoTokenStore, usage: UsagePlanKeys, args: argparse.Namespace, now: datetime) -> int:
    days = args.days if args.days or args.expires_on else 90
    expires_at = token_expiry(now, days=days if not args.expires_on else None, on=args.expires_on)
    token, secret = issue_token(
        store,
        usage,
        name=args.name,
        groups=args.groups,
        permissions=args.permissions,
        expires_at=expires_at,
        created_by=args.created_by,
        now=now,
        description=args.description,
    )
    shown = {
        "name": token.name,
        "secret": secret,
        "expires_at": token.expires_at.isoformat(),
        "groups": token.groups,
        "permissions": token.permissions,
        "authorization": basic_header(token.name, secret),
    }
    print(json.dumps(shown, indent=2))
    return 0


def _list(store: DynamoTokenStore) -> int:
    for token in store.list_tokens():
        listed = {
            "name": token.name,
            "groups": token.groups,
            "permissions": token.permissions,
            "expires_at": token.expires_at.isoformat(),
            "active": token.active,
            "created_by": token.created_by,
            "description": token.description,
        }
        print(json.dumps(listed))
    return 0


def _add_keys(store: DynamoTokenStore, usage: UsagePlanKeys) -> int:
    print(f"gave {add_missing_keys(store, usage)} token(s) an API key")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        table, usage_plan = _use_local_stack(args.stack_json) if args.local else (args.table, args.usage_plan)
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    missing = _missing_names(args.action, table, usage_plan)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    store = DynamoTokenStore(table)
    usage = UsagePlanKeys(usage_plan or "")
    now = datetime.now(UTC)
    actions: dict[str, Callable[[], int]] = {
        "create": lambda: _create(store, usage, args, now),
        "list": lambda: _list(store),
        "delete": lambda: _delete(store, usage, args.name),
        "deactivate": lambda: _set_active(store, args.name, active=False),
        "activate": lambda: _set_active(store, args.name, active=True),
        "add-keys": lambda: _add_keys(store, usage),
        "prune-keys": lambda: _prune(store, usage, now, apply=args.apply),
    }
    try:
        return actions[args.action]()
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
