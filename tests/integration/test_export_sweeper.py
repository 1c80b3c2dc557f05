"""The sweeper (run by its schedule): no ticket is left pending or in progress for ever."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reportserver.domain.tickets import ExportTicket, TicketStatus, new_ticket_id
from reportserver.store.queue import SqsExportQueue
from reportserver.store.tickets import DynamoTicketStore

from infra.local.queues import drain, pollers, scheduled_event
from tests.integration.conftest import TEMPLATE, Stack

STRANDED = int(TEMPLATE.functions()["ExportSweeperFunction"].environment["EXPORT_STRANDED_SECONDS"])


def stranded_ticket(stack: Stack, status: TicketStatus, age_seconds: int, attempt: int = 0) -> str:
    """A ticket whose last change is `age_seconds` old and whose message is gone (never sent)."""
    report = stack.report("gst-balance")
    then = datetime.now(UTC) - timedelta(seconds=age_seconds)
    ticket = ExportTicket(
        ticket_id=new_ticket_id(),
        owner="sweeper-test",
        report_id=report.id,
        report_slug=report.slug,
        report_name=report.name,
        format="csv",
        parameters={},
        cache_key=f"sweep-{then.timestamp()}",
        status=status,
        created_at=then,
        updated_at=then,
        attempt=attempt,
        lease_until=then if status is TicketStatus.IN_PROGRESS else None,
        expires_at=then + timedelta(days=7),
    )
    DynamoTicketStore(stack.names["TicketsTable"]).create(ticket)
    return ticket.ticket_id


def sweep(stack: Stack) -> dict[str, int]:
    return stack.api.invoke("ExportSweeperFunction", scheduled_event("ExportSweeperFunction"))


def queued(stack: Stack) -> int:
    return SqsExportQueue(TEMPLATE.reference("ExportQueue")).waiting()


def get(stack: Stack, ticket_id: str) -> ExportTicket:
    found = DynamoTicketStore(stack.names["TicketsTable"]).get(ticket_id)
    assert found is not None
    return found


def test_the_sweeper_runs_on_a_schedule_of_the_template() -> None:
    # The export sweeper, and the job runner's sweep of the runs
    assert TEMPLATE.schedules() == {"ExportSweeperFunction": 300.0, "JobRunnerFunction": 300.0}
    assert STRANDED == 900


def test_a_ticket_whose_message_was_lost_is_sent_again_and_completes(stack: Stack) -> None:
    # Found: a crash between the ticket and its message left it pending until its TTL (7 days).
    drain(pollers(stack.api, TEMPLATE))
    lost = stranded_ticket(stack, TicketStatus.PENDING, STRANDED + 60)
    recent = stranded_ticket(stack, TicketStatus.PENDING, 30)  # may still have its message
    assert sweep(stack)["resent"] >= 1
    assert sweep(stack)["resent"] == 0  # nudged: not sent twice in one period
    drain(pollers(stack.api, TEMPLATE))
    assert get(stack, lost).status is TicketStatus.COMPLETE
    assert get(stack, recent).status is TicketStatus.PENDING


def test_a_ticket_whose_worker_and_retries_are_gone_is_retried_or_failed(stack: Stack) -> None:
    retried = stranded_ticket(stack, TicketStatus.IN_PROGRESS, STRANDED + 60, attempt=1)
    exhausted = stranded_ticket(stack, TicketStatus.IN_PROGRESS, STRANDED + 60, attempt=3)
    answer = sweep(stack)
    assert answer["failed"] >= 1 and answer["resent"] >= 1
    drain(pollers(stack.api, TEMPLATE))
    assert get(stack, retried).status is TicketStatus.COMPLETE
    failed = get(stack, exhausted)
    assert failed.status is TicketStatus.FAILED
    assert failed.error == "The export could not be completed after 3 attempts; please request it again"


def test_while_messages_wait_in_the_queue_no_pending_ticket_is_sent_again(stack: Stack) -> None:
    # Found: behind the workers' concurrency a pending ticket's message waits for a long time; the
    # sweeper sent it again every period, each duplicate making the backlog longer.
    drain(pollers(stack.api, TEMPLATE))
    waiting = stranded_ticket(stack, TicketStatus.PENDING, STRANDED + 60)
    SqsExportQueue(TEMPLATE.reference("ExportQueue")).send(waiting)  # its message, not yet taken
    assert queued(stack) == 1
    assert sweep(stack)["resent"] == 0
    assert queued(stack) == 1 and get(stack, waiting).updated_at < datetime.now(UTC) - timedelta(seconds=STRANDED)
    drain(pollers(stack.api, TEMPLATE))
    assert get(stack, waiting).status is TicketStatus.COMPLETE


def test_an_in_progress_ticket_whose_lease_ended_lately_is_left_to_its_worker(stack: Stack) -> None:
    held = stranded_ticket(stack, TicketStatus.IN_PROGRESS, STRANDED + 60, attempt=1)
    store = DynamoTicketStore(stack.names["TicketsTable"])
    ticket = store.get(held)
    assert ticket is not None
    store.record_progress(ticket, 10, ticket.updated_at, datetime.now(UTC) + timedelta(minutes=5))  # a live lease
    drain(pollers(stack.api, TEMPLATE))
    assert sweep(stack)["skipped"] >= 1
    after = get(stack, held)
    assert after.status is TicketStatus.IN_PROGRESS and after.attempt == 1
    assert after.updated_at == ticket.updated_at and queued(stack) == 0  # neither nudged nor sent again


def _deliver(stack: Stack, function: str, ticket_id: str) -> dict[str, object]:
    record = {"messageId": "m-x", "receiptHandle": "r", "body": json.dumps({"ticket_id": ticket_id})}
    record |= {"attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}
    record |= {"eventSourceARN": TEMPLATE.attribute("ExportQueue", "Arn")}
    return stack.api.invoke(function, {"Records": [record]})


def test_a_dead_lettered_message_never_fails_a_ticket_another_attempt_is_rendering(stack: Stack) -> None:
    # Found: the dead-letter function failed a ticket whose retry was rendering it at that moment.
    held = stranded_ticket(stack, TicketStatus.IN_PROGRESS, 60, attempt=2)
    store = DynamoTicketStore(stack.names["TicketsTable"])
    ticket = store.get(held)
    assert ticket is not None
    store.record_progress(ticket, 5, datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=5))
    assert _deliver(stack, "ExportDeadLettersFunction", held)["batchItemFailures"] == []
    assert get(stack, held).status is TicketStatus.IN_PROGRESS


def test_a_ticket_past_its_attempts_is_failed_by_whichever_message_comes_next(stack: Stack) -> None:
    # Found: each message counted its receives from one, so a sweeper's duplicate bought a ticket more runs.
    spent = stranded_ticket(stack, TicketStatus.IN_PROGRESS, STRANDED + 60, attempt=3)
    assert _deliver(stack, "ExportWorkerFunction", spent)["batchItemFailures"] == []
    failed = get(stack, spent)
    assert failed.status is TicketStatus.FAILED and failed.attempt == 4
    assert failed.error == "The export could not be completed after 3 attempts; please request it again"
