"""Lambda's SQS event-source mapping, locally: poll each queue the template routes to a function,
invoke it with an SQS event, and delete what it did not report as failed.

A message that was not deleted (its record failed, or the function raised) comes back as it does in
AWS: only when the queue's visibility timeout (the template's, 5400 s for exports) has passed since it
was received. The poller keeps that schedule by its own clock, so that tests can move the clock
instead of waiting; under the real clock it is AWS's behaviour. After the queue's maxReceiveCount,
moto moves the message to the dead-letter queue, whose own poller then runs the dead-letter function.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from infra.local.frontdoor import LocalApi
from infra.local.template import LOCAL_ACCOUNT, LOCAL_REGION, QueueSource, Template

WAIT_SECONDS = 1
SQS_DEFAULT_VISIBILITY_SECONDS = 30


def visibility_timeout(template: Template, queue: str) -> int:
    """The queue's VisibilityTimeout as the template declares it (SQS's default when it does not)."""
    properties = template.resources[queue].get("Properties", {})
    return int(properties.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_SECONDS))


class QueuePoller:
    def __init__(
        self, api: LocalApi, template: Template, source: QueueSource, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = api
        self._source = source
        self._name = template.physical_name(source.queue)
        # Lambda's event-source mapping receives and deletes with the function's role (so its policy must
        # allow it); what SQS itself does (a message visible again) is the operator's.
        self._sqs = boto3.client("sqs")
        self._mapping = boto3.client("sqs", **api.identities.get(source.function, {}))
        self._url = template.reference(source.queue)
        self._arn = template.attribute(source.queue, "Arn")
        self.visibility_seconds = visibility_timeout(template, source.queue)
        self._clock = clock
        self._hidden: dict[str, tuple[float, str]] = {}  # message id -> (visible again at, receipt handle)
        self._lock = threading.Lock()

    def hidden_for(self) -> float:
        """Seconds by this poller's clock until the message that comes back next is delivered again."""
        with self._lock:
            return min((due for due, _ in self._hidden.values()), default=float("inf")) - self._clock()

    def discard_waiting(self) -> None:
        """Delete the messages this poller holds back (a test's, so that no later test receives them)."""
        with self._lock:
            handles = [handle for _, handle in self._hidden.values()]
            self._hidden.clear()
        for handle in handles:
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=handle)

    @property
    def waiting(self) -> int:
        """Messages received and not deleted, hidden until their visibility timeout passes."""
        return len(self._hidden)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Deliver one batch, if any; return how many messages it held."""
        self._release_due()
        received_at = self._clock()
        received = self._mapping.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=min(self._source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        event = {"Records": [self._record(m) for m in received]}
        try:
            response = self._api.invoke(self._source.function, event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in received}
        for message in received:
            if message["MessageId"] in failed:
                # Left hidden (moto keeps it so in real time) until its visibility has passed by this
                # poller's clock: the queue's timeout, or what the function set (ChangeMessageVisibility).
                hidden = self._hidden_seconds(message["MessageId"])
                with self._lock:
                    due = received_at + self.visibility_seconds if hidden is None else self._clock() + hidden
                    self._hidden[message["MessageId"]] = (due, message["ReceiptHandle"])
            else:
                self._mapping.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return len(received)

    def _hidden_seconds(self, message_id: str) -> float | None:
        """How long from now moto keeps this message hidden: the queue's timeout, or what the function
        set with ChangeMessageVisibility (moto runs in this process: under mock_aws, or as the stack's
        threaded server, so its state can be read)."""
        from moto.core.utils import unix_time_millis  # noqa: PLC0415
        from moto.sqs.models import sqs_backends  # noqa: PLC0415

        queue = sqs_backends[LOCAL_ACCOUNT][LOCAL_REGION].queues.get(self._name)
        found = next((m for m in getattr(queue, "_messages", []) if m.id == message_id), None)
        if found is None or not found.visible_at:
            return None
        return max(0.0, (found.visible_at - unix_time_millis()) / 1000)

    def _release_due(self) -> None:
        now = self._clock()
        with self._lock:
            due = [(m, handle) for m, (at, handle) in self._hidden.items() if at <= now]
            for message_id, _ in due:
                del self._hidden[message_id]
        for _, handle in due:
            self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=handle, VisibilityTimeout=0)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": LOCAL_REGION,
        }


def pollers(api: LocalApi, template: Template, clock: Callable[[], float] = time.monotonic) -> list[QueuePoller]:
    return [QueuePoller(api, template, source, clock) for source in template.queue_sources()]


def drain(queue_pollers: list[QueuePoller], rounds: int = 20) -> int:
    """Deliver until every queue is empty (tests use this in place of the background loop)."""
    delivered = 0
    for _ in range(rounds):
        batch = sum(p.poll_once() for p in queue_pollers)
        delivered += batch
        if batch == 0:
            break
    return delivered


def start_background(queue_pollers: list[QueuePoller], stopping: threading.Event) -> list[threading.Thread]:
    def loop(poller: QueuePoller) -> None:
        while not stopping.is_set():
            try:
                poller.poll_once(wait_seconds=WAIT_SECONDS)
            except Exception as error:
                print(f"[queues] polling failed: {error}", flush=True)
                time.sleep(1)

    threads = [
        threading.Thread(target=loop, args=(p,), name=f"poller-{uuid.uuid4().hex[:6]}", daemon=True)
        for p in queue_pollers
    ]
    for thread in threads:
        thread.start()
    return threads


def scheduled_event(function: str) -> dict[str, Any]:
    """The event EventBridge sends a scheduled function (the shape of events/scheduled_sweep.json)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": now,
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{function}"],
        "detail": {},
    }


def start_schedules(api: LocalApi, template: Template, stopping: threading.Event) -> list[threading.Thread]:
    """Run each scheduled function every period of its `rate(...)`, as EventBridge does."""

    def loop(function: str, period: float) -> None:
        while not stopping.wait(period):
            try:
                api.invoke(function, scheduled_event(function))
            except Exception as error:
                print(f"[schedule] {function} failed: {error}", flush=True)

    threads = [
        threading.Thread(target=loop, args=(f, p), name=f"schedule-{f}", daemon=True)
        for f, p in template.schedules().items()
    ]
    for thread in threads:
        thread.start()
    return threads
