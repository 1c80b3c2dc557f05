"""What a failed login or token tells by its cost: an unknown user and a wrong password, an unknown token
name and a wrong secret, cost the same reads and (within noise, over many tries) the same time."""

from __future__ import annotations

import copy
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend
from reportserver.domain.tokens import basic_header

from tests.bad_inputs import new_token
from tests.integration.conftest import USER_PASSWORD, Stack
from tests.integration.test_events import event

TRIES = 60


@contextmanager
def counted_reads() -> Iterator[Counter[str]]:
    """Every DynamoDB read moto serves meanwhile, by operation."""
    counts: Counter[str] = Counter()
    originals = {name: getattr(DynamoDBBackend, name) for name in ("get_item", "query", "scan", "batch_get_item")}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def read(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return read

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, counting(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


def _medians_ms(first: Callable[[int], object], second: Callable[[int], object]) -> tuple[float, float]:
    """Both attempts' median times, taken in turns, so that the machine's drift falls on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for number in range(TRIES):
        for attempt, kept in (
            ((first, times[0]), (second, times[1])) if number % 2 else ((second, times[1]), (first, times[0]))
        ):
            start = time.perf_counter()
            attempt(number)
            kept.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def _within_noise(
    first: Callable[[int], object], second: Callable[[int], object], low: float, high: float
) -> list[float]:
    """The ratio of the medians, measured up to three times: a real difference shows in every
    measurement, a busy moment of this shared machine in one. Returns the ratios measured."""
    ratios = []
    for _ in range(3):
        first_ms, second_ms = _medians_ms(first, second)
        ratios.append(second_ms / first_ms)
        print(f"{first.__name__} {first_ms:.2f} ms, {second.__name__} {second_ms:.2f} ms, ratio {ratios[-1]:.3f}")
        if low < ratios[-1] < high:
            return ratios
    raise AssertionError(f"the ratios {[round(r, 3) for r in ratios]} were all outside {low}-{high}")


def _fresh_users(stack: Stack, count: int) -> list[str]:
    return [stack.operator_user()["userName"] for _ in range(count)]


def test_an_unknown_user_and_a_wrong_password_read_the_same_and_take_the_same_time(stack: Stack) -> None:
    users = _fresh_users(stack, 3 * TRIES + 1)  # one wrong guess each: no back-off comes into it
    left = iter(users)

    def wrong(number: int) -> object:
        return stack.login(next(left), "a wrong password", source_ip=f"198.18.0.{number}")

    def unknown(number: int) -> object:
        return stack.login(f"ghost-{uuid.uuid4().hex[:8]}", "a wrong password", source_ip=f"198.18.1.{number}")

    with counted_reads() as for_wrong:
        assert wrong(TRIES).status == 400  # type: ignore[attr-defined]
    with counted_reads() as for_unknown:
        assert unknown(TRIES).status == 400  # type: ignore[attr-defined]
    assert for_wrong == for_unknown, (for_wrong, for_unknown)
    _within_noise(wrong, unknown, 0.8, 1.25)


@pytest.fixture
def authorizer_event() -> dict[str, Any]:
    return copy.deepcopy(event("authorizer_request.json"))


def test_an_unknown_token_name_and_a_wrong_secret_read_the_same_and_take_the_same_time(
    stack: Stack, authorizer_event: dict[str, Any]
) -> None:
    name = f"timed-{uuid.uuid4().hex[:6]}"
    new_token(stack.tokens, stack.usage, name)
    from reportserver.domain.tokens import generate_secret

    def ask(header: str) -> dict[str, Any]:
        authorizer_event["headers"]["Authorization"] = header
        return stack.api.invoke("AuthFunction", authorizer_event)

    def wrong(_: int) -> object:
        return ask(basic_header(name, generate_secret()))

    def unknown(_: int) -> object:
        return ask(basic_header(f"ghost-{uuid.uuid4().hex[:8]}", generate_secret()))

    with counted_reads() as for_wrong:
        assert wrong(0)["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    with counted_reads() as for_unknown:
        assert unknown(0)["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    assert for_wrong == for_unknown, (for_wrong, for_unknown)
    _within_noise(wrong, unknown, 0.75, 1.33)


def test_the_guess_of_a_user_is_not_told_by_a_held_back_answer(stack: Stack) -> None:
    # Unknown names are counted and held back as known ones are: a 429 tells nothing of who exists
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    real = _fresh_users(stack, 1)[0]
    for who in (ghost, real):
        statuses = [stack.login(who, "a wrong password", source_ip="198.18.9.9").status for _ in range(4)]
        assert statuses == [400, 400, 400, 429], (who, statuses)
    assert USER_PASSWORD
