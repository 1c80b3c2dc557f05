"""The local HTTP front door: what API Gateway does, for the handlers the template routes to.

Each request becomes the REST API proxy event; the template's REQUEST authorizer runs first and
its Allow or Deny decides, with the template's gateway responses for refusals. A lock per function
makes each behave like one warm Lambda container: one invocation at a time.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from reportserver.http.lambda_proxy import LAMBDA_RESPONSE_LIMIT_BYTES, serialised_size
from reportserver.store import aws

from infra.local import gateway_cache
from infra.local.template import LOCAL_ACCOUNT, LOCAL_API_ID, LOCAL_REGION, GatewayResponse, Route, Template
from infra.local.usage import Throttles

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_ID = LOCAL_API_ID
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit (REST APIs): 10 MB
MAX_CACHED_DECISIONS = 10_000  # the local authorizer cache's bound (every new header is an entry)
TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript))")


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    timeout_seconds: float = 29.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class LocalApi:
    def __init__(
        self,
        template: Template,
        identities: dict[str, dict[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        throttled: bool = True,
    ) -> None:
        # Each function's credentials (its role, see infra.local.iam); None: the process's own.
        self.identities = identities or {}
        self._routes = template.routes()
        self._functions = template.functions()
        self._authorizers = template.authorizers()
        self._responses = template.gateway_responses()
        self._stage = template.stage()
        self._handlers: dict[str, Handler] = {}
        # API Gateway's authorizer cache: the decision for an identity (its headers' values) is reused,
        # for every route, until ReauthorizeEvery has passed; the policy is checked against each route.
        self._clock = clock
        self._decisions: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
        self._decisions_lock = threading.Lock()
        gateway_cache.register(API_ID, self._stage, self.flush_authorizer_cache)
        self._locks = {name: threading.Lock() for name in self._functions}
        # The stage's throttle and each token's usage plan, as API Gateway applies them (False: none, as
        # an API without either; the benchmark's baseline).
        self._key_source = template.api_key_source()
        self._throttles = Throttles(API_ID, self._stage, template.method_throttles(), clock) if throttled else None
        default_timeout = template.document.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        self._timeouts = {
            name: float(resource["Properties"].get("Timeout", default_timeout))
            for name, resource in template.of_type("AWS::Serverless::Function").items()
        }

    def handler(self, logical_id: str) -> Handler:
        if logical_id not in self._handlers:
            module_name, function_name = self._functions[logical_id].handler.rsplit(".", 1)
            self._handlers[logical_id] = getattr(importlib.import_module(module_name), function_name)
        return self._handlers[logical_id]

    def cold_start(self, logical_id: str) -> None:
        """A new container for this function: its handler module loaded afresh, with none of its caches."""
        module_name, function_name = self._functions[logical_id].handler.rsplit(".", 1)
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.loader is None:
            raise ImportError(module_name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with self._locks[logical_id]:
            self._handlers[logical_id] = getattr(module, function_name)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        if self.identities and logical_id not in self.identities:
            # IAM is enforced: a function without a role of its own never runs with another's rights.
            raise PermissionError(f"{logical_id} has no role of its own")
        handler = self.handler(logical_id)
        with self._locks[logical_id]:
            # The context counts down from the function's own timeout, as Lambda's does.
            context = LambdaContext(logical_id, str(uuid.uuid4()), timeout_seconds=self._timeouts[logical_id])
            with aws.acting_as(self.identities.get(logical_id)):
                return handler(event, context)

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        split = urlsplit(target)
        raw_path = split.path or "/"
        route, path_parameters = self._route(method, raw_path)
        if route is None:
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", {}, default_status=404)
        if self._throttles is not None and not self._throttles.admit_method(route.path, route.method):
            return self._gateway_response("THROTTLED", {}, default_status=429)
        event = self._proxy_event(
            method=method,
            raw_path=raw_path,
            query=split.query,
            headers=headers,
            body=body,
            route=route,
            path_parameters=path_parameters,
            source_ip=source_ip,
        )
        usage_key, refusal = None, None
        if route.authorized:
            authorizer_context, usage_key, refusal = self._authorize(event, route)
            event["requestContext"]["authorizer"] = authorizer_context
        refusal = refusal or self._count_against_key(route, usage_key, headers, event)
        if refusal is not None:
            return refusal
        return self._integrate(route, event)

    def _integrate(self, route: Route, event: dict[str, Any]) -> HttpResponse:
        """The Lambda proxy integration: the function's answer, or API Gateway's 502 for a failure."""
        try:
            result = self.invoke(route.function, event)
        except Exception:
            return self._gateway_response("DEFAULT_5XX", {}, default_status=502)
        if serialised_size(result) > LAMBDA_RESPONSE_LIMIT_BYTES:
            # As on AWS: Lambda refuses to return a response over 6 MB, and API Gateway answers 502.
            return self._gateway_response("DEFAULT_5XX", {}, default_status=502)
        return _http_response(result)

    def _count_against_key(
        self, route: Route, usage_key: str | None, headers: list[tuple[str, str]], event: dict[str, Any]
    ) -> HttpResponse | None:
        """A method that requires an API key: the key's usage plan admits the request, or refuses it."""
        if not route.api_key_required or self._throttles is None:
            return None
        if self._key_source == "HEADER":
            usage_key = next((v for k, v in headers if k.lower() == "x-api-key"), None)
        refused = self._throttles.admit_key(usage_key)
        if refused is not None:
            return self._gateway_response(refused, {}, default_status=429 if refused == "THROTTLED" else 403)
        event["requestContext"]["identity"]["apiKey"] = usage_key
        return None

    def _route(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method in (method, "ANY"):
                found = route.match(raw_path)
                if found is not None:
                    return route, {k: unquote(v) for k, v in found.items()}
        return None, {}

    def _proxy_event(
        self,
        *,
        method: str,
        raw_path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        route: Route,
        path_parameters: dict[str, str],
        source_ip: str,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        is_text = not body or bool(TEXT_TYPES.match(content_type)) or "form-urlencoded" in content_type
        now = time.time()
        return {
            "resource": route.path,
            "path": raw_path,
            "httpMethod": method,
            "headers": {k: v[-1] for k, v in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": LOCAL_ACCOUNT,
                "apiId": API_ID,
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self._stage}{raw_path}",
                "stage": self._stage,
                "protocol": "HTTP/1.1",
                "requestId": str(uuid.uuid4()),
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [""])[-1]},
                "domainName": "127.0.0.1",
            },
            "body": (body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode()) or None,
            "isBase64Encoded": not is_text,
        }

    def _authorize(self, event: dict[str, Any], route: Route) -> tuple[dict[str, Any], str | None, HttpResponse | None]:
        """The authorizer's context, the API key it names (usageIdentifierKey), or the refusal."""
        authorizer = self._authorizers[route.authorizer]
        lowered = {k.lower(): v for k, v in event["headers"].items()}
        query = event["queryStringParameters"] or {}
        identity = (
            route.authorizer,
            *(lowered.get(h.lower(), "") for h in authorizer.identity_headers),
            *(query.get(q, "") for q in authorizer.identity_query),
        )
        # With its cache on, API Gateway calls an authorizer only when every identity source is there
        # (they key the cache); with it off (ReauthorizeEvery 0) it calls it on every request.
        if authorizer.cache_seconds > 0 and any(not part.strip() for part in identity[1:]):
            return {}, None, self._gateway_response("UNAUTHORIZED", {}, default_status=401)
        api_arn = f"arn:aws:execute-api:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{API_ID}"
        method_arn = f"{api_arn}/{self._stage}/{event['httpMethod']}{event['path']}"
        request = {
            key: event[key]
            for key in (
                "resource",
                "path",
                "httpMethod",
                "headers",
                "multiValueHeaders",
                "queryStringParameters",
                "multiValueQueryStringParameters",
                "pathParameters",
                "stageVariables",
                "requestContext",
            )
        }
        request.update(type="REQUEST", methodArn=method_arn)
        decision = self._cached_decision(identity) if authorizer.cache_seconds > 0 else None
        if decision is None:
            try:
                decision = self.invoke(authorizer.function, request)
            except Exception as error:
                kind = "UNAUTHORIZED" if str(error) == "Unauthorized" else "AUTHORIZER_FAILURE"
                status = 401 if kind == "UNAUTHORIZED" else 500
                return {}, None, self._gateway_response(kind, {}, default_status=status)
            self._cache_decision(identity, decision, authorizer.cache_seconds)
        context = {k: str(v) for k, v in (decision.get("context") or {}).items()}
        statements = decision.get("policyDocument", {}).get("Statement", [])
        allowed = any(s.get("Effect") == "Allow" and _covers(s, method_arn) for s in statements)
        denied = any(s.get("Effect") == "Deny" and _covers(s, method_arn) for s in statements)
        if denied or not allowed:
            return {}, None, self._gateway_response("ACCESS_DENIED", context, default_status=403)
        usage_key = decision.get("usageIdentifierKey")
        return {**context, "principalId": decision.get("principalId", "")}, usage_key, None

    def flush_authorizer_cache(self) -> None:
        """What FlushStageAuthorizersCache does: every cached decision goes (see infra.local.gateway_cache)."""
        with self._decisions_lock:
            self._decisions.clear()

    def _cached_decision(self, identity: tuple[str, ...]) -> dict[str, Any] | None:
        with self._decisions_lock:
            cached = self._decisions.get(identity)
            if cached is None or cached[0] <= self._clock():
                self._decisions.pop(identity, None)
                return None
            return cached[1]

    def _cache_decision(self, identity: tuple[str, ...], decision: dict[str, Any], seconds: int) -> None:
        if seconds > 0:
            with self._decisions_lock:
                if len(self._decisions) >= MAX_CACHED_DECISIONS:  # expired ones first, then the oldest
                    now = self._clock()
                    for stale in [k for k, (until, _) in self._decisions.items() if until <= now]:
                        del self._decisions[stale]
                    while len(self._decisions) >= MAX_CACHED_DECISIONS:
                        del self._decisions[next(iter(self._decisions))]
                self._decisions[identity] = (self._clock() + seconds, decision)

    def gateway_refusal(self, kind: str, status: int) -> HttpResponse:
        """A refusal by API Gateway itself, before any function runs (a body too large, say)."""
        return self._gateway_response(kind, {}, default_status=status)

    def _gateway_response(self, kind: str, context: dict[str, str], default_status: int) -> HttpResponse:
        configured = self._responses.get(kind) or self._default_response(kind, default_status)
        body = re.sub(
            r"\$context\.authorizer\.(\w+)",
            lambda m: json.dumps(context.get(m.group(1), ""))[1:-1],
            configured.body,
        )
        # API Gateway's own message, quoted (messageString is the JSON string of $context.error.message).
        body = body.replace("$context.error.messageString", json.dumps(_GATEWAY_MESSAGES.get(kind, "Bad request")))
        headers = [("Content-Type", "application/json"), *configured.headers]
        return HttpResponse(configured.status or default_status, headers, body.encode())

    def _default_response(self, kind: str, status: int) -> GatewayResponse:
        fallback = self._responses.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX")
        message = {401: "Unauthorized", 403: "Forbidden", 404: "Not found"}.get(status, "Internal error")
        body = fallback.body if fallback else json.dumps({"message": message})
        return GatewayResponse(status, body)


