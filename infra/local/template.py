"""Read `template.yaml` for the local stack: resources, functions, routes, gateway responses.

The local stack takes everything from the template so that it cannot drift from what SAM deploys.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_PREFIX = "reportserver-local"
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_API_ID = "local"  # the REST API's id (what `Ref` of the AWS::Serverless::Api gives)
_PSEUDO = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": LOCAL_PREFIX,
    "AWS::NoValue": None,
}
# The numbers the local stack takes for a Number parameter: plain ASCII decimals (CloudFormation says
# "an integer or float"; exponents, signs and digits of other scripts are refused here, never guessed at).
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub ...) read as their long forms."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]
    authorized: bool = True  # False: `Auth: {Authorizer: NONE}`, reached without the authorizer
    api_key_required: bool = False  # Auth.ApiKeyRequired (the API's, or the event's own)
    authorizer: str = ""  # which of the API's authorizers (Auth.Authorizer, else the default)

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self.pattern.match(raw_path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source: a queue whose messages the template sends to a function."""

    function: str
    queue: str
    batch_size: int
    reports_item_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Authorizer:
    function: str
    identity_headers: tuple[str, ...]
    cache_seconds: int = 300  # ReauthorizeEvery: API Gateway's default is 300 s, 0 turns the cache off
    identity_query: tuple[str, ...] = ()  # Identity.QueryStrings


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None  # None: the status of what happened (the response type's default)
    body: str
    headers: tuple[tuple[str, str], ...] = ()  # ResponseParameters.Headers, their quotes removed


@dataclass(frozen=True)
class Throttle:
    rate: float  # requests per second, on average
    burst: int  # requests at once


