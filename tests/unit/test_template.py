"""template.yaml is the one description of the system: the handlers and the local stack agree with it."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from infra.local.template import Template, Throttle, load_template, parse_overrides

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()


def test_every_function_handler_module_exists() -> None:
    for spec in TEMPLATE.functions().values():
        module = spec.handler.rsplit(".", 1)[0]
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), spec.handler


def test_every_function_built_by_make_has_its_build_target_packaging_its_own_folder() -> None:
    """`sam build` runs `make build-<LogicalId>` for each function built by makefile: one missing fails
    `make build` (four functions had none, and nobody ran it)."""
    rule = re.compile(r"^build-(\w+): ; \$\(call package_function,(\w+)\)$", re.M)
    targets = dict(rule.findall((ROOT / "Makefile").read_text()))
    for logical_id, resource in TEMPLATE.of_type("AWS::Serverless::Function").items():
        if resource.get("Metadata", {}).get("BuildMethod") != "makefile":
            continue
        folder = targets.get(logical_id)
        assert folder is not None, f"Makefile has no build-{logical_id}"
        handler = resource["Properties"]["Handler"]
        assert handler.startswith(f"functions.{folder}."), (logical_id, handler, folder)


def _references(value: object) -> set[str]:
    """The logical ids a resource's properties name (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
                found |= _references(inner)
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def test_the_translated_template_has_no_dependency_cycle() -> None:
    # Found: the admin function named the usage plan, which names the API's stage, whose methods name the
    # function: CloudFormation refuses such a stack ("Circular dependency between resources").
    from infra.local.template import sam_translated

    resources = sam_translated(TEMPLATE)["Resources"]
    needs = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        named = _references(resource.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)
        needs[name] = named & set(resources)
    done: set[str] = set()
    while len(done) < len(needs):
        ready = {name for name, wanted in needs.items() if name not in done and wanted <= done}
        assert ready, f"a cycle among {sorted(set(needs) - done)}"
        done |= ready


@pytest.mark.parametrize(
    ("function", "folder"),
    [
        ("ReportsFunction", "reports"),
        ("ExportsFunction", "exports"),
        ("AdminFunction", "admin"),
        ("LoginFunction", "login"),
        ("CatalogAdminFunction", "catalog_admin"),
    ],
)
def test_routes_declared_in_the_template_match_each_handlers_routes(function: str, folder: str) -> None:
    source = (ROOT / f"functions/{folder}/handler.py").read_text(encoding="utf-8")
    declared = re.findall(r'@app\.(get|post|put|delete)\("([^"]+)"\)', source)
    in_handler = {(method.upper(), re.sub(r"<(\w+)>", r"{\1}", path)) for method, path in declared}
    in_template = {(r.method, r.path) for r in TEMPLATE.routes() if r.function == function}
    assert in_handler
    assert in_handler == in_template


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        ("/api/call/gst-balance", {"report_id": "gst-balance"}),
        ("/api/call/gst-balance/", {"report_id": "gst-balance"}),
        ("/api/call/12/", {"report_id": "12"}),
        ("/api/server_time/", {}),
        ("/report/get/3", {"report_id": "3"}),
    ],
)
def test_paths_match_with_and_without_a_trailing_slash(path: str, parameters: dict[str, str]) -> None:
    matches = [r.match(path) for r in TEMPLATE.routes()]
    assert parameters in matches


@pytest.mark.parametrize("path", ["/api/call/", "/api/call/a/b/", "/api/calls/x", "/nope"])
def test_paths_outside_the_template_match_no_route(path: str) -> None:
    assert all(r.match(path) is None for r in TEMPLATE.routes())


def test_authorizer_reads_the_authorization_header() -> None:
    authorizer = TEMPLATE.authorizer()
    assert authorizer.function == "AuthFunction"
    assert authorizer.identity_headers == ("Authorization",)


def test_refusals_have_seed_shaped_gateway_responses() -> None:
    responses = TEMPLATE.gateway_responses()
    assert responses["UNAUTHORIZED"].status == 401
    assert responses["ACCESS_DENIED"].status == 401
    assert "$context.authorizer.message" in responses["ACCESS_DENIED"].body
    assert responses["THROTTLED"].status == 429


def test_function_environments_resolve_to_local_resource_names() -> None:
    environment = TEMPLATE.environment()
    assert environment["TOKENS_TABLE"] == "reportserver-local-tokenstable"
    assert (
        environment["EXPORT_QUEUE_URL"]
        == "https://sqs.us-east-1.amazonaws.com/123456789012/reportserver-local-exportqueue"
    )
    assert environment["CATALOG_TABLE"] == "reportserver-local-catalogtable"
    assert int(environment["CALL_MAX_BYTES"]) <= 6 * 1024 * 1024


