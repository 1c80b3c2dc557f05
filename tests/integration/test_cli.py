"""The operator CLI creates the first admin token without needing one."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from reportserver import cli
from reportserver.domain.tokens import USAGE_KEY_PATTERN

from infra.local.frontdoor import LocalApi
from tests.bad_inputs import keyless_token, new_token
from tests.integration.conftest import TEMPLATE, Stack


def test_cli_creates_a_token_that_the_api_accepts(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    table = stack.names["TokensTable"]
    assert (
        cli.main(
            [
                "--table",
                table,
                "--usage-plan",
                stack.names["TokenUsagePlan"],
                "token",
                "create",
                "--name",
                "cli-admin",
                "--groups",
                "*",
                "--permissions",
                "admin",
                "--days",
                "30",
            ]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["secret"].startswith("rs_")
    assert stack.get("/api/call/gst-balance/", created["authorization"]).status == 200
    stored = stack.tokens.find_by_name("cli-admin")
    assert stored is not None and created["secret"] not in str(stored)
    # Its own API key, in the usage plan: its requests are counted apart from every other token's.
    members = boto3.client("apigateway").get_usage_plan_keys(usagePlanId=stack.names["TokenUsagePlan"])["items"]
    assert [m["value"] for m in members if m["id"] == stored.usage_key_id] == [stored.usage_key]


def test_cli_deletes_a_token_with_its_api_key(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    table, plan = stack.names["TokensTable"], stack.names["TokenUsagePlan"]
    assert cli.main(["--table", table, "--usage-plan", plan, "token", "create", "--name", "cli-short"]) == 0
    capsys.readouterr()
    stored = stack.tokens.find_by_name("cli-short")
    assert stored is not None and stored.usage_key_id
    assert cli.main(["--table", table, "token", "delete", "--name", "cli-short"]) == 0
    assert stack.tokens.find_by_name("cli-short") is None
    keys = boto3.client("apigateway").get_api_keys(limit=500)["items"]
    assert stored.usage_key_id not in {k["id"] for k in keys}
    assert cli.main(["--table", table, "token", "delete", "--name", "cli-short"]) == 1
    assert "no token named 'cli-short'" in capsys.readouterr().err


def test_cli_will_not_make_a_token_without_a_usage_plan(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without its API key in the plan API Gateway would refuse every request of the token (403).
    monkeypatch.delenv("TOKEN_USAGE_PLAN_ID", raising=False)
    assert cli.main(["--table", stack.names["TokensTable"], "token", "create", "--name", "cli-nokey"]) == 2
    assert "usage plan" in capsys.readouterr().err
    assert stack.tokens.find_by_name("cli-nokey") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--name", "api.user"], "reserved"),
        (["--name", "cli-bad", "--permissions", "root"], "Unknown permissions"),
        (["--name", "cli-old", "--expires-on", "2020-01-01"], "in the future"),
    ],
)
def test_cli_refuses_bad_tokens(
    stack: Stack, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    plan = stack.names["TokenUsagePlan"]
    assert cli.main(["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "create", *arguments]) == 1
    assert message in capsys.readouterr().err


def test_cli_lists_tokens_without_secrets(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--table", stack.names["TokensTable"], "token", "list"]) == 0
    output = capsys.readouterr().out
    assert "test-admin" in output and "secret" not in output


def test_cli_without_a_running_local_stack_says_so(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--local", "--stack-json", "/nonexistent/stack.json", "token", "list"]) == 2
    assert "no running local stack" in capsys.readouterr().err


def test_cli_delete_leaves_a_token_made_again_under_the_name(stack: Stack) -> None:
    # Read, then deleted by name: a token deleted and made again in between must not be the one deleted.
    old_secret = new_token(stack.tokens, stack.usage, "cli-race")
    old = stack.tokens.find_by_name("cli-race")
    assert old is not None and old_secret
    assert stack.tokens.delete("cli-race", old.token_id)
    new_token(stack.tokens, stack.usage, "cli-race")
    assert not stack.tokens.delete("cli-race", old.token_id)  # the old token's id: the new one stays
    assert stack.tokens.find_by_name("cli-race") is not None


def test_cli_gives_tokens_made_before_rate_limits_their_keys(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    api = LocalApi(TEMPLATE, stack.api.identities)
    header = [("Authorization", keyless_token(stack.tokens, "cli-legacy", "rs_legacy"))]
    assert api.handle("GET", "/api/server_time", header, b"").status == 403
    plan = stack.names["TokenUsagePlan"]
    arguments = ["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "add-keys"]
    keyless = sorted(t.name for t in stack.tokens.list_tokens() if not t.usage_key)
    assert "cli-legacy" in keyless and "test-admin" not in keyless
    assert cli.main(arguments) == 0
    assert f"gave {len(keyless)} token(s) an API key" in capsys.readouterr().out
    assert all(t.usage_key for t in stack.tokens.list_tokens())
    legacy = stack.tokens.find_by_name("cli-legacy")
    assert legacy is not None and USAGE_KEY_PATTERN.fullmatch(legacy.usage_key) and legacy.usage_key_id
    # Within the revocation delay the cached keyless decision stands; a new container and cache see the key.
    fresh = LocalApi(TEMPLATE, stack.api.identities)
    fresh.cold_start("AuthFunction")
    assert fresh.handle("GET", "/api/server_time", header, b"").status == 200
    assert cli.main(arguments) == 0
    assert "gave 0 token(s)" in capsys.readouterr().out  # run again, nothing to do


def test_cli_prunes_keys_no_token_names_but_not_young_ones(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("apigateway")
    plan = stack.names["TokenUsagePlan"]
    orphan = client.create_api_key(name="orphan", value="reportserver" + "0" * 32, enabled=True)
    client.create_usage_plan_key(usagePlanId=plan, keyId=orphan["id"], keyType="API_KEY")
    arguments = ["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "prune-keys"]
    assert cli.main(arguments) == 0
    assert "deleted 0 API key(s)" in capsys.readouterr().out  # too young: it may belong to a token being issued
    monkeypatch.setattr(cli, "ORPHAN_GRACE", timedelta(seconds=-1))
    named = {t.usage_key for t in stack.tokens.list_tokens()}
    members = client.get_usage_plan_keys(usagePlanId=plan, limit=500)["items"]
    live = {k["id"] for k in client.get_api_keys(limit=500)["items"]}  # moto lists deleted keys in plans
    unnamed = [m["id"] for m in members if m["value"] not in named and m["id"] in live]
    assert orphan["id"] in unnamed
    assert cli.main(arguments) == 0
    assert f"deleted {len(unnamed)} API key(s)" in capsys.readouterr().out
    remaining = {k["id"] for k in client.get_api_keys(limit=500)["items"]}
    assert orphan["id"] not in remaining
    admin = stack.tokens.find_by_name("test-admin")
    assert admin is not None and admin.usage_key_id in remaining  # every token's key stays
