"""The operator CLI creates the first admin token without needing one."""

from __future__ import annotations

import json

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
    assert cli.main(["--table", stack.names["TokensTable"], "token", "create", *arguments]) == 1
    assert message in capsys.readouterr().err


def test_cli_lists_tokens_without_secrets(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--table", stack.names["TokensTable"], "token", "list"]) == 0
    output = capsys.readouterr().out
    assert "test-admin" in output and "secret" not in output


def test_cli_without_a_running_local_stack_says_so(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--local", "--stack-json", "/nonexistent/stack.json", "token", "list"]) == 2
    assert "no running local stack" in capsys.readouterr().err