def test_export_queue_retries_then_dead_letters_with_a_long_enough_visibility_timeout() -> None:
    queue = TEMPLATE.resources["ExportQueue"]["Properties"]
    worker = TEMPLATE.resources["ExportWorkerFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    lease = int(TEMPLATE.functions()["ExportWorkerFunction"].environment["EXPORT_LEASE_SECONDS"])
    assert worker["Timeout"] < lease < queue["VisibilityTimeout"]
    sources = {(s.function, s.queue) for s in TEMPLATE.queue_sources()}
    assert sources == {
        ("ExportWorkerFunction", "ExportQueue"),
        ("ExportDeadLettersFunction", "ExportDeadLetterQueue"),
        ("JobRunnerFunction", "JobRunQueue"),
        ("DataRefreshFunction", "RefreshQueue"),
    }


def test_the_refresh_queue_outlasts_its_functions_retries_and_a_refresh_its_function() -> None:
    queue = TEMPLATE.resources["RefreshQueue"]["Properties"]
    function = TEMPLATE.resources["DataRefreshFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert queue["MessageRetentionPeriod"] == 1_209_600
    lease = int(TEMPLATE.functions()["DataRefreshFunction"].environment["REFRESH_LEASE_SECONDS"])
    assert function["Timeout"] < lease < queue["VisibilityTimeout"]


def test_the_job_run_queue_outlasts_its_runners_retries() -> None:
    queue = TEMPLATE.resources["JobRunQueue"]["Properties"]
    runner = TEMPLATE.resources["JobRunnerFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * runner["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert queue["MessageRetentionPeriod"] == 1_209_600


def test_no_export_message_expires_before_its_retries_and_its_dead_letter_end() -> None:
    # Found: a day's retention could delete a message waiting behind the worker's concurrency, unread.
    queue = TEMPLATE.resources["ExportQueue"]["Properties"]
    dead = TEMPLATE.resources["ExportDeadLetterQueue"]["Properties"]
    retries = queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
    assert queue["MessageRetentionPeriod"] == 1_209_600 > retries  # SQS's longest, 14 days
    assert dead["MessageRetentionPeriod"] == 1_209_600


def test_each_function_may_read_only_its_own_table() -> None:
    policies = {
        name: str(r["Properties"]["Policies"]) for name, r in TEMPLATE.of_type("AWS::Serverless::Function").items()
    }
    assert "TokensTable" in policies["AuthFunction"] and "CatalogTable" not in policies["AuthFunction"]
    assert "CatalogTable" in policies["ReportsFunction"] and "TokensTable" not in policies["ReportsFunction"]
    assert "Write" not in policies["AuthFunction"] + policies["ReportsFunction"]


def test_layer_requirements_are_pinned_as_in_the_lock_file() -> None:
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    locked = dict(re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', lock))
    for line in (ROOT / "layers/api/requirements.txt").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            name, version = line.split("==", 1)
            assert locked[name] == version.split(";")[0].strip(), name
    assert importlib.util.find_spec("aws_lambda_powertools") is not None


def test_every_function_logs_to_a_group_with_a_retention() -> None:
    groups = TEMPLATE.of_type("AWS::Logs::LogGroup")
    for function in TEMPLATE.functions():
        group = TEMPLATE.resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        properties = groups[group]["Properties"]
        assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        # Not /aws/lambda/<function>: Lambda made that group when the function first ran (found).
        assert properties["LogGroupName"] == {"Fn::Sub": f"/reportserver/${{AWS::StackName}}/{function}"}
    assert len(groups) == len(TEMPLATE.functions())
    assert TEMPLATE.parameters["LogRetentionDays"]["Default"] == 30


def test_the_export_bucket_refuses_requests_without_tls() -> None:
    (policy,) = TEMPLATE.of_type("AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Properties"]["Bucket"] == {"Ref": "ExportBucket"}


@pytest.mark.parametrize(
    ("alarm", "queue"),
    [
        ("ExportDeadLetterAlarm", "ExportDeadLetterQueue"),
        ("JobRunDeadLetterAlarm", "JobRunDeadLetterQueue"),
        ("RefreshDeadLetterAlarm", "RefreshDeadLetterQueue"),
    ],
)
def test_every_dead_letter_queue_raises_an_alarm(alarm: str, queue: str) -> None:
    alarms = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == {"ExportDeadLetterAlarm", "JobRunDeadLetterAlarm", "RefreshDeadLetterAlarm"}
    properties = alarms[alarm]["Properties"]
    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert properties["Threshold"] == 1 and properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_gateway_response_has_the_seed_shape() -> None:
    responses = TEMPLATE.gateway_responses()
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED"} <= set(responses)
    for kind, response in responses.items():
        body = response.body.replace("$context.error.messageString", '"m"').replace("$context.authorizer.message", "m")
        assert set(json.loads(body)) == {"ok", "message"}, kind
        assert json.loads(body)["ok"] is False


def test_the_worker_knows_its_last_delivery_as_the_queue_counts_it() -> None:
    queue = TEMPLATE.resources["ExportQueue"]["Properties"]
    worker = TEMPLATE.functions()["ExportWorkerFunction"].environment
    assert int(worker["EXPORT_MAX_RECEIVES"]) == queue["RedrivePolicy"]["maxReceiveCount"]
    assert worker["EXPORT_QUEUE_URL"] == TEMPLATE.reference("ExportQueue")


def test_parameter_overrides_are_checked_as_cloudformation_checks_them() -> None:
    template = load_template(overrides=parse_overrides(["TokenRateLimit=50", "TokenBurstLimit = 80"]))
    assert (template.values["TokenRateLimit"], template.values["TokenBurstLimit"]) == (50, 80)
    plan = template.resolve(template.resources["TokenUsagePlan"]["Properties"])
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 80}
    assert plan["ApiStages"] == [{"ApiId": "local", "Stage": template.stage()}]
    assert load_template().values["TokenRateLimit"] == 20  # the default otherwise


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["NoSuchParameter=1"], "no parameter NoSuchParameter"),
        (["TokenRateLimit=fast"], "must be a number"),
        (["TokenRateLimit=nan"], "must be a number"),
        (["TokenRateLimit=inf"], "must be a number"),
        (["TokenRateLimit=0"], "between 1 and 10000"),
        (["TokenBurstLimit=5001"], "between 1 and 5000"),
        (["LogLevel=LOUD"], "must be one of"),
        (["LogRetentionDays=2"], "must be one of"),
        (["TokenRateLimit"], "Name=Value"),
        (["TokenRateLimit=\u0665\u0660"], "must be a number"),  # Arabic-Indic 50
        (["TokenRateLimit=5_0"], "must be a number"),
        (["TokenRateLimit=1e1"], "must be a number"),
        (["TokenRateLimit=+50"], "must be a number"),
        (["TokenRateLimit=50."], "must be a number"),
        (["StageName="], "must match"),
        (["StageName=a/b"], "must match"),
    ],
)
def test_bad_parameter_overrides_are_refused(pairs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_template(overrides=parse_overrides(pairs))


def test_throttled_answers_carry_retry_after() -> None:
    throttled = load_template().gateway_responses()["THROTTLED"]
    assert throttled.status == 429 and ("Retry-After", "1") in throttled.headers
    assert json.loads(throttled.body)["ok"] is False


def test_a_fractional_burst_is_refused_where_cloudformation_wants_a_whole_number() -> None:
    template = load_template(overrides={"StageBurstLimit": "40.5"})
    with pytest.raises(ValueError, match="whole number"):
        template.method_throttles()


def test_the_stage_throttles_each_method_and_the_documents_get_a_smaller_one() -> None:
    throttles = load_template().method_throttles()
    assert throttles[("/*", "*")] == Throttle(100.0, 200)
    assert throttles[("/api/docs", "GET")] == throttles[("/api/openapi.json", "GET")] == Throttle(10.0, 20)


def test_a_reference_to_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="does not define"):
        load_template().resolve({"Ref": "NoSuchThing"})
    with pytest.raises(ValueError, match="does not define"):
        load_template().resolve({"Ref": "TokensTable.Stage"})  # only an API has a stage


