"""The operator CLI: the first admin token without needing one, tokens' keys in the usage plan."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from reportserver import cli
from reportserver.domain.tokens import USAGE_KEY_PATTERN, ApiToken, basic_header, hash_secret, well_formed_secret
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import KEY_DESCRIPTION

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
    assert created["secret"].startswith("rsk_") and well_formed_secret(created["secret"])
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
        (["--name", "cli-bad", "--permissions", "root"], "Unknown permission or scope 'root'"),
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


def _replaced_once_read(monkeypatch: pytest.MonkeyPatch, stack: Stack, name: str, secret_hash: str) -> None:
    """Another admin's race: right after the CLI reads the token (this secret's), it is deleted and a
    token of the same name made again."""
    real_find = DynamoTokenStore.find_by_name

    def read_then_replaced(self: DynamoTokenStore, wanted: str, fresh: bool = False) -> ApiToken | None:
        found = real_find(self, wanted, fresh)
        if wanted == name and found is not None and found.secret_hash == secret_hash:
            self.delete(wanted)
            new_token(self, stack.usage, wanted)
        return found

    monkeypatch.setattr(DynamoTokenStore, "find_by_name", read_then_replaced)


def test_cli_delete_leaves_a_token_made_again_under_the_name(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read, then deleted by name: a token deleted and made again in between (by another admin) must stay,
    # with its key. The old token is one made before token ids: the guard is its secret's hash.
    keyless_token(stack.tokens, "cli-race", "rs_old----------------------------------------")
    _replaced_once_read(monkeypatch, stack, "cli-race", hash_secret("rs_old----------------------------------------"))
    assert cli.main(["--table", stack.names["TokensTable"], "token", "delete", "--name", "cli-race"]) == 1
    assert "changed while it was being deleted" in capsys.readouterr().err
    monkeypatch.undo()
    survivor = stack.tokens.find_by_name("cli-race")
    assert survivor is not None and survivor.secret_hash != hash_secret(
        "rs_old----------------------------------------"
    )
    assert survivor.usage_key_id in stack.usage.member_ids()


def test_cli_gives_tokens_without_a_live_key_their_keys(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    header = [
        ("Authorization", keyless_token(stack.tokens, "cli-legacy", "rs_legacy-------------------------------------"))
    ]
    api = LocalApi(TEMPLATE, stack.api.identities)
    assert api.handle("GET", "/api/server_time", header, b"").status == 403
    token_header_of_lost_key = basic_header("cli-lostkey", new_token(stack.tokens, stack.usage, "cli-lostkey"))
    lost = stack.tokens.find_by_name("cli-lostkey")
    assert lost is not None
    stack.usage.remove(lost.usage_key_id)  # its key deleted (say by a prune of the wrong table)
    keyed = stack.tokens.find_by_name("test-admin")
    assert keyed is not None
    members = stack.usage.member_ids()
    unkeyed = sorted(t.name for t in stack.tokens.list_tokens() if t.usage_key_id not in members)
    assert {"cli-legacy", "cli-lostkey"} <= set(unkeyed) and "test-admin" not in unkeyed
    plan = stack.names["TokenUsagePlan"]
    arguments = ["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "add-keys"]
    assert cli.main(arguments) == 0
    assert f"gave {len(unkeyed)} token(s) an API key" in capsys.readouterr().out
    members = stack.usage.member_ids()
    assert all(t.usage_key_id in members for t in stack.tokens.list_tokens())
    again = stack.tokens.find_by_name("test-admin")
    assert again is not None and again.usage_key_id == keyed.usage_key_id  # a token with a live key keeps it
    legacy = stack.tokens.find_by_name("cli-legacy")
    assert legacy is not None and USAGE_KEY_PATTERN.fullmatch(legacy.usage_key)
    # Within the revocation delay the cached decisions stand; a new container and cache see the keys.
    fresh = LocalApi(TEMPLATE, stack.api.identities)
    fresh.cold_start("AuthFunction")
    assert fresh.handle("GET", "/api/server_time", header, b"").status == 200
    assert fresh.handle("GET", "/api/server_time", [("Authorization", token_header_of_lost_key)], b"").status == 200
    assert cli.main(arguments) == 0
    assert "gave 0 token(s)" in capsys.readouterr().out  # run again, nothing to do


def test_cli_add_keys_drops_its_key_when_the_token_changed_meanwhile(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keyless_token(stack.tokens, "cli-moving", "rs_moving-------------------------------------")
    before = stack.usage.member_ids()
    monkeypatch.setattr(DynamoTokenStore, "set_usage_key", lambda self, token, key, key_id: False)
    plan = stack.names["TokenUsagePlan"]
    assert cli.main(["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "add-keys"]) == 0
    assert "gave 0 token(s)" in capsys.readouterr().out
    assert stack.usage.member_ids() == before  # every key it made for a token it lost was deleted again


def test_a_token_is_given_a_key_only_while_it_is_the_token_read_with_the_key_read(stack: Stack) -> None:
    keyless_token(stack.tokens, "cli-cas", "rs_cas----------------------------------------")
    read = stack.tokens.find_by_name("cli-cas")
    assert read is not None
    assert stack.tokens.set_usage_key(read, "reportserver" + "1" * 32, "k1")
    assert not stack.tokens.set_usage_key(read, "reportserver" + "2" * 32, "k2")  # it has a key now
    stack.tokens.delete("cli-cas")
    keyless_token(stack.tokens, "cli-cas", "rs_other--------------------------------------")
    assert not stack.tokens.set_usage_key(read, "reportserver" + "3" * 32, "k3")  # another token now
    current = stack.tokens.find_by_name("cli-cas")
    assert current is not None and current.usage_key == ""


def test_cli_prunes_only_its_own_unnamed_old_keys_of_the_plan(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("apigateway")
    plan = stack.names["TokenUsagePlan"]

    def key(value: str, description: str, in_plan: bool = True) -> str:
        made = client.create_api_key(name="k", value=value, enabled=True, description=description)
        if in_plan:
            client.create_usage_plan_key(usagePlanId=plan, keyId=made["id"], keyType="API_KEY")
        return str(made["id"])

    orphan = key("reportserver" + "0" * 32, f"{KEY_DESCRIPTION} gone (x)")
    foreign = key("someoneelse" + "0" * 32, "a partner's key in the same plan")
    elsewhere = key("reportserver" + "9" * 32, f"{KEY_DESCRIPTION} of another stack (y)", in_plan=False)
    arguments = ["--table", stack.names["TokensTable"], "--usage-plan", plan, "token", "prune-keys"]
    assert cli.main([*arguments, "--apply"]) == 0
    assert orphan not in capsys.readouterr().out  # too young: it may belong to a token being issued
    monkeypatch.setattr(cli, "ORPHAN_GRACE", timedelta(seconds=-1))
    assert cli.main(arguments) == 0
    listed = capsys.readouterr().out
    assert "would delete" in listed and orphan in listed and foreign not in listed and elsewhere not in listed
    assert orphan in stack.usage.member_ids()  # listed, not deleted
    monkeypatch.setattr(DynamoTokenStore, "list_tokens", lambda self: [])
    assert cli.main([*arguments, "--apply"]) == 1  # a table without tokens: the wrong table, refused
    assert "no tokens" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setattr(cli, "ORPHAN_GRACE", timedelta(seconds=-1))
    assert cli.main([*arguments, "--apply"]) == 0
    assert orphan in capsys.readouterr().out
    remaining = {k["id"] for k in client.get_api_keys(limit=500)["items"]}
    assert orphan not in remaining and {foreign, elsewhere} <= remaining
    admin = stack.tokens.find_by_name("test-admin")
    assert admin is not None and admin.usage_key_id in remaining  # every token's key stays


def test_cli_deactivates_and_activates_a_token(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    header = [("Authorization", basic_header("cli-paused", new_token(stack.tokens, stack.usage, "cli-paused")))]
    table = ["--table", stack.names["TokensTable"], "token"]

    def status() -> int:
        fresh = LocalApi(TEMPLATE, stack.api.identities)  # past the caches (the revocation delay)
        fresh.cold_start("AuthFunction")
        return fresh.handle("GET", "/api/server_time", header, b"").status

    assert status() == 200
    assert cli.main([*table, "deactivate", "--name", "cli-paused"]) == 0
    assert "deactivated token 'cli-paused'" in capsys.readouterr().out
    assert status() == 401
    assert cli.main([*table, "activate", "--name", "cli-paused"]) == 0
    assert status() == 200
    assert cli.main([*table, "deactivate", "--name", "cli-nobody"]) == 1
    assert "no token named 'cli-nobody'" in capsys.readouterr().err


def test_cli_deactivate_leaves_a_token_made_again_under_the_name(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_secret = new_token(stack.tokens, stack.usage, "cli-swapped")
    _replaced_once_read(monkeypatch, stack, "cli-swapped", hash_secret(old_secret))
    assert cli.main(["--table", stack.names["TokensTable"], "token", "deactivate", "--name", "cli-swapped"]) == 1
    assert "changed meanwhile" in capsys.readouterr().err
    monkeypatch.undo()
    survivor = stack.tokens.find_by_name("cli-swapped")
    assert survivor is not None and survivor.active and survivor.secret_hash != hash_secret(old_secret)