class Template:
    def __init__(self, document: dict[str, Any], overrides: dict[str, str] | None = None) -> None:
        self.document = document
        self.resources: dict[str, dict[str, Any]] = document.get("Resources", {})
        self.parameters: dict[str, dict[str, Any]] = document.get("Parameters", {})
        # Parameter values given at deploy time (`sam deploy --parameter-overrides`), checked against the
        # template's constraints (type, range, allowed values and patterns, lengths).
        self.values = {name: spec.get("Default") for name, spec in self.parameters.items()}
        for name, text in (overrides or {}).items():
            self.values[name] = _parameter_value(name, self.parameters.get(name), text)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == resource_type}

    @staticmethod
    def physical_name(logical_id: str) -> str:
        """Local stand-in for CloudFormation's generated names (lower case suits S3 too)."""
        return f"{LOCAL_PREFIX}-{logical_id}".lower()

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one return per intrinsic reads best
        """Resolve the intrinsics the template uses in values the local stack needs."""
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                if argument in self.parameters:
                    return self.values[argument]
                api = argument.removesuffix(".Stage")
                if argument != api and self.resources.get(api, {}).get("Type") == "AWS::Serverless::Api":
                    return self.stage()  # SAM's reference to an API's stage
                if argument in self.resources:
                    return self.reference(argument)
                if argument in _PSEUDO:
                    return _PSEUDO[argument]
                raise ValueError(f"the template refers to {argument}, which it does not define")
            if key == "Fn::GetAtt":
                logical_id, attribute = argument
                return self.attribute(logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                values = {name: self.resolve(v) for name, v in variables.items()}
                return re.sub(
                    r"\$\{([^}]+)\}", lambda m: str(values[m[1]] if m[1] in values else self._sub(m[1])), text
                )
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, name: str) -> Any:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attribute(logical_id, attribute)
        return self.resolve({"Ref": name})

    def reference(self, logical_id: str) -> str:
        """What `Ref` gives for a resource: a queue's URL, else its name."""
        name = self.physical_name(logical_id)
        if self.resources[logical_id]["Type"] == "AWS::SQS::Queue":
            return queue_url(name)
        if self.resources[logical_id]["Type"] == "AWS::Serverless::Api":
            return LOCAL_API_ID
        return name

    def attribute(self, logical_id: str, attribute: str) -> str:  # noqa: PLR0911 - one return per kind
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{name}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{name}"  # bucket ARNs name no region or account
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{name}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{name}"
        if kind == "AWS::Scheduler::ScheduleGroup" and attribute == "Arn":
            return f"arn:aws:scheduler:{LOCAL_REGION}:{LOCAL_ACCOUNT}:schedule-group/{name}"
        if attribute == "Arn":
            return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"
        return name

    def functions(self) -> dict[str, FunctionSpec]:
        global_env = self.document.get("Globals", {}).get("Function", {}).get("Environment", {})
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            properties = resource["Properties"]
            variables = dict(global_env.get("Variables", {}))
            variables.update(properties.get("Environment", {}).get("Variables", {}))
            specs[logical_id] = FunctionSpec(
                logical_id, properties["Handler"], {k: self.resolve(v) for k, v in variables.items()}
            )
        return specs

    def environment(self) -> dict[str, str]:
        """All functions' variables, which must agree where they share a name (one process runs all)."""
        merged: dict[str, str] = {}
        for spec in self.functions().values():
            for name, value in spec.environment.items():
                text = str(value)
                if merged.setdefault(name, text) != text:
                    raise ValueError(f"functions disagree on environment variable {name}")
        return merged

    def routes(self) -> list[Route]:
        routes = []
        keys_required = bool(self._api().get("Auth", {}).get("ApiKeyRequired", False))
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") != "Api":
                    continue
                path = event["Properties"]["Path"]
                method = event["Properties"]["Method"].upper()
                pattern, names = _path_pattern(path)
                auth = event["Properties"].get("Auth", {})
                authorized = auth.get("Authorizer") != "NONE"
                key_required = bool(auth.get("ApiKeyRequired", keys_required))
                named = auth.get("Authorizer") or self._api().get("Auth", {}).get("DefaultAuthorizer", "")
                route = Route(
                    method, path, logical_id, pattern, names, authorized, key_required, named if authorized else ""
                )
                routes.append(route)
        # Literal segments before parameters, as API Gateway prefers the most specific resource.
        return sorted(routes, key=lambda r: (r.path.count("{"), -len(r.path)))

    def queue_sources(self) -> list[QueueSource]:
        sources = []
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") != "SQS":
                    continue
                properties = event["Properties"]
                queue = properties["Queue"]["Fn::GetAtt"][0]
                failures = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
                sources.append(QueueSource(logical_id, queue, int(properties.get("BatchSize", 10)), failures))
        return sources

    def schedules(self) -> dict[str, float]:
        """Each function an EventBridge schedule runs, with its period in seconds (`rate(...)` events)."""
        periods = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") == "Schedule":
                    periods[logical_id] = _rate_seconds(event["Properties"]["Schedule"])
        return periods

    def _api(self) -> dict[str, Any]:
        return dict(next(iter(self.of_type("AWS::Serverless::Api").values()))["Properties"])

    def api_key_source(self) -> str:
        """Where API Gateway takes a request's API key: the x-api-key header, or the authorizer's answer."""
        return str(self._api().get("ApiKeySourceType", "HEADER"))

    def method_throttles(self) -> dict[tuple[str, str], Throttle]:
        """The stage's MethodSettings throttles by (resource path, method): `("/*", "*")` is the setting
        every other method gets, each method on its own (API Gateway applies them per method)."""
        throttles = {}
        paths = {route.path for route in self.routes()}
        for setting in self.resolve(self._api().get("MethodSettings", [])):
            if "ThrottlingRateLimit" not in setting:
                continue
            path = str(setting["ResourcePath"])
            # MethodSettings name a path with its slashes as ~1 (/~1api~1docs, `~` as ~0); `/*` is all.
            if path != "/*":
                path = path[1:].replace("~1", "/").replace("~0", "~") or "/"
                if path not in paths:
                    raise ValueError(f"MethodSettings name {setting['ResourcePath']}, which no route has")
            burst = setting["ThrottlingBurstLimit"]
            if not isinstance(burst, int):
                raise ValueError(f"ThrottlingBurstLimit must be a whole number, not {burst!r}")
            throttles[(path, str(setting["HttpMethod"]))] = Throttle(float(setting["ThrottlingRateLimit"]), burst)
        return throttles

    def authorizer(self, name: str = "") -> Authorizer:
        """An authorizer of the API by name (the default one without)."""
        auth = self._api()["Auth"]
        definition = auth["Authorizers"][name or auth["DefaultAuthorizer"]]
        function = definition["FunctionArn"]["Fn::GetAtt"][0]
        identity = definition.get("Identity", {})
        return Authorizer(
            function,
            tuple(identity.get("Headers", [])),
            int(identity.get("ReauthorizeEvery", 300)),
            tuple(identity.get("QueryStrings", [])),
        )

    def authorizers(self) -> dict[str, Authorizer]:
        return {name: self.authorizer(name) for name in self._api().get("Auth", {}).get("Authorizers", {})}

    def gateway_responses(self) -> dict[str, GatewayResponse]:
        responses = {}
        for kind, spec in self._api().get("GatewayResponses", {}).items():
            body = spec.get("ResponseTemplates", {}).get("application/json", "")
            headers = spec.get("ResponseParameters", {}).get("Headers", {})
            # Static header values are quoted ('1'), as in API Gateway's mapping expressions; the local
            # front door resolves no other expression, so it refuses them rather than send them as text.
            fixed = tuple((name, _static_header(kind, name, value)) for name, value in headers.items())
            # Without a StatusCode, API Gateway keeps the status of what happened (502 for a failed Lambda).
            status = int(spec["StatusCode"]) if "StatusCode" in spec else None
            responses[kind] = GatewayResponse(status, body, fixed)
        return responses

    def stage(self) -> str:
        return str(self.resolve(self._api().get("StageName", "Prod")))


