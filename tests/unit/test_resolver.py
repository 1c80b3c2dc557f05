"""The API functions' resolver (`reportserver.http.resolver`) routes as Powertools' APIGatewayRestResolver
did, which it replaced to save its import at every cold start: the same handler and path values for
every route the handlers declare, and the same proxy response."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler import Response as PowertoolsResponse
from hypothesis import given
from hypothesis import strategies as st
from reportserver.http.api import install_error_handlers, json_body, json_response
from reportserver.http.resolver import Resolver, Response

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events/api_call_report.json").read_text(encoding="utf-8"))
ROUTES = sorted(
    {
        (method.upper(), path)
        for handler in ROOT.glob("functions/*/handler.py")
        for method, path in re.findall(r'@app\.(get|post|put|delete)\("([^"]+)"\)', handler.read_text("utf-8"))
    }
)


def _both() -> tuple[Resolver, APIGatewayRestResolver]:
    ours, theirs = Resolver(), APIGatewayRestResolver()
    for number, (method, rule) in enumerate(ROUTES):
        ours.route(rule, method)(_answering(number, Response))
        theirs.route(rule, method)(_answering(number, PowertoolsResponse))
    return ours, theirs


def _answering(number: int, response: Any) -> Any:
    """A handler that answers which route it is and the path's values it was given."""

    def handler(**values: str) -> Any:
        return response(200, "application/json", json.dumps({"route": number, "values": values}))

    return handler


OURS, THEIRS = _both()
PART = st.text(st.sampled_from(list("abcXYZ019-._~()'!*:@,;=+&$%<> []{}|^é/?#\\\"")), min_size=0, max_size=8)


def _event(method: str, path: str) -> dict[str, Any]:
    return {**EVENT, "httpMethod": method, "path": path}


def _answer(result: dict[str, Any]) -> tuple[int, Any]:
    body = result["body"]
    return result["statusCode"], json.loads(body) if result["statusCode"] == 200 else None


