"""Lambda's SQS event-source mapping, locally: poll each queue the template routes to a function,
invoke it with an SQS event, and delete what it did not report as failed.

A failed message is made visible again after a short local backoff (in AWS it waits for the queue's
visibility timeout); after the queue's maxReceiveCount, moto moves it to the dead-letter queue,
whose own poller then runs the dead-letter function.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3

from infra.local.frontdoor import LocalApi
from infra.local.template import LOCAL_ACCOUNT, QueueSource, Template

LOCAL_RETRY_SECONDS = 2
WAIT_SECONDS = 1


class QueuePoller:
    def __init__(self, api: LocalApi, template: Template, source: QueueSource) -> None:
        self._api = api
        self._source = source
        self._name = template.physical_name(source.queue)
        self._sqs = boto3.client("sqs")
        self._url: str = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
        self._arn = f"arn:aws:sqs:us-east-1:{LOCAL_ACCOUNT}:{self._name}"

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Deliver one batch, if any; return how many messages it held."""
        received = self._sqs.receive_message(
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
                self._sqs.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=LOCAL_RETRY_SECONDS
                )
            else:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return len(received)

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
            "awsRegion": "us-east-1",
        }


def pollers(api: LocalApi, template: Template) -> list[QueuePoller]:
    return [QueuePoller(api, template, source) for source in template.queue_sources()]


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