def _static_header(kind: str, name: str, value: object) -> str:
    text = str(value)
    if len(text) < 2 or not (text.startswith("'") and text.endswith("'")):
        raise ValueError(f"{kind} header {name}: the local stack takes quoted static values only, not {text}")
    return text[1:-1]


def sam_translated(template: Template) -> dict[str, Any]:
    """The template as SAM deploys it (CloudFormation resources), by `aws-sam-translator`, the library
    `sam build` and `sam deploy` use."""
    import boto3  # noqa: PLC0415
    from samtranslator.parser.parser import Parser  # noqa: PLC0415 - a dev-only dependency
    from samtranslator.translator.translator import Translator  # noqa: PLC0415

    document = copy.deepcopy(template.document)
    for resource in document["Resources"].values():
        # SAM checks that code locations are S3 URIs; sam build puts them there. The code is not needed here.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://local/code"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://local/layer"
    translator = Translator({}, Parser(), boto_session=boto3.Session(region_name=LOCAL_REGION))
    return dict(translator.translate(document, parameter_values={}, get_managed_policy_map=dict))


def _rate_seconds(expression: str) -> float:
    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not found:
        raise ValueError(f"the local stack runs rate(...) schedules only, not {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86_400}[found.group(2).rstrip("s")]
    return float(found.group(1)) * unit


def queue_url(name: str) -> str:
    """A queue's URL in AWS's form; SQS (and moto) find the queue by its last segment and the caller's account."""
    return f"https://sqs.{LOCAL_REGION}.amazonaws.com/{LOCAL_ACCOUNT}/{name}"


def _path_pattern(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts, names = [], []
    for segment in path.strip("/").split("/"):
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        single = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            names.append(greedy.group(1))
            parts.append(f"(?P<{greedy.group(1)}>.+)")
        elif single:
            names.append(single.group(1))
            parts.append(f"(?P<{single.group(1)}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    # REST APIs treat /a/b and /a/b/ alike: every endpoint answers with and without the slash.
    return re.compile("^/" + "/".join(parts) + "/?$"), tuple(names)


def load_template(path: Path = TEMPLATE_PATH, overrides: dict[str, str] | None = None) -> Template:
    with path.open(encoding="utf-8") as handle:
        return Template(yaml.load(handle, Loader=_CfnLoader), overrides)  # noqa: S506 - SafeLoader subclass


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`Name=Value` pairs, as `sam deploy --parameter-overrides` takes them."""
    overrides = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise ValueError(f"a parameter override is Name=Value, not {pair!r}")
        overrides[name.strip()] = value.strip()
    return overrides


def _parameter_value(name: str, spec: dict[str, Any] | None, text: str) -> Any:
    if spec is None:
        raise ValueError(f"the template has no parameter {name}")
    allowed = spec.get("AllowedValues")
    if spec.get("Type") != "Number":
        if allowed is not None and text not in [str(v) for v in allowed]:
            raise ValueError(f"parameter {name} must be one of {allowed}")
        pattern = spec.get("AllowedPattern")
        try:
            matches = pattern is None or re.fullmatch(pattern, text) is not None
        except re.error:  # a Java-only construct (\p{...}): refused, not skipped
            raise ValueError(f"parameter {name}: the local stack cannot check the pattern {pattern}") from None
        if not matches:
            raise ValueError(f"parameter {name} must match {pattern}")
        shortest, longest = int(spec.get("MinLength", 0)), int(spec.get("MaxLength", 4096))
        if not shortest <= len(text) <= longest:
            raise ValueError(f"parameter {name} must be {shortest} to {longest} characters long")
        return text
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"parameter {name} must be a number, not {text!r}")
    number = float(text)
    value: float | int = int(text) if "." not in text else number
    low, high = spec.get("MinValue"), spec.get("MaxValue")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"parameter {name} must be between {low} and {high}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"parameter {name} must be one of {allowed}")
    return value