def test_gateway_response_headers_must_be_static_quoted_values() -> None:
    document = load_template().document
    api = next(r for r in document["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    api["Properties"]["GatewayResponses"]["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] = (
        "method.request.header.X"
    )
    with pytest.raises(ValueError, match="quoted static values only"):
        Template(document).gateway_responses()


@pytest.mark.parametrize(
    ("spec", "text", "message"),
    [
        ({"Type": "String", "MinLength": 3}, "ab", "3 to 4096 characters"),
        ({"Type": "String", "MaxLength": "3"}, "abcd", "0 to 3 characters"),
        ({"Type": "String", "AllowedPattern": "\\p{Alnum}+"}, "abc", "cannot check the pattern"),
        ({"Type": "String", "AllowedPattern": "[a-z]+"}, "abc1", "must match"),
    ],
)
def test_string_parameters_are_held_to_their_constraints(spec: dict[str, object], text: str, message: str) -> None:
    document = load_template().document
    document["Parameters"]["Probe"] = spec
    with pytest.raises(ValueError, match=message):
        Template(document, {"Probe": text})


def test_method_settings_must_name_a_route() -> None:
    document = load_template().document
    api = next(r for r in document["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    api["Properties"]["MethodSettings"].append(
        {"ResourcePath": "/~1api~1nosuch", "HttpMethod": "GET", "ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1}
    )
    with pytest.raises(ValueError, match="no route has"):
        Template(document).method_throttles()
