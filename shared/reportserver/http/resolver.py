"""API Gateway's REST proxy events routed to the API functions' handlers.

What the API functions used of Powertools' `APIGatewayRestResolver`, and nothing more: routes with
`<name>` parts (given to the handler by name), a trailing slash ignored, the method matched exactly,
exception handlers found along the exception's classes, a not-found handler, and the proxy response with
`multiValueHeaders`. Importing Powertools' event handler (every resolver it has: AppSync, Bedrock,
Lattice...; every event class; asyncio) took about 180 ms of each API function's cold start, over half of
it (BENCHMARKS.md, "Cold imports"); this module takes about 4 ms.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Handler = TypeVar("Handler", bound=Callable[..., Any])

# A path part's characters, as Powertools matched them: RFC 3986's unreserved and sub-delimiters, and
# what a client may send unescaped.
_PART = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_NAME = re.compile(r"<(\w+)>")


class NotFoundError(Exception):
    """No route for the request's method and path."""


class Response(Generic[T]):
    """A proxy response: status, content type, body (text, or bytes sent base64) and headers."""

    def __init__(self, status_code: int, content_type: str, body: T, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.content_type = content_type
        self.body = body
        self.headers = dict(headers or {})

    def proxy(self) -> dict[str, Any]:
        """As Powertools made it: a header given wins over the content type, one without a value is left
        out, bytes go base64."""
        headers = {name: [str(value)] for name, value in self.headers.items() if value is not None}
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = [self.content_type]
        body: Any = self.body
        encoded = isinstance(body, bytes | bytearray)
        text = base64.b64encode(body).decode("ascii") if encoded else body if body is None else str(body)
        return {"statusCode": self.status_code, "body": text, "isBase64Encoded": encoded, "multiValueHeaders": headers}


class Headers(Mapping[str, str]):
    """Request headers, by name in any case (HTTP's names are case-insensitive)."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._values = {name.lower(): value for name, value in raw.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _Identity:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.api_key: str | None = raw.get("apiKey")
        self.source_ip: str | None = raw.get("sourceIp")


class RequestContext:
    """The request context API Gateway adds: where the API is, and who called."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.api_id: str = raw.get("apiId") or ""  # API Gateway always sends both
        self.stage: str = raw.get("stage") or ""
        self.domain_name: str | None = raw.get("domainName")
        self.path: str = raw.get("path") or ""
        self.identity = _Identity(raw.get("identity") or {})


class ProxyEvent:
    """The parts of a REST API proxy event the handlers read."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw_event = raw
        self.path: str = raw.get("path") or "/"
        self.http_method: str = (raw.get("httpMethod") or "").upper()
        self.headers = Headers(raw.get("headers") or {})
        self.query_string_parameters: dict[str, str] | None = raw.get("queryStringParameters")
        self.multi_value_query_string_parameters: dict[str, list[str]] | None = raw.get(
            "multiValueQueryStringParameters"
        )
        self.request_context = RequestContext(raw.get("requestContext") or {})

    @property
    def decoded_body(self) -> str | None:
        """The body as text; a base64 body that is not UTF-8 raises UnicodeDecodeError (a ValueError),
        never text with replaced characters."""
        body = self.raw_event.get("body")
        if body is None or not self.raw_event.get("isBase64Encoded"):
            return body
        return base64.b64decode(body).decode("utf-8")


class _Route:
    def __init__(self, method: str, rule: str, handler: Callable[..., Any]) -> None:
        self.method = method
        self.rule = rule
        pieces, last = [], 0
        rule = rule.rstrip("/")
        for name in _NAME.finditer(rule):
            pieces += [re.escape(rule[last : name.start()]), f"(?P<{name.group(1)}>{_PART})"]
            last = name.end()
        pieces.append(re.escape(rule[last:]))
        self.pattern = re.compile("^" + "".join(pieces) + "/*$")
        self.handler = handler


class Resolver:
    """Routes REST API proxy events to the handlers registered with `get`, `post`, `put`, `delete`."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._exception_handlers: dict[type[BaseException], Callable[[Any], Response[Any]]] = {}
        self._current: ProxyEvent | None = None

    @property
    def current_event(self) -> ProxyEvent:
        if self._current is None:
            raise RuntimeError("no request is being resolved")
        return self._current

    def route(self, rule: str, method: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), rule, handler))
            # As Powertools: routes without <name> parts are tried first, each kind in the order declared.
            self._routes.sort(key=lambda r: "<" in r.rule)
            return handler

        return register

    def get(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route(rule, "GET")

    def post(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route(rule, "POST")

    def put(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route(rule, "PUT")

    def delete(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route(rule, "DELETE")

    def exception_handler(self, kind: type[BaseException]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._exception_handlers[kind] = handler
            return handler

        return register

    def not_found(self, handler: Handler) -> Handler:
        return self.exception_handler(NotFoundError)(handler)

    def resolve(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        self._current = ProxyEvent(event)
        try:
            return self._respond(self._current).proxy()
        finally:
            self._current = None

    def _respond(self, event: ProxyEvent) -> Response[Any]:
        try:
            for route in self._routes:
                if route.method != event.http_method:
                    continue
                matched = route.pattern.match(event.path)
                if matched:
                    return _checked(route.handler(**matched.groupdict()))
            raise NotFoundError(f"{event.http_method} {event.path}")
        except Exception as error:
            handler = self._handler_for(error)
            if handler is not None:
                return _checked(handler(error))
            if isinstance(error, NotFoundError):
                return Response(404, "application/json", '{"statusCode":404,"message":"Not found"}')
            raise

    def _handler_for(self, error: Exception) -> Callable[[Any], Response[Any]] | None:
        for kind in type(error).__mro__:
            if kind in self._exception_handlers:
                return self._exception_handlers[kind]
        return None


def _checked(result: Any) -> Response[Any]:
    if not isinstance(result, Response):
        raise TypeError(f"a handler returned {type(result).__name__}, not a Response")
    return result
