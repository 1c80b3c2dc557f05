"""EventBridge Scheduler, locally: a loop that fires the schedules moto holds, as Scheduler would.

moto stores schedules but never fires them. Every few seconds this loop reads each schedule (through
the Scheduler API, as the operator) and, for an ENABLED one whose time has come, sends its target's
`Input` to the target SQS queue with Scheduler's context attributes filled in
(`<aws.scheduler.scheduled-time>` is the time it fired for, `YYYY-MM-DDTHH:MM:SSZ`). When each
expression fires is `domain.schedules.scheduler_fire_times`: `cron(...)` on the wall clock of the
schedule's `ScheduleExpressionTimezone` (a time the clocks skip is skipped, one they repeat fires once),
`rate(...)` in real time from its StartDate or creation, `at(...)` once at that wall time in the zone.
A recurring schedule fires from its StartDate (and from its last change: Scheduler does not fire the
times before a schedule existed) to its EndDate; a one-time schedule ignores both, as Scheduler does.

As strict as AWS where it matters: the send is made with the target's role (assumed here as Scheduler
assumes it, once its trust policy lets `scheduler.amazonaws.com` assume it), so a role whose policies do
not allow `sqs:SendMessage` on that queue fails with AccessDenied, and the firing is logged, not
delivered. With `ActionAfterCompletion: DELETE` a schedule is deleted once it has fired its last time
(an `at()` after its one firing), before its target is sent, so that what the message starts (a job
run making the job's next `at()` schedule) cannot be deleted by it.

Each schedule fires once for each time: the loop remembers the last time it fired for, and never fires
that or an earlier one again; a schedule changed after firing fires for its new times. Times missed
(the laptop asleep, the loop busy) are not caught up one by one: only the latest missed time fires, and
only if it is younger than the target's `MaximumEventAgeInSeconds` (Scheduler retries an event it
could not send for that long, then drops it; it never sends a backlog). An `at()` whose time had passed
when it was made fires too, within that age: a job's next run made a moment before its minute that
lands in moto a moment after it must not end the job's chain. moto keeps nothing when the stack stops,
so times missed while it was down are not known at all.

A delivery that fails is logged and not retried (Scheduler would retry a passing fault and then use the
target's dead-letter queue; neither is done here). A schedule that cannot be read or evaluated (an
expression `domain.schedules` does not read, a target other than SQS) is logged and skipped: one
schedule never stops the loop. The clock and the tick are the caller's, so tests move time instead of
waiting for it.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote

import boto3
from reportserver.domain.schedules import scheduler_fire_times

DEFAULT_TICK_SECONDS = 5.0
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
# Scheduler's defaults for a target without a RetryPolicy; 24 hours is also the most it allows.
DEFAULT_EVENT_AGE = timedelta(seconds=86_400)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Schedule:
    """A schedule as GetSchedule answers it, with the fields the loop reads."""

    arn: str
    name: str
    group: str
    expression: str
    zone: str
    state: str
    target: dict[str, Any]
    created: datetime
    modified: datetime
    start: datetime | None = None
    end: datetime | None = None
    after_completion: str = "NONE"

    @classmethod
    def from_api(cls, answer: dict[str, Any]) -> Schedule:
        return cls(
            arn=answer["Arn"],
            name=answer["Name"],
            group=answer.get("GroupName") or "default",
            expression=answer["ScheduleExpression"],
            zone=answer.get("ScheduleExpressionTimezone") or "UTC",
            state=answer.get("State") or "ENABLED",
            target=dict(answer["Target"]),
            created=answer["CreationDate"],
            modified=answer.get("LastModificationDate") or answer["CreationDate"],
            start=answer.get("StartDate"),
            end=answer.get("EndDate"),
            after_completion=answer.get("ActionAfterCompletion") or "NONE",
        )

    @property
    def one_time(self) -> bool:
        return self.expression.strip().startswith("at(")

    @property
    def event_age(self) -> timedelta:
        seconds = (self.target.get("RetryPolicy") or {}).get("MaximumEventAgeInSeconds")
        return timedelta(seconds=int(seconds)) if seconds else DEFAULT_EVENT_AGE


@dataclass(frozen=True)
class Firing:
    """What one schedule did in one tick: fired for `scheduled` (delivered or not), or failed to be read."""

    name: str
    scheduled: datetime | None
    delivered: bool
    error: str | None = None


class DeliveryFailed(Exception):
    """The target was not sent, for the reason given (as Scheduler would log it)."""


class Schedules(Protocol):
    def schedules(self) -> Iterable[Schedule]: ...

    def delete(self, schedule: Schedule) -> bool:
        """Delete it; False if it was gone already."""
        ...


class Targets(Protocol):
    def send(self, schedule: Schedule, body: str) -> None:
        """Send `body` to the schedule's target as its role; DeliveryFailed if that fails."""
        ...


