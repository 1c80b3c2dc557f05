"""Retries and leases with the template's own timings, on a clock the tests move by hand.

The local queue keeps a failed message hidden for the queue's visibility timeout (5400 s in the
template), as SQS does; the poller and the worker share a fake clock here, so a test can pass an hour
and a half in microseconds. Every timing is read from template.yaml, never copied.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from reportserver.domain.exports import retry_delay
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import parse_report
from reportserver.domain.tickets import TicketStatus
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.tickets import DynamoTicketStore

from infra.local.queues import QueuePoller, pollers, visibility_timeout
from tests.integration.conftest import TEMPLATE, Stack

WORKER = "ExportWorkerFunction"
WORKER_PROPERTIES = TEMPLATE.resources[WORKER]["Properties"]
LEASE_SECONDS = int(WORKER_PROPERTIES["Environment"]["Variables"]["EXPORT_LEASE_SECONDS"])
WORKER_TIMEOUT = int(WORKER_PROPERTIES["Timeout"])
VISIBILITY = visibility_timeout(TEMPLATE, "ExportQueue")
MAX_RECEIVES = int(TEMPLATE.resources["ExportQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"])


class Clock:
    """One fake time for the queue (monotonic seconds) and the worker (UTC datetimes)."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.elapsed = 0.0

    def seconds(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


@pytest.fixture
def clock(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """The worker function's worker on the fake clock, and the export queues emptied of other tests'
    messages."""
    fake = Clock()
    module = __import__("functions.export_worker.handler", fromlist=["worker"])
    stack.api.handler(WORKER)  # imported as the local stack imports it
    monkeypatch.setattr(module, "worker", dataclasses.replace(module.worker, clock=fake.now))
    stack.api.handler("ExportDeadLettersFunction")
    dead_letters = __import__("functions.export_dead_letters.handler", fromlist=["clock"])
    monkeypatch.setattr(dead_letters, "clock", fake.now)  # one clock for every function, as in AWS
    sqs = boto3.client("sqs")
    for queue in ("ExportQueue", "ExportDeadLetterQueue"):  # (PurgeQueue is allowed once a minute)
        url = sqs.get_queue_url(QueueName=stack.names[queue])["QueueUrl"]
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    yield fake


@pytest.fixture
def queue(stack: Stack, clock: Clock) -> list[QueuePoller]:
    return pollers(stack.api, TEMPLATE, clock.seconds)


@pytest.fixture
def tickets(stack: Stack) -> DynamoTicketStore:
    return DynamoTicketStore(stack.names["TicketsTable"])


def pending_ticket(stack: Stack) -> str:
    body = json.dumps({"report_name": "gst-balance", "format": "csv", "force_update": True}).encode()
    headers = [("Authorization", stack.headers["admin"]), ("Content-Type", "application/json")]
    response = stack.api.handle("POST", "/api/exports/", headers, body)
    assert response.status == 202, response.body
    return str(json.loads(response.body)["ticket_id"])


def poll(queue: list[QueuePoller]) -> int:
    return sum(poller.poll_once() for poller in queue)


def status(tickets: DynamoTicketStore, ticket_id: str) -> tuple[TicketStatus, int]:
    ticket = tickets.get(ticket_id)
    assert ticket is not None
    return ticket.status, ticket.attempt


def dying_worker(stack: Stack, tickets: DynamoTicketStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the worker function takes its ticket, then dies (as at a Lambda timeout)."""
    invoke = stack.api.invoke

    def dies(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        if logical_id != WORKER:
            return invoke(logical_id, event)
        for record in event["Records"]:
            ticket_id = json.loads(record["body"])["ticket_id"]
            tickets.claim(ticket_id, clock.now(), clock.now() + timedelta(seconds=LEASE_SECONDS))
        raise RuntimeError("Task timed out")

    monkeypatch.setattr(stack.api, "invoke", dies)


def test_the_templates_timings_never_let_a_retry_meet_a_dead_workers_live_lease() -> None:
    # A worker that dies is stopped by its timeout; its lease outlives that (a live worker always
    # holds its ticket), and the retry comes after the visibility timeout, when the lease has run out.
    assert WORKER_TIMEOUT < LEASE_SECONDS < VISIBILITY
    assert MAX_RECEIVES >= 2  # at least one retry before the dead-letter queue


def test_a_failed_delivery_comes_back_only_after_the_visibility_timeout(
    stack: Stack, queue: list[QueuePoller], tickets: DynamoTicketStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = pending_ticket(stack)
    with monkeypatch.context() as dying:
        dying_worker(stack, tickets, clock, dying)
        assert poll(queue) == 1
    assert status(tickets, ticket_id) == (TicketStatus.IN_PROGRESS, 1)

    clock.advance(VISIBILITY - 1)
    assert poll(queue) == 0  # still hidden, as in SQS
    assert status(tickets, ticket_id) == (TicketStatus.IN_PROGRESS, 1)

    clock.advance(1)
    assert poll(queue) == 1  # the retry: the dead worker's lease has run out, so it takes over
    assert status(tickets, ticket_id) == (TicketStatus.COMPLETE, 2)
    assert poll(queue) == 0 and sum(p.waiting for p in queue) == 0


def test_a_delivery_during_a_live_lease_waits_and_renders_once_the_lease_is_over(
    stack: Stack, queue: list[QueuePoller], tickets: DynamoTicketStore, clock: Clock
) -> None:
    ticket_id = pending_ticket(stack)
    # Another attempt holds the ticket, alive, for the template's lease.
    tickets.claim(ticket_id, clock.now(), clock.now() + timedelta(seconds=LEASE_SECONDS))
    assert poll(queue) == 1  # the worker finds the live lease: TicketBusy, the message goes back
    assert status(tickets, ticket_id) == (TicketStatus.IN_PROGRESS, 1)
    assert sum(p.waiting for p in queue) == 1

    clock.advance(VISIBILITY)
    assert poll(queue) == 1
    assert status(tickets, ticket_id) == (TicketStatus.COMPLETE, 2)


def test_after_max_receives_the_message_dead_letters_and_its_ticket_fails(
    stack: Stack, queue: list[QueuePoller], tickets: DynamoTicketStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = pending_ticket(stack)
    dying_worker(stack, tickets, clock, monkeypatch)
    for receive in range(1, MAX_RECEIVES + 1):
        assert poll(queue) == 1, f"receive {receive}"
        assert status(tickets, ticket_id) == (TicketStatus.IN_PROGRESS, receive)
        clock.advance(VISIBILITY)
    # The next receive finds it over maxReceiveCount: SQS moves it to the dead-letter queue, whose
    # function fails the ticket for good.
    for _ in range(3):
        poll(queue)
    failed = tickets.get(ticket_id)
    assert failed is not None and failed.status is TicketStatus.FAILED
    assert failed.error == f"The export could not be completed after {MAX_RECEIVES} attempts; please request it again"


def test_a_source_that_is_down_is_retried_within_minutes_then_fails_the_ticket_saying_so(
    stack: Stack, queue: list[QueuePoller], tickets: DynamoTicketStore, clock: Clock
) -> None:
    # Found: a failed attempt came back only after the queue's 90 minutes, and a source that was down
    # for a moment failed its ticket for good.
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    if catalog.report_by_slug("flaky-source") is None:
        catalog.put_data_source(DataSource(id="901", name="Flaky", database="/nonexistent/flaky.sqlite"))
        catalog.create_report(
            parse_report({"name": "Flaky Source", "data_source_id": "901", "queries": [{"sql": "SELECT 1"}]})
        )
    body = json.dumps({"report_name": "flaky-source", "format": "csv", "force_update": True}).encode()
    headers = [("Authorization", stack.headers["admin"]), ("Content-Type", "application/json")]
    ticket_id = json.loads(stack.api.handle("POST", "/api/exports/", headers, body).body)["ticket_id"]
    worker_queue = next(p for p in queue if p.visibility_seconds == VISIBILITY)
    for delay in (30, 120):  # retry_delay: 30 s after the first failure, 2 min after the second
        assert worker_queue.poll_once() == 1
        held = tickets.get(ticket_id)
        assert held is not None and held.lease_until is not None and held.lease_until <= clock.now()  # given back
        assert delay - 1 <= worker_queue.hidden_for() <= delay
        clock.advance(delay - 2)
        assert worker_queue.poll_once() == 0  # not yet
        clock.advance(2)
    assert worker_queue.poll_once() == 1  # the last delivery (maxReceiveCount) fails the ticket
    failed = tickets.get(ticket_id)
    assert failed is not None and failed.status is TicketStatus.FAILED
    assert failed.error == (
        "The report's data source is not available (after 3 attempts); please request the export again later"
    )
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5)] == [30, 120, 480, 900, 900]
