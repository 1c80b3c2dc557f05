"""The local Scheduler loop against moto with IAM enforced: a job's schedule fires by itself and its run
is delivered; a target is sent with the schedule's role, so a role that may not send (or does not trust
Scheduler) fails as in AWS; moto's UpdateSchedule keeps what the update says after completion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from reportserver.domain.schedules import scheduler_fire_times

from infra.local.queues import drain, pollers
from infra.local.scheduler import LocalScheduler, MotoSchedules, Schedule, SqsTargets
from tests.integration.conftest import TEMPLATE, Stack
from tests.integration.test_job_runs import _results
from tests.integration.test_jobs import _created, _schedule


@pytest.fixture
def stack(stack: Stack) -> Stack:
    return stack.with_own_admin()


@dataclass
class Only:
    """The schedules of one group (other tests' schedules share this moto, and must not fire here)."""

    moto: MotoSchedules
    group: str
    name: str | None = None

    def schedules(self) -> Iterable[Schedule]:
        return [s for s in self.moto.schedules() if s.group == self.group and self.name in (None, s.name)]

    def delete(self, schedule: Schedule) -> bool:
        return self.moto.delete(schedule)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _loop(group: str, now: datetime, name: str | None = None) -> tuple[LocalScheduler, Clock]:
    session = boto3.session.Session()
    clock = Clock(now)
    return LocalScheduler(Only(MotoSchedules(session), group, name), SqsTargets(session), clock, log=print), clock


def _until(moment: datetime) -> str:
    """Job results from today to `moment` (by default they are read up to now, and these runs are ahead)."""
    return f"?startDate={datetime.now(UTC).date()}&endDate={moment.date()}"


def test_a_jobs_schedule_fires_by_itself_and_its_run_is_delivered(stack: Stack) -> None:
    # Given a daily job at 09:00 in Sydney, mailed as csv
    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    job = _created(stack, emailDeliveryFormat="csv", parameters=july)
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    due = next(iter(scheduler_fire_times(schedule["ScheduleExpression"], "Australia/Sydney", datetime.now(UTC))))
    loop, clock = _loop(stack.names["JobScheduleGroup"], due - timedelta(minutes=1), f"job-{job['id']}")
    # When the loop ticks before its time, nothing fires; at its time, it fires once
    assert loop.tick() == []
    clock.now = due + timedelta(seconds=20)
    (firing,) = loop.tick()
    assert firing.delivered and firing.scheduled == due
    assert loop.tick() == []
    drain(pollers(stack.api, TEMPLATE))
    # Then the job has one run, from its schedule, for that time (maybe later today), delivered
    (run,) = _results(stack, job["id"], _until(due))
    assert run["trigger"] == "schedule"
    assert run["runAt"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run["status"] == "delivered", run
    # And its cron schedule is still there for the next day
    assert _schedule(stack, job["id"]) is not None


def test_a_job_run_one_at_a_time_fires_each_at_in_turn(stack: Stack) -> None:
    # Given a job every other Monday: one self-deleting at() schedule at a time
    job = _created(stack, recurrenceRule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=30")
    first = _schedule(stack, job["id"])
    assert first is not None and first["ActionAfterCompletion"] == "DELETE"
    due = next(iter(scheduler_fire_times(first["ScheduleExpression"], "Australia/Sydney", datetime.now(UTC))))
    loop, clock = _loop(stack.names["JobScheduleGroup"], due + timedelta(seconds=5), f"job-{job['id']}")
    # When it fires, and its run starts
    (firing,) = loop.tick()
    assert firing.delivered and firing.scheduled == due
    drain(pollers(stack.api, TEMPLATE))
    # Then the run made the next at(), two weeks on, which the loop fires at its time and not before
    following = _schedule(stack, job["id"])
    assert following is not None
    assert following["ScheduleExpression"] != first["ScheduleExpression"]
    assert loop.tick() == []
    clock.now = due + timedelta(weeks=2, seconds=5)
    (second,) = loop.tick()
    assert second.delivered and second.scheduled == due + timedelta(weeks=2)
    drain(pollers(stack.api, TEMPLATE))
    assert [r["runAt"] for r in _results(stack, job["id"], _until(due + timedelta(weeks=2)))] == [
        moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in (due, due + timedelta(weeks=2))
    ]


@pytest.fixture
def own_target(stack: Stack) -> Any:
    """A schedule group, a queue and a role trusting Scheduler, all of this test's own (in the stack's moto)."""
    suffix = uuid.uuid4().hex[:8]
    scheduler, sqs, iam = boto3.client("scheduler"), boto3.client("sqs"), boto3.client("iam")
    group = f"g-{suffix}"
    scheduler.create_schedule_group(Name=group)
    url = sqs.create_queue(QueueName=f"q-{suffix}")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    trust = TEMPLATE.resolve(TEMPLATE.resources["JobSchedulerRole"]["Properties"]["AssumeRolePolicyDocument"])
    role = iam.create_role(RoleName=f"r-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return {"group": group, "url": url, "queue": queue, "role": role, "role_name": f"r-{suffix}"}


def _allow_send(role_name: str, queue: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue}],
    }
    boto3.client("iam").put_role_policy(RoleName=role_name, PolicyName="send", PolicyDocument=json.dumps(policy))


def _received(url: str) -> list[str]:
    answer = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [m["Body"] for m in answer.get("Messages", [])]


def _every_minute(target: dict[str, Any], role: str | None = None) -> None:
    boto3.client("scheduler").create_schedule(
        Name="every-minute",
        GroupName=target["group"],
        ScheduleExpression="cron(* * * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": target["queue"],
            "RoleArn": role or target["role"],
            "Input": '{"at": "<aws.scheduler.scheduled-time>"}',
        },
    )


def test_a_target_is_sent_with_the_schedules_role_and_refused_without_its_permission(own_target: Any) -> None:
    # Given a schedule every minute whose role may send to another queue only
    _allow_send(own_target["role_name"], own_target["queue"] + "-other")
    _every_minute(own_target)
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    loop, clock = _loop(own_target["group"], now + timedelta(seconds=1))
    # When it fires: refused as IAM refuses the role, logged, nothing sent
    (refused,) = loop.tick()
    assert not refused.delivered and "AccessDenied" in str(refused.error)
    assert _received(own_target["url"]) == []
    # When the role may send to its queue: the next minute is delivered, its time filled in
    _allow_send(own_target["role_name"], own_target["queue"])
    clock.now += timedelta(minutes=1)
    (sent,) = loop.tick()
    assert sent.delivered
    assert _received(own_target["url"]) == [
        json.dumps({"at": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    ]


def test_a_role_that_does_not_trust_scheduler_is_not_assumed(own_target: Any) -> None:
    iam = boto3.client("iam")
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"{own_target['role_name']}-l"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(lambda_trust))["Role"]["Arn"]
    _allow_send(name, own_target["queue"])
    _every_minute(own_target, role)
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=1)
    loop, _clock = _loop(own_target["group"], now)
    (refused,) = loop.tick()
    assert not refused.delivered and "scheduler.amazonaws.com" in str(refused.error)
    assert _received(own_target["url"]) == []


def test_an_update_sets_what_happens_after_completion_as_schedulers_does(own_target: Any) -> None:
    client = boto3.client("scheduler")
    _every_minute(own_target)
    target = {"Arn": own_target["queue"], "RoleArn": own_target["role"], "Input": "{}"}
    request: dict[str, Any] = {"Name": "every-minute", "GroupName": own_target["group"], "Target": target,
                               "FlexibleTimeWindow": {"Mode": "OFF"}}  # fmt: skip
    client.update_schedule(**request, ScheduleExpression="at(2030-01-01T00:00:00)", ActionAfterCompletion="DELETE")
    assert client.get_schedule(Name="every-minute", GroupName=own_target["group"])["ActionAfterCompletion"] == "DELETE"
    client.update_schedule(**request, ScheduleExpression="cron(0 9 * * ? *)", ActionAfterCompletion="NONE")
    assert client.get_schedule(Name="every-minute", GroupName=own_target["group"])["ActionAfterCompletion"] == "NONE"
