"""The OpenAPI document is made from the code's contract, and the contract is the template's routes."""

from __future__ import annotations

import json

from openapi_spec_validator import validate
from reportserver.http import contract

from infra.local.template import load_template

TEMPLATE = load_template()


def test_every_route_of_the_template_is_in_the_document_and_no_other() -> None:
    in_template = {(r.method, r.path) for r in TEMPLATE.routes()}
    document = json.loads(contract.openapi_document())
    in_document = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert in_template == in_document


def test_routes_without_the_authorizer_are_the_documents_the_login_and_mailed_links_and_need_no_token() -> None:
    open_routes = {(r.method, r.path) for r in TEMPLATE.routes() if not r.authorized}
    # The login takes a user's password in its form body: it is how a user gets a token at all. A link in a
    # job run's mail is its own credential (a 256-bit secret, stored hashed, expiring, revocable).
    assert open_routes == {
        ("GET", "/api/openapi.json"),
        ("GET", "/api/docs"),
        ("POST", "/oauth/token"),
        ("GET", "/api/links/{link}"),
    }
    documented = {(op.method, op.path) for op in contract.OPERATIONS if not op.authenticated}
    assert documented == open_routes


def test_the_document_is_valid_openapi_3_1() -> None:
    document = json.loads(contract.openapi_document("/Prod/"))
    validate(document)
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": "/Prod/"}]


def test_every_authenticated_operation_documents_the_refusals_it_can_give() -> None:
    for op in contract.OPERATIONS:
        if op.authenticated:
            assert {401, 429} <= set(op.responses), op.path
        if "{" in op.path:
            assert 404 in op.responses, op.path


def test_the_swagger_page_carries_its_own_script_and_the_document() -> None:
    page = contract.swagger_page("/")
    assert "SwaggerUIBundle" in page and "https://" not in page.split("<script>")[0]
    assert '"openapi":"3.1.0"' in page
