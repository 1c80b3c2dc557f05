"""Jobs' decisions (`domain.jobs.JobAdmin`) with in-memory fakes: what a failure between the job's row
and its schedule leaves, and the order of a delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from reportserver.domain.access import Principal, checked_grants
from reportserver.domain.errors import VersionConflict
from reportserver.domain.jobs import Job, JobAdmin, JobBody, JobChange
from reportserver.domain.reports import parse_report
from reportserver.domain.schedules import SchedulerExpression

NOW = datetime(2026, 12, 3, 15, 4, 27, tzinfo=UTC)
ADMIN = Principal("token", "ops", ("*",), tuple(checked_grants(["admin"])), "token-ops")
REPORT = parse_report(
    {
        "id": 7,
        "name": "Daily",
        "data_source_id": "1",
        "queries": [{"sheet_name": "s", "sql": "SELECT 1 WHERE :day IS NOT NULL"}],
        "fields": [{"name": "day", "label": "Day", "type": "date", "required": True}],
    }
)


@dataclass
class Store:
    rows: dict[int, Job] = field(default_factory=dict)
    counter: int = 0
    log: list[str] = field(default_factory=list)

    def next_job_id(self) -> int:
        self.counter += 1
        return self.counter

    def job(self, job_id: int) -> Job | None:
        return self.rows.get(job_id)

    def jobs(self) -> list[Job]:
        return list(self.rows.values())

    def create_job(self, job: Job) -> None:
        self.log.append("row created")
        self.rows[job.id] = job

    def replace_job(self, job: Job, previous_version: int) -> None:
        if job.id not in self.rows or self.rows[job.id].version != previous_version:
            raise VersionConflict("changed")
        self.log.append(f"row v{job.version}")
        self.rows[job.id] = job

    def delete_job(self, job: Job) -> None:
        if job.id not in self.rows or self.rows[job.id].version != job.version:
            raise VersionConflict("changed")
        self.log.append("row deleted")
        del self.rows[job.id]


@dataclass
class Schedules:
    log: list[str]
    failing: bool = False
    made: dict[int, tuple[int, str, bool]] = field(default_factory=dict)

    def put(self, job_id: int, version: int, expression: SchedulerExpression, enabled: bool) -> None:
        if self.failing:
            raise ConnectionError("Scheduler did not answer")
        self.log.append(f"schedule v{version}")
        self.made[job_id] = (version, expression.expression, enabled)

    def delete(self, job_id: int) -> None:
        if self.failing:
            raise ConnectionError("Scheduler did not answer")
        self.log.append("schedule deleted")
        self.made.pop(job_id, None)


def _admin() -> tuple[JobAdmin, Store, Schedules]:
    store = Store()
    schedules = Schedules(store.log)
    admin = JobAdmin(
        store=store,
        schedules=schedules,
        report_by_id=lambda i: REPORT if i == 7 else None,
        user_by_id=lambda _i: None,
        data_model_by_id=lambda _i: None,
        clock=lambda: NOW,
    )
    return admin, store, schedules


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "name": "daily",
        "documentId": 7,
        "recurrenceRule": "FREQ=DAILY;BYHOUR=6;BYMINUTE=0",
        "timeZone": "Europe/Berlin",
        "parameters": [{"name": "day", "source": "calculated", "value": "yesterday"}],
        "subscribedEmails": ["a@example.com"],
    } | changes


def test_a_job_is_stored_before_its_schedule_which_names_its_version() -> None:
    admin, store, schedules = _admin()
    job = admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    assert store.log == ["row created", "schedule v1"]
    assert schedules.made[job.id] == (1, "cron(0 6 * * ? *)", True)
    # The start it was given is now, to the minute, on the job's clock (16:04 in Berlin)
    assert job.body.startDate == "2026-12-03T16:04:00"


def test_a_job_whose_schedule_cannot_be_made_is_not_kept() -> None:
    admin, store, schedules = _admin()
    schedules.failing = True
    with pytest.raises(ConnectionError):
        admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    assert store.rows == {}


def test_a_change_whose_schedule_cannot_follow_is_undone() -> None:
    admin, store, schedules = _admin()
    job = admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    schedules.failing = True
    with pytest.raises(ConnectionError):
        admin.change(ADMIN, msgspec.convert(_body(id=job.id, optimisticLock=1, enabled=False), JobChange))
    # The job is as it was, with the schedule it still has: the same change can be sent again
    assert store.rows[job.id] == job
    assert schedules.made[job.id] == (1, "cron(0 6 * * ? *)", True)
    schedules.failing = False
    changed = admin.change(ADMIN, msgspec.convert(_body(id=job.id, optimisticLock=1, enabled=False), JobChange))
    assert changed.version == 2
    assert schedules.made[job.id] == (2, "cron(0 6 * * ? *)", False)


def test_a_delete_removes_the_job_at_its_version_before_its_schedule() -> None:
    admin, store, schedules = _admin()
    job = admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    store.log.clear()
    admin.delete(ADMIN, str(job.id), 1)
    assert store.log == ["row deleted", "schedule deleted"]
    # A schedule that could not be deleted is left to fire for no job; the job is gone all the same
    second = admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    schedules.failing = True
    with pytest.raises(ConnectionError):
        admin.delete(ADMIN, str(second.id), None)
    assert second.id not in store.rows


def test_a_stale_change_touches_neither_the_job_nor_its_schedule() -> None:
    admin, store, schedules = _admin()
    job = admin.create(ADMIN, msgspec.convert(_body(), JobBody))
    admin.change(ADMIN, msgspec.convert(_body(id=job.id, optimisticLock=1), JobChange))
    store.log.clear()
    with pytest.raises(VersionConflict):
        admin.change(ADMIN, msgspec.convert(_body(id=job.id, optimisticLock=1, timeZone="UTC"), JobChange))
    assert store.log == []
    assert schedules.made[job.id][0] == 2
