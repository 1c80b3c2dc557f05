"""Per-token request limits: each token's API key in the usage plan (TokenUsagePlan) has its own rate
and burst, and the stage has one for everyone; the local front door applies both as API Gateway does,
on a controlled clock here. Found: any token could make the stage's 100 requests/s alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.frontdoor import HttpResponse, LocalApi
from infra.local.provision import usage_plan
from infra.local.template import load_template, sam_translated
from infra.local.usage import REFRESH_SECONDS
from tests.bad_inputs import keyless_token
from tests.integration.conftest import TEMPLATE, Stack
from tests.integration.gateway import clocked_api, token_header

TEMPLATE_EVENTS = Path(__file__).resolve().parents[2] / "events"
RATE = float(TEMPLATE.values["TokenRateLimit"])
BURST = int(TEMPLATE.values["TokenBurstLimit"])
STAGE = TEMPLATE.method_throttles()[("/*", "*")]


def _get(api: LocalApi, header: str, path: str = "/api/server_time") -> HttpResponse:
    return api.handle("GET", path, [("Authorization", header)], b"")


def test_the_template_limits_each_token_below_each_method() -> None:
    assert (RATE, BURST) == (20.0, 40)
    assert STAGE.rate > RATE and STAGE.burst > BURST


def test_a_token_past_its_burst_is_throttled_with_retry_after_and_the_seed_shape(stack: Stack) -> None:
    api, clock = clocked_api(stack)
    busy, calm = token_header(stack, "rate-busy"), token_header(stack, "rate-calm")
    assert [_get(api, busy).status for _ in range(BURST)] == [200] * BURST
    refused = _get(api, busy)
    assert refused.status == 429
    assert ("Retry-After", "1") in refused.headers
    assert json.loads(refused.body) == {"ok": False, "message": "Too many requests; slow down and retry"}
    assert _get(api, calm).status == 200  # another token has a bucket of its own
    clock.now += 1 / RATE  # the bucket refills at the rate: one request's worth
    assert _get(api, busy).status == 200
    assert _get(api, busy).status == 429
    clock.now += BURST / RATE  # a whole burst's worth later, the bucket is full again (and no fuller)
    assert [_get(api, busy).status for _ in range(BURST + 1)] == [200] * BURST + [429]


def test_a_throttled_request_runs_no_function(stack: Stack, monkeypatch: Any) -> None:
    api, _ = clocked_api(stack)
    header = token_header(stack, "rate-nofunction")
    for _ in range(BURST):
        assert _get(api, header, "/api/reports").status == 200
    invoked: list[str] = []
    real_invoke = api.invoke
    monkeypatch.setattr(api, "invoke", lambda name, event: invoked.append(name) or real_invoke(name, event))
    assert _get(api, header, "/api/reports").status == 429
    assert invoked == []  # the authorizer's decision was cached; the reports function never ran


def test_every_token_together_is_held_to_each_methods_throttle(stack: Stack) -> None:
    # API Gateway applies the stage's `/*` `*` setting to each method on its own (found: the front door
    # had one bucket for the whole API, which AWS does not).
    api, _ = clocked_api(stack)
    tokens = [token_header(stack, f"rate-crowd-{i}") for i in range(STAGE.burst // BURST + 1)]
    statuses = [_get(api, tokens[i // BURST]).status for i in range(STAGE.burst)]
    assert statuses == [200] * STAGE.burst
    assert _get(api, tokens[-1]).status == 429  # a token with its own burst left: the method is spent
    assert _get(api, tokens[-1], "/api/reports").status == 200  # another method has its own bucket
    unauthenticated = api.handle("GET", "/api/server_time", [], b"")
    assert unauthenticated.status == 429  # the method counts requests without a token too


def test_the_documents_need_no_key_are_not_counted_per_token_and_have_a_small_bucket(stack: Stack) -> None:
    api, _ = clocked_api(stack)
    header = token_header(stack, "rate-reader")
    for _ in range(BURST):
        assert _get(api, header).status == 200
    assert _get(api, header).status == 429  # the token is spent ...
    docs = TEMPLATE.method_throttles()[("/api/openapi.json", "GET")]
    statuses = [_get(api, header, "/api/openapi.json").status for _ in range(docs.burst + 1)]
    assert statuses == [200] * docs.burst + [429]  # ... the document is not; its own bucket is small


def test_a_callers_own_api_key_header_is_ignored(stack: Stack) -> None:
    # The key source is the authorizer: a spent token cannot borrow another token's key by sending it.
    api, _ = clocked_api(stack)
    spent, other = token_header(stack, "rate-spent"), "rate-lender"
    token_header(stack, other)
    lender = stack.tokens.find_by_name(other)
    assert lender is not None
    for _ in range(BURST):
        assert _get(api, spent).status == 200
    borrowed = api.handle("GET", "/api/server_time", [("Authorization", spent), ("x-api-key", lender.usage_key)], b"")
    assert borrowed.status == 429


def test_a_key_in_a_plan_of_another_stage_is_refused_and_a_changed_plan_applies(stack: Stack) -> None:
    api, clock = clocked_api(stack)
    header = token_header(stack, "rate-moved")
    token = stack.tokens.find_by_name("rate-moved")
    assert token is not None
    client = boto3.client("apigateway")
    other = client.create_usage_plan(name="other-stage", apiStages=[{"apiId": "local", "stage": "Other"}])
    plan = stack.names["TokenUsagePlan"]
    try:
        client.delete_usage_plan_key(usagePlanId=plan, keyId=token.usage_key_id)
        client.create_usage_plan_key(usagePlanId=other["id"], keyId=token.usage_key_id, keyType="API_KEY")
        assert _get(api, header).status == 403  # its key counts for another stage only
        client.create_usage_plan_key(usagePlanId=plan, keyId=token.usage_key_id, keyType="API_KEY")
        clock.now += REFRESH_SECONDS
        assert _get(api, header).status == 200
        patch = [{"op": "replace", "path": "/throttle/burstLimit", "value": "2"}]
        client.update_usage_plan(usagePlanId=plan, patchOperations=patch)
        clock.now += REFRESH_SECONDS
        assert [_get(api, header).status for _ in range(3)] == [200, 200, 429]  # the new burst, read again
    finally:
        restore = [{"op": "replace", "path": "/throttle/burstLimit", "value": str(BURST)}]
        client.update_usage_plan(usagePlanId=plan, patchOperations=restore)
        client.delete_usage_plan(usagePlanId=other["id"])


def test_a_token_without_an_api_key_is_refused_by_the_gateway(stack: Stack) -> None:
    # A token stored before rate limits (no usage key): the authorizer allows it, API Gateway does not.
    api, _ = clocked_api(stack)
    refused = _get(
        api,
        keyless_token(
            stack.tokens, "rate-keyless", "rs_keyless------------------------------------", token_id="keyless-id"
        ),
    )
    assert refused.status == 403
    assert json.loads(refused.body)["ok"] is False and "token add-keys" in json.loads(refused.body)["message"]


def test_a_deleted_api_key_stops_its_token_within_the_refresh(stack: Stack) -> None:
    api, clock = clocked_api(stack)
    header = token_header(stack, "rate-unkeyed")
    assert _get(api, header).status == 200
    token = stack.tokens.find_by_name("rate-unkeyed")
    assert token is not None
    stack.usage.remove(token.usage_key_id)
    clock.now += REFRESH_SECONDS
    assert _get(api, header).status == 403


def test_a_new_token_works_at_once(stack: Stack) -> None:
    api, _ = clocked_api(stack)
    assert _get(api, token_header(stack, "rate-first")).status == 200  # keys read before it was made
    assert _get(api, token_header(stack, "rate-second")).status == 200


def test_the_authorizer_names_the_tokens_own_key(stack: Stack) -> None:
    header = token_header(stack, "rate-named")
    event = json.loads((TEMPLATE_EVENTS / "authorizer_request.json").read_text(encoding="utf-8"))
    event["headers"]["Authorization"] = header
    decision = stack.api.invoke("AuthFunction", event)
    token = stack.tokens.find_by_name("rate-named")
    assert token is not None and token.usage_key
    assert decision["usageIdentifierKey"] == token.usage_key
    assert token.usage_key not in json.dumps(decision["context"])  # never handed to the handlers


def test_as_deployed_every_authorized_method_requires_the_key_and_the_plan_covers_the_stage() -> None:
    resources = sam_translated(TEMPLATE)["Resources"]
    assert resources["ReportApi"]["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    paths = resources["ReportApi"]["Properties"]["Body"]["paths"]
    for route in TEMPLATE.routes():
        security = paths[route.path][route.method.lower()].get("security", [])
        requires_key = {"api_key": []} in security
        assert requires_key == route.authorized == route.api_key_required, route.path
    plan = resources["TokenUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "ReportApi"}, "Stage": {"Ref": "ReportApiStage"}}]
    assert plan["Throttle"] == {"RateLimit": {"Ref": "TokenRateLimit"}, "BurstLimit": {"Ref": "TokenBurstLimit"}}


def test_the_local_usage_plan_is_the_templates(stack: Stack) -> None:
    plan = boto3.client("apigateway").get_usage_plan(usagePlanId=stack.names["TokenUsagePlan"])
    assert plan["apiStages"] == [{"apiId": "local", "stage": TEMPLATE.stage()}]
    assert plan["throttle"] == {"rateLimit": RATE, "burstLimit": BURST}


@pytest.mark.parametrize("secret_ok", [True, False])
def test_api_gateway_reads_are_signed_and_checked_locally(stack: Stack, secret_ok: bool) -> None:
    # moto rebuilt bodiless GETs with a body, so every signature "did not match"; the fix must not
    # stop a wrong secret from being refused.
    client = boto3.client("apigateway")
    credentials = client._request_signer._credentials
    secret = credentials.secret_key if secret_ok else credentials.secret_key + "x"
    other = boto3.client("apigateway", aws_access_key_id=credentials.access_key, aws_secret_access_key=secret)
    if secret_ok:
        assert other.get_usage_plan(usagePlanId=stack.names["TokenUsagePlan"])["id"]
    else:
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            other.get_usage_plan(usagePlanId=stack.names["TokenUsagePlan"])


def test_a_fractional_usage_plan_burst_is_refused_as_cloudformation_refuses_it(stack: Stack) -> None:
    template = load_template(overrides={"TokenBurstLimit": "40.5"})  # a Number parameter takes it ...
    plan = template.resolve(template.resources["TokenUsagePlan"]["Properties"])
    with pytest.raises(ValueError, match="whole number"):  # ... the plan's Integer BurstLimit does not
        usage_plan(template, "TokenUsagePlan", plan)
