"""A job's runs (`domain.job_runs`) with in-memory fakes: parameters at the run's time, the at() chain
across late and raced messages, the last run of a counted rule, the execute cap, generated ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from reportserver.domain.access import Principal, checked_grants
from reportserver.domain.errors import NotFound, TooManyRequests
from reportserver.domain.job_runs import (
    MAX_EXECUTES_PER_HOUR,
    JobResults,
    JobRun,
    JobRunner,
    RunMessage,
    parse_generated_id,
    run_parameters,
)
from reportserver.domain.jobs import Job, JobAdmin, JobBody, JobChange
from reportserver.domain.tickets import TicketStatus
from reportserver.domain.tokens import ApiToken

from tests.unit.test_jobs import REPORT, Schedules, Store

ADMIN = Principal("token", "ops", ("*",), tuple(checked_grants(["admin"])), "token-ops")
SYDNEY_MORNING = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 09:30 on 2 March in Sydney (UTC+11)


@dataclass
class Runs:
    kept: dict[tuple[int, str], JobRun] = field(default_factory=dict)
    mails: dict[str, tuple[int, str]] = field(default_factory=dict)

    def record_run(self, run: JobRun) -> bool:
        if (run.job_id, run.key) in self.kept:
            return False
        self.kept[(run.job_id, run.key)] = msgspec.structs.replace(run)
        return True

    def update_run(self, run: JobRun) -> None:
        self.kept[(run.job_id, run.key)] = msgspec.structs.replace(run)

    def update_exporting_run(self, run: JobRun) -> bool:
        kept = self.kept.get((run.job_id, run.key))
        if kept is None or kept.status != "exporting":
            return False
        self.update_run(run)
        return True

    def claim_run(self, run: JobRun, now: datetime) -> bool:
        kept = self.kept.get((run.job_id, run.key))
        if kept is None or kept.status not in ("exporting", "delivering"):
            return False
        if kept.status == "delivering" and kept.lease_until is not None and kept.lease_until >= now:
            return False  # another delivery holds it
        self.update_run(run)
        return True

    def run(self, job_id: int, key: str) -> JobRun | None:
        kept = self.kept.get((job_id, key))
        return None if kept is None else msgspec.structs.replace(kept)  # a copy, as a table read gives

    def runs(self, job_id: int, since: datetime, until: datetime) -> list[JobRun]:
        return sorted((r for r in self.kept.values() if r.job_id == job_id and since <= r.run_at <= until),
                      key=lambda r: r.run_at)  # fmt: skip

    def open_runs(self, before: datetime) -> list[tuple[int, str]]:
        return [k for k, r in self.kept.items() if r.status in ("exporting", "delivering") and r.updated_at < before]

    def record_mail(self, message_id: str, run: JobRun) -> None:
        self.mails[message_id] = (run.job_id, run.key)

    def mail_run(self, message_id: str) -> tuple[int, str] | None:
        return self.mails.get(message_id)

    def expired_files(self, before: datetime) -> list[tuple[int, str]]:
        return [k for k, r in self.kept.items() if r.file_key and not r.file_deleted and r.expires_at < before]


@dataclass
class Owners:
    def token(self, name: str) -> ApiToken | None:
        now = datetime.now(UTC)
        return ApiToken(name=name, secret_hash="x", groups=["*"], permissions=["admin"],
                        expires_at=now + timedelta(days=3650), created_at=now, created_by="tests")  # fmt: skip

    def user_by_name(self, name: str) -> Any:
        return None

    def groups(self) -> list[Any]:
        return []


@dataclass
class Exporter:
    orders: list[Any] = field(default_factory=list)

    def request(self, principal: Principal, order: Any, run: str | None = None, keep_days: int | None = None) -> Any:
        self.orders.append((order, run))

        class Ticket:
            ticket_id = f"t{len(self.orders)}"
            status = TicketStatus.PENDING

        return Ticket()


@dataclass
class World:
    now: datetime
    store: Store = field(default_factory=Store)
    runs: Runs = field(default_factory=Runs)
    exporter: Exporter = field(default_factory=Exporter)

    def __post_init__(self) -> None:
        self.schedules = Schedules(self.store.log)
        self.admin = JobAdmin(self.store, self.schedules, lambda i: REPORT if i == 7 else None, lambda _i: None,
                              lambda _i: None, lambda: self.now)  # fmt: skip
        self.runner = JobRunner(self.store, self.runs, self.schedules, Owners(), self.exporter, lambda: self.now)

    def job(self, **changes: Any) -> Job:
        body = {
            "name": "daily", "documentId": 7, "recurrenceRule": "FREQ=DAILY;BYHOUR=6;BYMINUTE=0",
            "timeZone": "Australia/Sydney", "subscribedEmails": ["a@example.com"],
            "parameters": [{"name": "day", "source": "calculated", "value": "yesterday"}],
        } | changes  # fmt: skip
        return self.admin.create(ADMIN, msgspec.convert(body, JobBody))

    def fire(self, job: Job, at: datetime) -> str:
        version = self.schedules.made[job.id][0] if job.id in self.schedules.made else job.version
        message = RunMessage(job_id=job.id, version=version, scheduled_time=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return self.runner.start(message)


def test_a_time_worked_out_at_the_run_carries_the_jobs_offset_not_the_hosts() -> None:
    world = World(SYDNEY_MORNING)
    job = world.job(parameters=[{"name": "day", "source": "static", "value": "2026-03-01"}])
    job.body.parameters.append(msgspec.convert({"name": "at", "source": "calculated", "value": "now - 2 hours"},
                                               type(job.body.parameters[0])))  # fmt: skip
    values = run_parameters(job, SYDNEY_MORNING)
    assert values["at"] == "2026-03-02T07:30:00+11:00"  # 20:30 UTC the day before: two hours before the run
    assert datetime.fromisoformat(values["at"]) == SYDNEY_MORNING - timedelta(hours=2)
    assert values["day"] == "2026-03-01"


def test_the_last_run_of_a_counted_rule_exports_and_schedules_nothing() -> None:
    world = World(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    job = world.job(recurrenceRule="FREQ=DAILY;INTERVAL=2;COUNT=2;BYHOUR=6;BYMINUTE=0",
                    startDate="2026-12-04T00:00")  # fmt: skip
    first = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)  # 06:00 on 4 December in Sydney
    world.now = first
    assert world.fire(job, first) == "started"
    second = first + timedelta(days=2)
    world.now = second
    schedule_before = world.schedules.made[job.id]
    assert world.fire(job, second) == "started", list(world.runs.kept.values())
    assert len(world.exporter.orders) == 2
    assert world.schedules.made[job.id] == schedule_before  # nothing after the last run


def test_a_late_message_never_moves_the_at_chain_back() -> None:
    start = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    world = World(start)
    job = world.job(recurrenceRule="rate(7 minutes)", startDate="2026-12-04T02:00")  # 15:00 UTC
    t1, t2 = start + timedelta(minutes=7), start + timedelta(minutes=14)
    # T2 ran on time and scheduled T3; T1's message arrives twelve minutes late
    world.now = t2
    world.fire(job, t2)
    assert world.schedules.made[job.id][1] == "at(2026-12-03T15:21:00)"
    world.now = t1 + timedelta(minutes=12)
    assert world.fire(job, t1) == "started"
    assert world.schedules.made[job.id][1] == "at(2026-12-03T15:21:00)"  # still T3, not T2


def test_a_save_landing_during_a_run_keeps_the_saves_schedule() -> None:
    start = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    world = World(start)
    job = world.job(recurrenceRule="rate(7 minutes)", startDate="2026-12-04T02:00")
    changed = msgspec.convert(
        msgspec.to_builtins(job.body) | {"id": job.id, "optimisticLock": 1, "recurrenceRule": "rate(30 minutes)"},
        JobChange,
    )
    # When the job is saved just as the runner writes the next schedule
    put = world.schedules.put

    def racing(job_id: int, version: int, expression: Any, enabled: bool) -> None:
        put(job_id, version, expression, enabled)
        if version == 1:
            world.schedules.put = put  # type: ignore[method-assign]
            world.admin.change(ADMIN, changed)

    world.schedules.put = racing  # type: ignore[method-assign]
    world.now = start + timedelta(minutes=7)
    world.fire(job, world.now)
    # Then the schedule left is the save's (version 2, every 30 minutes), not the run's
    version, expression, _enabled = world.schedules.made[job.id]
    assert version == 2
    assert expression == "at(2026-12-03T15:30:00)"


def _billing_world(rows: list[tuple[str, str]]) -> tuple[World, Job, list[Any]]:
    """A per-recipient job whose binding gives `rows` (email, region), `region` bound; the recipients'
    messages it queues."""
    from reportserver.domain.jobs import BillingStatementBinding, JobParameter

    world = World(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    job = world.job()
    binding = BillingStatementBinding(dataModelId=3, dataMember="people", emailAddressField="email")
    billing = msgspec.structs.replace(
        job.body, mode="billingStatement", billingStatementBinding=binding,
        parameters=[*job.body.parameters, JobParameter(name="region", source="bound", value="region")],
    )  # fmt: skip
    world.store.rows[job.id] = msgspec.structs.replace(job, body=billing)
    queued: list[Any] = []
    world.runner.member_rows = lambda _m, _n: (["email", "region"], rows)
    world.runner.recipient_queue = type("Q", (), {"send_recipients": lambda _s, m: queued.extend(m)})()
    return world, world.store.rows[job.id], queued


def test_a_billing_statement_run_fans_out_one_run_per_recipient_each_recorded_once() -> None:
    world, job, queued = _billing_world([("a@example.com", "NSW"), ("b@example.com", "VIC")])
    # When the run starts: no file of everyone's rows, but one message per recipient
    assert world.fire(job, world.now) == "burst"
    assert world.exporter.orders == []
    (run,) = world.runs.kept.values()
    assert run.status == "burst" and run.burst == 2
    assert [(m.address, m.parameters) for m in queued] == [("a@example.com", {"region": "NSW"}),
                                                           ("b@example.com", {"region": "VIC"})]  # fmt: skip
    # Each becomes its own run, exported with the run's parameters and its own, whatever delivers it twice
    for message in [*queued, *queued]:
        world.runner.start_recipient(message)
    assert [(order.parameters["region"], order.parameters["day"], key) for order, key in world.exporter.orders] == [
        (["NSW"], ["2026-12-03"], f"{job.id}:{run.key}.r00001"),
        (["VIC"], ["2026-12-03"], f"{job.id}:{run.key}.r00002"),
    ]
    child = world.runs.kept[(job.id, f"{run.key}.r00002")]
    assert child.to == ["b@example.com"] and child.parent == run.key
    # And a start delivered again sends nobody a second message
    assert world.fire(job, world.now) == "duplicate"
    assert len(queued) == 2


def test_execute_is_capped_per_job_and_hour() -> None:
    world = World(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    job = world.job()
    sent: list[RunMessage] = []
    ids = iter(f"{n:032x}" for n in range(100))
    results = JobResults(world.store, world.runs, type("Q", (), {"send": lambda _s, m: sent.append(m)})(),
                         lambda _t: None, lambda _r: ("*",), lambda: world.now, lambda: next(ids))  # fmt: skip
    for _ in range(MAX_EXECUTES_PER_HOUR):
        results.execute(ADMIN, str(job.id))
        world.runner.start(sent[-1])
        world.now += timedelta(seconds=1)
    with pytest.raises(TooManyRequests):
        results.execute(ADMIN, str(job.id))
    world.now += timedelta(hours=1)
    results.execute(ADMIN, str(job.id))


@pytest.mark.parametrize(
    "text",
    ["01.20261203T150000Z", "00.20261203T150000Z", "1.20261399T999999Z", "1.20261203T150000Z.",
     "1.20261203T150000Z.XYZ", "1", "1.", "x.20261203T150000Z", "1.20261203T150000"],
)  # fmt: skip
def test_a_generated_id_that_is_not_one_is_not_found(text: str) -> None:
    with pytest.raises(NotFound):
        parse_generated_id(text)


def test_a_generated_id_reads_back_its_job_and_run() -> None:
    assert parse_generated_id("12.20261203T150000Z") == (12, "20261203T150000Z")
    run_id = "0123456789abcdef0123456789abcdef"
    assert parse_generated_id(f"12.20261203T150000Z.{run_id}") == (12, f"20261203T150000Z.{run_id}")


def test_a_delivery_cut_short_by_a_passing_fault_mails_only_the_rest_on_retry() -> None:
    world, message, mails = _delivery(
        sendIndividualEmails=True, subscribedEmails=["a@example.com", "b@example.com", "c@example.com"]
    )
    mailer = world.runner.mailer

    class Failing:
        fail_after = 1

        def send(self, message: Any, recipients: Any) -> str:
            if len(mails) == self.fail_after:
                raise ConnectionError("SES throttled")
            return mailer.send(message, recipients)  # type: ignore[union-attr]

    world.runner.mailer = Failing()
    # When SES fails after the first of three mails
    with pytest.raises(ConnectionError):
        world.runner.deliver(message)
    # Then the run is back for the retry, knowing who was mailed
    kept = world.runs.kept[(message.job_id, message.deliver)]
    assert kept.status == "exporting" and [r.address for r in kept.recipients] == ["a@example.com"]
    # And the retry mails the other two only, once
    Failing.fail_after = 99
    assert world.runner.deliver(message) == "delivered"
    assert mails == [["a@example.com"], ["b@example.com"], ["c@example.com"]]
    assert world.runner.deliver(message) == "duplicate"


def _delivery(**changes: Any) -> tuple[World, Any, list[list[str]]]:
    """A run whose export is complete, ready to deliver; the mails sent, each as its addresses."""
    from reportserver.domain.job_runs import DeliveryMessage
    from reportserver.domain.tickets import ExportTicket

    world = World(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    job = world.job(**changes)
    world.fire(job, world.now)
    (run,) = world.runs.kept.values()
    ticket = ExportTicket(
        ticket_id=run.ticket_id or "", owner="job:1", report_id=7, report_slug="daily", report_name="Daily",
        format="csv", parameters={}, cache_key="k", status=TicketStatus.COMPLETE, created_at=world.now,
        updated_at=world.now, expires_at=world.now + timedelta(days=7), total_rows=3, total_bytes=10,
        file_key="exports/x.csv", file_name="daily.csv", content_type="text/csv",
    )  # fmt: skip
    mails: list[list[str]] = []

    class Mailer:
        def send(self, message: Any, recipients: Any) -> str:
            mails.append(list(recipients))
            return f"m{len(mails)}"

    world.runner.ticket = lambda _id: ticket
    world.runner.files = type("Files", (), {"read": lambda _s, _k: b"a,b\n1,2\n"})()
    world.runner.mailer = Mailer()
    world.runner.sender = "reports@example.com"
    return world, DeliveryMessage(job_id=job.id, deliver=run.key), mails


def test_a_delivery_held_by_another_is_left_to_it_until_its_lease_runs_out() -> None:
    world, message, mails = _delivery()
    key = (message.job_id, message.deliver)
    # Given another delivery took the run a minute ago (and, say, its function was then killed)
    lease = world.now + timedelta(minutes=9)
    held = msgspec.structs.replace(world.runs.kept[key], status="delivering", lease_until=lease)
    world.runs.kept[key] = held
    assert world.runner.deliver(message) == "duplicate"
    assert mails == []
    # When its lease is over, the next message takes the run and mails it
    world.now += timedelta(minutes=10)
    assert world.runner.deliver(message) == "delivered"
    assert mails == [["a@example.com"]]
    assert world.runner.deliver(message) == "duplicate"


def test_more_addresses_than_ses_takes_in_one_mail_go_in_several() -> None:
    addresses = [f"r{n}@example.com" for n in range(100)]
    world, message, mails = _delivery(subscribedEmails=addresses)
    assert world.runner.deliver(message) == "delivered"
    assert [len(m) for m in mails] == [50, 50]
    assert sorted(a for m in mails for a in m) == sorted(addresses)


def test_a_recipient_refused_then_retried_is_recorded_once() -> None:
    from reportserver.domain.errors import MailRefused

    world, message, mails = _delivery(sendIndividualEmails=True, subscribedEmails=["a@example.com", "b@example.com"])
    calls = {"n": 0}

    class Flaky:
        def send(self, _message: Any, recipients: Any) -> str:
            calls["n"] += 1
            if calls["n"] == 1:
                raise MailRefused("SES refused the mail (MessageRejected)")
            if calls["n"] == 2:
                raise ConnectionError("SES throttled")
            mails.append(list(recipients))
            return "m"

    world.runner.mailer = Flaky()
    with pytest.raises(ConnectionError):
        world.runner.deliver(message)
    assert world.runner.deliver(message) == "delivered"
    run = world.runs.kept[(message.job_id, message.deliver)]
    outcomes = sorted((r.address, r.status) for r in run.recipients)
    assert outcomes == [("a@example.com", "sent"), ("b@example.com", "sent")]


def test_a_file_too_big_to_attach_is_mailed_as_a_link_that_lives_as_long_as_the_file() -> None:
    from email.message import EmailMessage

    from reportserver.domain.links import DownloadLink, link_hash

    world, message, _mails = _delivery(retentionPeriod=30)
    big = msgspec.structs.replace(world.runner.ticket(""), total_bytes=7_000_001)  # type: ignore[type-var]
    world.runner.ticket = lambda _id: big
    kept: dict[str, DownloadLink] = {}
    sent: list[EmailMessage] = []
    world.runner.links = type("Links", (), {"put_link": lambda _s, link: kept.update({link.link_hash: link})})()
    world.runner.service_url = "https://api.example.com/Prod/"
    world.runner.new_link_secret = lambda: "rl_" + "s" * 43
    mailer = world.runner.mailer
    world.runner.mailer = type("M", (), {"send": lambda _s, m, r: (sent.append(m), mailer.send(m, r))[1]})()  # type: ignore[union-attr]
    assert world.runner.deliver(message) == "delivered"
    # The mail carries the service's link, not the file; the link is kept by its secret's hash only
    (mail,) = sent
    assert list(mail.iter_attachments()) == []
    assert "https://api.example.com/Prod/api/links/rl_" + "s" * 43 in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = kept.values()
    assert link.link_hash == link_hash("rl_" + "s" * 43) and link.file_key == "exports/x.csv"
    # And it works while the file is kept (7 days here), not for the run's 30 days of retention
    assert link.expires_at == big.expires_at < world.now + timedelta(days=30)
    run = world.runs.kept[(message.job_id, message.deliver)]
    assert run.links == [link.link_hash] and run.link_expires == big.expires_at


def _owned_by_a_user(world: World, job_id: int, email: str = "owner@example.com") -> None:
    job = world.store.rows[job_id]
    world.store.rows[job_id] = msgspec.structs.replace(job, owner_kind="user", owner_name="olga")
    owner = type("User", (), {"email": email, "active": True})()
    world.runner.owners = type("O", (), {"user_by_name": lambda _s, n: owner if n == "olga" else None,
                                        "groups": lambda _s: [], "token": lambda _s, _n: None})()  # fmt: skip


def test_a_delivery_failing_on_passing_faults_gives_up_after_five_attempts_and_tells_the_owner() -> None:
    from reportserver.domain.job_runs import MAX_DELIVERY_ATTEMPTS

    world, message, mails = _delivery()
    _owned_by_a_user(world, message.job_id)
    notices: list[Any] = []
    failing_since = len(mails)

    class Throttled:
        def send(self, mail: Any, recipients: Any) -> str:
            if recipients == ["owner@example.com"]:
                notices.append(mail)
                return "n"
            raise ConnectionError("SES throttled")

    world.runner.mailer = Throttled()
    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        with pytest.raises(ConnectionError):
            world.runner.deliver(message)
        assert notices == []
    assert world.runner.deliver(message) == "failed"
    run = world.runs.kept[(message.job_id, message.deliver)]
    assert run.error == "Delivery gave up after 5 attempts: ConnectionError" and run.attempts == 5
    (notice,) = notices
    assert notice["To"] == "owner@example.com" and "failed" in notice["Subject"]
    assert run.error in notice.get_content() and run.owner_notified == "owner@example.com"
    assert len(mails) == failing_since  # nobody got the report
    assert world.runner.deliver(message) == "duplicate"


def test_the_sweeper_finishes_each_run_from_where_it_stands() -> None:
    from reportserver.domain.job_runs import STUCK_AFTER, RunMessage

    world, delivered_message, mails = _delivery()
    _owned_by_a_user(world, delivered_message.job_id)
    complete = world.runner.ticket("")
    assert complete is not None
    job = world.store.rows[delivered_message.job_id]
    # Four runs, each stopped an hour ago: a file made but never announced; a start whose export was never
    # asked for; an export still under way; a delivery whose lease is still live
    keys = {}
    for name, hours in (("made", 1), ("unasked", 2), ("rendering", 3), ("held", 4)):
        at = world.now - timedelta(hours=hours)
        message = RunMessage(job_id=job.id, version=1, scheduled_time=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        keys[name] = message.key()
        world.runs.record_run(JobRun(job_id=job.id, key=keys[name], trigger="schedule", requested_by="schedule",
                                     run_at=at, job_version=1, updated_at=at, expires_at=at + timedelta(days=30),
                                     ticket_id=None if name == "unasked" else f"t-{name}"))  # fmt: skip
    held = world.runs.kept[(job.id, keys["held"])]
    world.runs.kept[(job.id, keys["held"])] = msgspec.structs.replace(
        held, status="delivering", lease_until=world.now + STUCK_AFTER + timedelta(minutes=5)
    )
    rendering = msgspec.structs.replace(complete, status=TicketStatus.IN_PROGRESS)
    tickets = {"t-made": complete, "t-rendering": rendering, "t-held": complete}
    world.runner.ticket = tickets.get
    world.now += STUCK_AFTER  # nothing changed since
    before = len(mails)
    counts = world.runner.sweep()
    states = {name: world.runs.kept[(job.id, key)].status for name, key in keys.items()}
    assert states == {"made": "delivered", "unasked": "failed", "rendering": "exporting", "held": "delivering"}
    assert counts == {"delivered": 1, "failed": 1, "left": 2, "files removed": 0}, counts
    assert mails[before:] == [["a@example.com"], ["owner@example.com"]]  # the made one's mail; the notice
    unasked = world.runs.kept[(job.id, keys["unasked"])]
    assert unasked.error == "The run stopped before its export was asked for"
    assert unasked.owner_notified == "owner@example.com"
    # A second sweep finds nothing more to do
    again = world.runner.sweep()
    assert again == {"delivered": 0, "failed": 0, "left": 2, "files removed": 0}


def test_a_start_retried_while_its_first_attempt_delivered_never_puts_the_run_back_or_mails_again() -> None:
    world, message, mails = _delivery()
    key = (message.job_id, message.deliver)
    # Given the run is recorded without its ticket (an attempt stopped there), so a retried start carries on
    kept = world.runs.kept[key]
    world.runs.kept[key] = msgspec.structs.replace(kept, ticket_id=None)
    complete = world.runner.ticket("")

    class Racing:
        def request(self, principal: Any, order: Any, run: str | None = None, keep_days: int | None = None) -> Any:
            # Meanwhile the first attempt's file is made and delivered
            world.runs.kept[key] = msgspec.structs.replace(world.runs.kept[key], ticket_id="t")
            assert world.runner.deliver(message) == "delivered"
            return complete

    world.runner.exporter = Racing()
    job = world.store.rows[message.job_id]
    retried = RunMessage(job_id=job.id, version=1, scheduled_time=world.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    # When the retried start asks for the export and writes its ticket
    assert world.runner.start(retried) == "duplicate"
    # Then the run stays delivered, mailed once
    assert world.runs.kept[key].status == "delivered" and world.runs.kept[key].attempts == 1
    assert mails == [["a@example.com"]]


def test_a_failing_per_recipient_run_tells_its_owner_once() -> None:
    from reportserver.domain.errors import InvalidParameter

    world, job, queued = _billing_world([(f"r{n}@example.com", "NSW") for n in range(3)])
    _owned_by_a_user(world, job.id)
    notices: list[Any] = []
    world.runner.mailer = type("M", (), {"send": lambda _s, m, r: (notices.append(r), "n")[1]})()
    world.runner.sender = "reports@example.com"

    class Refusing:
        def request(self, principal: Any, order: Any, run: str | None = None, keep_days: int | None = None) -> Any:
            raise InvalidParameter("region", "No such region")

    world.runner.exporter = Refusing()
    world.runner._owner = lambda _job, _now: ADMIN  # type: ignore[method-assign]  # its rights are not the point
    assert world.fire(job, world.now) == "burst"
    assert [world.runner.start_recipient(m) for m in queued] == ["failed"] * 3
    assert notices == [["owner@example.com"]]


@pytest.mark.parametrize(
    ("event", "status", "run_status"),
    [
        ({"eventType": "Bounce",
          "bounce": {"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "A@example.com"}]}},
         "bounced", "delivered"),
        ({"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "a@example.com"}]}},
         "complained", "delivered"),
        ({"eventType": "Bounce",
          "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "a@example.com"}]}},
         "bounced", "failed"),
    ],
)  # fmt: skip
def test_what_ses_reports_later_is_marked_on_the_address_and_only_a_permanent_bounce_fails_the_run(
    event: dict[str, Any], status: str, run_status: str
) -> None:
    from reportserver.domain.job_runs import MailEvent

    world, message, _mails = _delivery()
    assert world.runner.deliver(message) == "delivered"
    run = world.runs.kept[(message.job_id, message.deliver)]
    (sent,) = run.recipients
    decoded = msgspec.convert(event | {"mail": {"messageId": sent.message_id}}, MailEvent)
    assert world.runner.mail_event(decoded) == status
    run = world.runs.kept[(message.job_id, message.deliver)]
    assert (run.recipients[0].status, run.status) == (status, run_status)
    assert world.runner.mail_event(decoded) == "duplicate"  # SNS may deliver it twice
    other = msgspec.convert(event | {"mail": {"messageId": "someone-elses"}}, MailEvent)
    assert world.runner.mail_event(other) == "no run"
