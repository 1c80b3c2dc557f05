"""Asking for a data model's refresh: who may, and the one refresh of a model under way at a time (an
in-memory store stands in for DynamoDB's conditional writes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from reportserver.domain.access import Grant, Principal
from reportserver.domain.errors import Forbidden, InvalidParameter, NotFound
from reportserver.domain.ports import CustomQuery, DataSource
from reportserver.domain.refreshes import Refresh, RefreshConflict, Refreshes, RefreshMessage, RefreshStatus
from reportserver.domain.reports import Report
from reportserver.domain.snapshots import Snapshot

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
KEPT = CustomQuery(name="orders", query="SELECT * FROM orders", snapshot=True)
MODELS = {
    "3": DataSource(id="3", database="shop.sqlite", custom_queries=[KEPT]),
    "4": DataSource(id="4", database="other.sqlite"),
}


class MemoryCatalog:
    def data_source(self, data_source_id: str) -> DataSource | None:
        return MODELS.get(data_source_id)

    def list_reports(self) -> list[Report]:
        return []


class MemoryRefreshStore:
    """The records and each model's hold, with the store's conditions."""

    def __init__(self) -> None:
        self.records: dict[str, Refresh] = {}
        self.holds: dict[str, tuple[str, datetime]] = {}

    def start(self, refresh: Refresh, hold_until: datetime, now: datetime, finished_holder: str | None) -> str | None:
        held = self.holds.get(refresh.model_id)
        if held is not None and held[1] >= now and held[0] != finished_holder:
            return held[0]
        self.records[refresh.id] = refresh
        self.holds[refresh.model_id] = (refresh.id, hold_until)
        return None

    def refresh(self, model_id: str, refresh_id: str) -> Refresh | None:
        return self.records.get(refresh_id)

    def refreshes(self, model_id: str, limit: int) -> list[Refresh]:
        return sorted(self.records.values(), key=lambda r: r.id, reverse=True)[:limit]

    def claim(self, refresh: Refresh, now: datetime, lease_until: datetime) -> Refresh:
        raise AssertionError("not asked for")

    def finish(self, refresh: Refresh) -> None:
        self.records[refresh.id] = refresh

    def let_go(self, model_id: str, refresh_id: str) -> None:
        if self.holds.get(model_id, ("",))[0] == refresh_id:
            del self.holds[model_id]

    def snapshot(self, model_id: str) -> Snapshot | None:
        return None

    def replace_snapshot(self, snapshot: Snapshot) -> Snapshot | None:
        raise AssertionError("not asked for")


class MemoryQueue:
    def __init__(self, refuses: bool = False) -> None:
        self.sent: list[RefreshMessage] = []
        self.refuses = refuses

    def send(self, message: RefreshMessage) -> None:
        if self.refuses:
            raise ConnectionError("the queue is down")
        self.sent.append(message)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _principal(*grants: Grant) -> Principal:
    return Principal("token", "nightly", ("*",), grants, "nightly-id")


REFRESHER = _principal(Grant("refresh_data"), Grant("dataModel", 2, 3))
ADMIN = _principal(Grant("admin"))


def _refreshes(queue: MemoryQueue | None = None) -> tuple[Refreshes, MemoryRefreshStore, MemoryQueue, Clock]:
    store, sent, clock = MemoryRefreshStore(), queue or MemoryQueue(), Clock()
    return Refreshes(MemoryCatalog(), store, sent, clock), store, sent, clock


def test_a_refresh_is_recorded_and_queued_once_while_it_is_under_way() -> None:
    refreshes, _store, queue, _clock = _refreshes()
    first, new = refreshes.request(REFRESHER, "3")
    again, again_new = refreshes.request(ADMIN, "3")
    assert new and not again_new and again.id == first.id and first.status is RefreshStatus.QUEUED
    assert queue.sent == [RefreshMessage(model_id="3", refresh_id=first.id)]
    assert first.requested_by == "token 'nightly'" and first.trigger == "api"


def test_a_hold_that_outlived_its_refresh_is_taken_over() -> None:
    refreshes, store, queue, _clock = _refreshes()
    first, _ = refreshes.request(REFRESHER, "3")
    store.records[first.id].status = RefreshStatus.COMPLETE  # its worker finished, then died before letting go
    second, new = refreshes.request(REFRESHER, "3", trigger="schedule")
    assert new and second.id != first.id and second.trigger == "schedule"
    assert store.holds["3"][0] == second.id and len(queue.sent) == 2


def test_a_hold_past_its_time_frees_the_model() -> None:
    refreshes, _store, _queue, clock = _refreshes()
    first, _ = refreshes.request(REFRESHER, "3")
    clock.now += timedelta(hours=2)  # its message was lost: the hold (an hour while queued) is past
    second, new = refreshes.request(REFRESHER, "3")
    assert new and second.id != first.id


def test_a_refresh_that_cannot_be_queued_is_failed_and_frees_the_model() -> None:
    refreshes, store, _queue, _clock = _refreshes(MemoryQueue(refuses=True))
    with pytest.raises(ConnectionError):
        refreshes.request(REFRESHER, "3")
    (failed,) = store.records.values()
    assert failed.status is RefreshStatus.FAILED and failed.error == "It could not be queued" and not store.holds


@pytest.mark.parametrize(
    ("principal", "model", "refusal", "words"),
    [
        (_principal(Grant("dataModel", 2, 3)), "3", Forbidden, "lacks the 'refresh_data' permission"),
        (_principal(Grant("refresh_data")), "3", Forbidden, "may not read dataModel 3"),
        (_principal(Grant("refresh_data"), Grant("dataModel", 1, 3)), "3", Forbidden, "may not read dataModel 3"),
        (_principal(Grant("execute_subscription"), Grant("allDataModels", 2)), "3", Forbidden, "'refresh_data'"),
        (_principal(Grant("refresh_data"), Grant("dataModel", 2, 3)), "4", Forbidden, "may not read dataModel 4"),
        (ADMIN, "99", NotFound, "No data model 99"),
        (ADMIN, "x", NotFound, "No data model 'x'"),
        (ADMIN, "4", InvalidParameter, "not marked for snapshots"),
    ],
)
def test_who_may_refresh_what(principal: Principal, model: str, refusal: type[Exception], words: str) -> None:
    refreshes, store, queue, _clock = _refreshes()
    with pytest.raises(refusal, match=words):
        refreshes.request(principal, model)
    assert not store.records and not queue.sent


def test_a_trigger_the_refreshes_do_not_know_is_a_mistake_of_the_caller() -> None:
    refreshes, _store, _queue, _clock = _refreshes()
    with pytest.raises(ValueError, match="trigger"):
        refreshes.request(ADMIN, "3", trigger="cron")


def test_a_refresh_is_followed_by_whoever_may_read_the_model() -> None:
    refreshes, _store, _queue, _clock = _refreshes()
    refresh, _ = refreshes.request(REFRESHER, "3")
    reader = _principal(Grant("dataModel", 2, 3))
    assert refreshes.status(reader, "3", refresh.id).id == refresh.id
    assert [r.id for r in refreshes.recent(reader, "3")] == [refresh.id]
    with pytest.raises(NotFound):
        refreshes.status(reader, "3", "not-a-refresh-id")
    with pytest.raises(Forbidden):
        refreshes.status(_principal(Grant("refresh_data")), "3", refresh.id)


def test_a_conflict_is_a_409() -> None:
    from reportserver.http.errors import status_for

    assert status_for(RefreshConflict("busy")) == 409