def target_input(schedule: Schedule, scheduled: datetime, execution_id: str, attempt: int = 1) -> str:
    """The target's Input with Scheduler's context attributes filled in."""
    text = str(schedule.target.get("Input") or "{}")  # without an Input, an empty JSON object here
    values = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": scheduled.astimezone(UTC).strftime(_TIME_FORMAT),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LocalScheduler:
    """The loop's decisions: which schedules fire at a tick, for which time; and firing them."""

    schedules: Schedules
    targets: Targets
    clock: Callable[[], datetime] = _utc_now
    log: Callable[[str], None] = field(default=lambda line: print(f"[scheduler] {line}", flush=True))
    _fired: dict[str, datetime] = field(default_factory=dict)
    _reported: set[tuple[str, datetime]] = field(default_factory=set)  # faults logged, by schedule and change

    def due(self, schedule: Schedule, now: datetime) -> datetime | None:
        """The time this schedule fires for at `now`: the latest of its times not fired yet, not older
        than its target's event age (and for a recurring one, within its start, end and last change)."""
        if schedule.state != "ENABLED":
            return None
        floor = now - schedule.event_age
        if not schedule.one_time:
            floor = max(floor, schedule.modified, schedule.start or floor)
        last = self._fired.get(schedule.arn)
        if last is not None:
            floor = max(floor, last + timedelta(microseconds=1))
        latest = None
        anchor = schedule.start or schedule.created
        for moment in scheduler_fire_times(schedule.expression, schedule.zone, floor, anchor):
            if moment > now or (not schedule.one_time and schedule.end is not None and moment > schedule.end):
                break
            latest = moment
        return latest

    def tick(self) -> list[Firing]:
        """Fire every schedule that is due now; what each that did something did."""
        now = self.clock()
        try:
            found = list(self.schedules.schedules())
        except Exception as error:
            self.log(f"could not read the schedules: {error}")
            return []
        firings = []
        for schedule in found:
            try:
                firing = self._fire_if_due(schedule, now)
            except Exception as error:  # one schedule's fault never stops the others
                if (schedule.arn, schedule.modified) not in self._reported:  # once, not at every tick
                    self._reported.add((schedule.arn, schedule.modified))
                    self.log(f"{schedule.group}/{schedule.name} skipped: {error}")
                firing = Firing(schedule.name, None, False, str(error))
            if firing is not None:
                firings.append(firing)
        self._forget(found, now)
        return firings

    def _fire_if_due(self, schedule: Schedule, now: datetime) -> Firing | None:
        scheduled = self.due(schedule, now)
        if scheduled is None:
            if self._ended(schedule, now) and schedule.after_completion == "DELETE":
                self.schedules.delete(schedule)
            return None
        self._fired[schedule.arn] = scheduled
        if (
            schedule.after_completion == "DELETE"
            and self._is_last(schedule, scheduled)
            and not self.schedules.delete(schedule)
        ):
            return None  # deleted meanwhile: nothing left to fire
        try:
            self.targets.send(schedule, target_input(schedule, scheduled, str(uuid.uuid4())))
        except DeliveryFailed as error:
            self.log(f"{schedule.group}/{schedule.name} for {scheduled:%Y-%m-%dT%H:%M:%SZ} not delivered: {error}")
            return Firing(schedule.name, scheduled, False, str(error))
        self.log(f"{schedule.group}/{schedule.name} fired for {scheduled:%Y-%m-%dT%H:%M:%SZ}")
        return Firing(schedule.name, scheduled, True)

    @staticmethod
    def _is_last(schedule: Schedule, scheduled: datetime) -> bool:
        if schedule.one_time:
            return True
        if schedule.end is None:
            return False
        after = scheduled + timedelta(microseconds=1)
        upcoming = next(iter(scheduler_fire_times(schedule.expression, schedule.zone, after, schedule.created)), None)
        return upcoming is None or upcoming > schedule.end

    @staticmethod
    def _ended(schedule: Schedule, now: datetime) -> bool:
        return schedule.state == "ENABLED" and not schedule.one_time and schedule.end is not None and schedule.end < now

    def _forget(self, found: list[Schedule], now: datetime) -> None:
        """Drop what is remembered of schedules gone for longer than any event age (they cannot fire an
        old time again); a schedule made again under the same name within it keeps its memory."""
        listed = {s.arn for s in found}
        for arn in [a for a, fired in self._fired.items() if a not in listed and fired < now - DEFAULT_EVENT_AGE]:
            del self._fired[arn]

    def run(self, stopping: threading.Event, tick_seconds: float = DEFAULT_TICK_SECONDS) -> None:
        while not stopping.is_set():
            self.tick()
            stopping.wait(tick_seconds)


