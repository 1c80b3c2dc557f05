"""A local front door on a controlled clock, and tokens for it: what the gateway tests share."""

from __future__ import annotations

from reportserver.domain.tokens import basic_header

from infra.local.frontdoor import LocalApi
from tests.bad_inputs import new_token
from tests.integration.conftest import TEMPLATE, Stack


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def clocked_api(stack: Stack) -> tuple[LocalApi, Clock]:
    """A front door of its own (its own authorizer cache and buckets), on a clock the test moves."""
    clock = Clock()
    return LocalApi(TEMPLATE, stack.api.identities, clock=clock), clock


def token_header(stack: Stack, name: str) -> str:
    """A new day-long token of every group, with its API key: its Basic header."""
    return basic_header(name, new_token(stack.tokens, stack.usage, name))