@given(
    st.sampled_from(ROUTES),
    st.lists(PART, min_size=4, max_size=4),
    st.sampled_from(["", "/", "//"]),
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_every_declared_route_resolves_as_powertools_resolved_it(
    route: tuple[str, str], values: list[str], ending: str, method: str
) -> None:
    # Given a path made from a declared route, its parts any text (slashes, escapes, nothing)
    parts = iter(values)
    path = re.sub(r"<\w+>", lambda _: next(parts), route[1].rstrip("/")) + ending
    # When both resolvers route it
    ours, theirs = OURS.resolve(_event(method, path)), THEIRS.resolve(_event(method, path), None)
    # Then the same handler gets the same values (or both find none: 404)
    assert _answer(ours) == _answer(theirs), path


def test_a_response_is_the_proxy_powertools_made() -> None:
    ours, theirs = Resolver(), APIGatewayRestResolver()
    headers = {"Location": "/x", "Set-Cookie": "a=1; Secure"}
    ours.get("/r/<n>")(lambda n: Response(302, "text/plain", n, headers))
    theirs.get("/r/<n>")(lambda n: PowertoolsResponse(302, "text/plain", n, headers))
    mine, powertools = ours.resolve(_event("GET", "/r/7/")), theirs.resolve(_event("GET", "/r/7/"), None)
    assert mine == {**powertools, "multiValueHeaders": dict(powertools["multiValueHeaders"])}


def test_headers_are_read_in_any_case_and_a_base64_body_decoded() -> None:
    app = Resolver()
    seen: list[Any] = []

    def read() -> Response[str]:
        seen.append((app.current_event.headers.get("content-type"), app.current_event.decoded_body))
        return Response(204, "text/plain", "")

    app.post("/f")(read)
    event = {
        **_event("POST", "/f"),
        "headers": {"Content-Type": "text/csv"},
        "isBase64Encoded": True,
        "body": base64.b64encode("é,1".encode()).decode(),
    }
    assert app.resolve(event)["statusCode"] == 204
    assert seen == [("text/csv", "é,1")]


def test_an_error_goes_to_the_handler_of_its_nearest_class_and_no_handler_means_it_is_raised() -> None:
    app = Resolver()

    class Refused(ValueError):
        pass

    app.exception_handler(ValueError)(lambda e: Response(400, "text/plain", "value"))
    app.exception_handler(Exception)(lambda e: Response(500, "text/plain", "other"))
    app.get("/refused")(lambda: (_ for _ in ()).throw(Refused()))
    app.get("/broken")(lambda: 1 / 0)
    app.get("/plain")(lambda: {"not": "a Response"})
    bodies = [app.resolve(_event("GET", p))["body"] for p in ("/refused", "/broken", "/plain")]
    assert bodies == ["value", "other", "other"]
    bare = Resolver()
    bare.get("/broken")(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bare.resolve(_event("GET", "/broken"))
    assert bare.resolve(_event("GET", "/nothing"))["statusCode"] == 404  # no handler: a plain 404
    bare.not_found(lambda e: Response(404, "text/plain", str(e)))
    assert bare.resolve(_event("GET", "/nothing"))["body"] == "GET /nothing"


def test_bytes_are_sent_base64() -> None:
    app = Resolver()
    app.get("/b")(lambda: Response(200, "application/octet-stream", b"\x00\xff"))
    answer = app.resolve(_event("GET", "/b"))
    assert answer["isBase64Encoded"] is True and base64.b64decode(answer["body"]) == b"\x00\xff"


@pytest.mark.parametrize(("method", "rule"), ROUTES)
def test_each_declared_route_is_found_with_its_values(method: str, rule: str) -> None:
    path = re.sub(r"<(\w+)>", lambda m: f"{m.group(1)}-1", rule)
    status, answer = _answer(OURS.resolve(_event(method, path)))
    assert status == 200 and answer["values"] == {n: f"{n}-1" for n in re.findall(r"<(\w+)>", rule)}
    assert (status, answer) == _answer(THEIRS.resolve(_event(method, path), None))


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "text/csv; charset=utf-8"}, "a,b"),  # a header given wins over the content type
        ({"X-Empty": None, "X-Kept": "1"}, "x"),  # a header without a value is left out
        ({}, None),
    ],
)
def test_response_headers_and_bodies_are_sent_as_powertools_sent_them(headers: dict[str, Any], body: Any) -> None:
    ours, theirs = Resolver(), APIGatewayRestResolver()
    ours.get("/r")(lambda: Response(200, "text/plain", body, headers))
    theirs.get("/r")(lambda: PowertoolsResponse(200, "text/plain", body, headers))
    mine, powertools = ours.resolve(_event("GET", "/r")), theirs.resolve(_event("GET", "/r"), None)
    assert mine == {**powertools, "multiValueHeaders": dict(powertools["multiValueHeaders"])}


def test_a_route_without_parts_is_tried_before_one_with_parts_whatever_the_order_declared() -> None:
    ours, theirs = Resolver(), APIGatewayRestResolver()
    for app, response in ((ours, Response), (theirs, PowertoolsResponse)):
        app.get("/t/<n>")(lambda n, response=response: response(200, "text/plain", f"part {n}"))
        app.get("/t/me")(lambda response=response: response(200, "text/plain", "me"))
    for path in ("/t/me", "/t/you"):
        assert ours.resolve(_event("GET", path))["body"] == theirs.resolve(_event("GET", path), None)["body"]
    assert ours.resolve(_event("GET", "/t/me"))["body"] == "me"


class _Named(msgspec.Struct, forbid_unknown_fields=True):
    name: str


@pytest.mark.parametrize("raw", [b'{"name":"\xff"}', b"not base64 at all!", "\u00e9".encode()])
def test_a_body_that_is_not_utf8_text_is_refused_never_stored_with_replaced_characters(raw: bytes) -> None:
    app = Resolver()
    install_error_handlers(app)
    app.post("/n")(lambda: json_response({"name": json_body(app, _Named).name}))
    body = base64.b64encode(raw).decode() if raw.startswith(b"{") else raw.decode()
    answer = app.resolve({**_event("POST", "/n"), "isBase64Encoded": True, "body": body})
    assert answer["statusCode"] == 400 and "base64-encoded UTF-8" in answer["body"]