class MotoSchedules:
    """The schedules moto holds, read and deleted through the Scheduler API (as the operator: what
    Scheduler itself does needs no one's permission)."""

    def __init__(self, session: Any) -> None:
        self._client = session.client("scheduler")

    def schedules(self) -> Iterable[Schedule]:
        for page in self._client.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                try:
                    answer = self._client.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
                except self._client.exceptions.ResourceNotFoundException:
                    continue  # deleted since it was listed
                yield Schedule.from_api(answer)

    def delete(self, schedule: Schedule) -> bool:
        try:
            self._client.delete_schedule(Name=schedule.name, GroupName=schedule.group)
        except self._client.exceptions.ResourceNotFoundException:
            return False
        return True


class SqsTargets:
    """SQS targets, sent as Scheduler sends them: with the schedule's role, which must trust Scheduler
    and be allowed `sqs:SendMessage` on the queue (moto checks the latter, as IAM would)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._iam = session.client("iam")
        self._sqs = session.client("sqs")

    def send(self, schedule: Schedule, body: str) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        arn = str(schedule.target.get("Arn", ""))
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise DeliveryFailed(f"the local scheduler sends to SQS queues only, not {arn!r}")
        role = str(schedule.target.get("RoleArn", ""))
        try:
            self._check_trust(schedule, role)
            queue = self._session.client("sqs", **_assumed_by_scheduler(role, schedule.arn.split(":")[3]))
            url = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            request: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
            group = (schedule.target.get("SqsParameters") or {}).get("MessageGroupId")
            if group:
                request["MessageGroupId"] = group
            queue.send_message(**request)
        except ClientError as error:
            answer = error.response.get("Error", {})
            raise DeliveryFailed(f"{answer.get('Code')}: {answer.get('Message')}") from None

    def _check_trust(self, schedule: Schedule, role: str) -> None:
        """Scheduler can assume only a role whose trust policy lets its service principal do so (with
        the conditions it names on the schedule's account and group); moto's AssumeRole does not check."""
        if ":role/" not in role:
            raise DeliveryFailed(f"the target's RoleArn {role!r} names no role")
        document = self._iam.get_role(RoleName=role.rsplit("/", 1)[1])["Role"]["AssumeRolePolicyDocument"]
        if isinstance(document, str):
            document = json.loads(unquote(document))
        _, _, _, region, account, _ = schedule.arn.split(":", 5)
        context = {
            "aws:sourceaccount": account,
            "aws:sourcearn": f"arn:aws:scheduler:{region}:{account}:schedule-group/{schedule.group}",
        }
        if not trusts_scheduler(document, context):
            raise DeliveryFailed(f"{role} does not let {SCHEDULER_PRINCIPAL} assume it (its trust policy)")


def _assumed_by_scheduler(role: str, region: str) -> dict[str, str]:
    """Credentials of the role as Scheduler gets them. Through the STS API the caller would be the
    operator, whom moto's trust check (rightly) refuses a role that only Scheduler may assume; Scheduler
    is AWS itself, so the role is assumed in moto's STS directly, once its trust policy is checked."""
    from moto.sts.models import sts_backends  # noqa: PLC0415 - moto runs in this process

    assumed = sts_backends[role.split(":")[4]]["aws"].assume_role(
        region_name=region, role_session_name="local-scheduler", role_arn=role, policy="", duration=900, external_id=""
    )
    return {
        "aws_access_key_id": assumed.access_key_id,
        "aws_secret_access_key": assumed.secret_access_key,
        "aws_session_token": assumed.session_token,
    }


def trusts_scheduler(document: dict[str, Any], context: dict[str, str]) -> bool:
    """Whether a trust policy allows Scheduler's principal `sts:AssumeRole`, its conditions met by
    `context` (keys in lower case). A condition on any other key, or with another operator, is not met."""
    statements = document.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        if (
            statement.get("Effect") == "Allow"
            and SCHEDULER_PRINCIPAL in _listed(services)
            and any(fnmatch.fnmatchcase("sts:AssumeRole", action) for action in _listed(statement.get("Action")))
            and _conditions_hold(statement.get("Condition", {}), context)
        ):
            return True
    return False


_MATCHES: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, wanted: value == wanted,
    "ArnEquals": lambda value, wanted: value == wanted,
    "StringLike": fnmatch.fnmatchcase,
    "ArnLike": fnmatch.fnmatchcase,
}