# $context.error.message of the gateway responses the local front door gives (API Gateway's wording).
_GATEWAY_MESSAGES = {
    "UNAUTHORIZED": "Unauthorized",
    "ACCESS_DENIED": "User is not authorized to access this resource",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "BAD_REQUEST_BODY": "Invalid request body",
    "AUTHORIZER_FAILURE": "Internal server error",
    "THROTTLED": "Too Many Requests",
    "INVALID_API_KEY": "Forbidden",
    "DEFAULT_5XX": "Internal server error",
}


def _covers(statement: dict[str, Any], method_arn: str) -> bool:
    """Whether a policy statement's Resource matches this request's method ARN (`*` and `?` wildcards),
    as API Gateway checks a policy, cached or not, on every request."""
    resources = statement.get("Resource", [])
    for resource in [resources] if isinstance(resources, str) else resources:
        pattern = "^" + re.escape(resource).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        if re.match(pattern, method_arn):
            return True
    return False


def _http_response(result: dict[str, Any]) -> HttpResponse:
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return HttpResponse(int(result.get("statusCode", 200)), headers, payload)


class _RequestHandler(BaseHTTPRequestHandler):
    api: LocalApi
    protocol_version = "HTTP/1.1"
    server_version = "reportserver-local"

    def _serve(self) -> None:
        lengths = self.headers.get_all("Content-Length") or ["0"]
        declared = lengths[0].strip()
        if len(lengths) > 1 or self.headers.get("Transfer-Encoding"):
            # Two lengths, or a chunked body next to (or instead of) one: refused, never guessed at, so
            # that no body can be read as the next request (request smuggling).
            self.close_connection = True
            response = self.api.gateway_refusal("BAD_REQUEST_BODY", 400)
        elif not declared.isascii() or not declared.isdigit():
            # A negative or malformed length: refused before anything is read, as the AWS front end does.
            self.close_connection = True
            response = self.api.gateway_refusal("BAD_REQUEST_BODY", 400)
        elif len(declared) > len(str(MAX_REQUEST_BODY_BYTES)) or int(declared) > MAX_REQUEST_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            response = self.api.gateway_refusal("REQUEST_TOO_LARGE", 413)
        else:
            length = int(declared)
            body = self.rfile.read(length) if length else b""
            headers = list(self.headers.items())
            response = self.api.handle(self.command, self.path, headers, body, self.client_address[0])
        self.send_response(
            response.status,
            HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else "",
        )
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[http] {self.address_string()} {format % args}", flush=True)


def serve(api: LocalApi, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundRequestHandler", (_RequestHandler,), {"api": api})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
