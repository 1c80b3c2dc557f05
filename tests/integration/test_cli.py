"""The operator CLI creates the first admin token without needing one."""

from __future__ import annotations

import json

import boto3
import pytest
from reportserver import cli

from tests.integration.conftest import Stack


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


def test_cli_will_not_make_a_token_without_a_usage_plan(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Without its API key in the plan API Gateway would refuse every request of the token (403).
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