def _conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        match = _MATCHES.get(operator)
        for key, wanted in tests.items():
            value = context.get(key.lower())
            if match is None or value is None or not any(match(value, str(w)) for w in _listed(wanted)):
                return False
    return True


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def local_scheduler(clock: Callable[[], datetime] = _utc_now) -> LocalScheduler:
    """The loop over the moto this process talks to, as the operator (this process's default identity)."""
    session = boto3.session.Session()  # the loop's own: boto3's default session is not for threads
    return LocalScheduler(MotoSchedules(session), SqsTargets(session), clock)


def start(stopping: threading.Event, tick_seconds: float = DEFAULT_TICK_SECONDS, ahead_seconds: float = 0.0) -> None:
    """Run the loop in a background thread until `stopping` is set; its clock `ahead_seconds` ahead of
    the real one (for tests: a schedule due within that fires at the next tick)."""
    ahead = timedelta(seconds=ahead_seconds)
    loop = local_scheduler(lambda: datetime.now(UTC) + ahead)
    threading.Thread(target=loop.run, args=(stopping, tick_seconds), name="local-scheduler", daemon=True).start()


def install() -> None:
    """moto's UpdateSchedule keeps the ActionAfterCompletion a schedule was made with; Scheduler's sets
    what the update gives (an update replaces the whole schedule), so a cron schedule updated to a
    self-deleting `at()` deletes itself after firing here too."""
    from moto.scheduler.models import scheduler_backends  # noqa: PLC0415
    from moto.scheduler.responses import EventBridgeSchedulerResponse  # noqa: PLC0415

    if getattr(EventBridgeSchedulerResponse, "_updates_completion", False):
        return
    update = EventBridgeSchedulerResponse.update_schedule

    def updated(self: Any) -> str:
        answer = update(self)
        name = unquote(self.uri.split("?")[0].split("/")[-1])
        backend = scheduler_backends[self.current_account][self.region]
        backend.get_schedule(self._get_param("GroupName"), name).action_after_completion = self._get_param(
            "ActionAfterCompletion"
        )
        return str(answer)

    EventBridgeSchedulerResponse.update_schedule = updated  # type: ignore[method-assign]
    setattr(EventBridgeSchedulerResponse, "_updates_completion", True)  # noqa: B010
