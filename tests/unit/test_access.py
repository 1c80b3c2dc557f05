"""The one authorization function: permissions (seed 001's bitmask and scopes, seed 004's names), the
report groups rule, embed sessions, and what a principal may hand on."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reportserver.domain.access import (
    ALL_ACCESS,
    Action,
    Grant,
    Permission,
    Principal,
    ReportTarget,
    Scope,
    authorize,
    checked_grants,
    covers,
    decide,
)
from reportserver.domain.errors import Forbidden, InvalidDefinition, Unauthenticated

REPORT = ReportTarget(id=7, groups=("finance",))
READ, MODIFY = 2, 4


def who(
    groups: tuple[str, ...] = (),
    grants: tuple[Grant | str, ...] = (),
    kind: str = "token",
    only_report: int | None = None,
) -> Principal:
    return Principal(kind, "t", groups, tuple(checked_grants(grants)), "t-id", only_report=only_report)  # type: ignore[arg-type]


grants_strategy = st.one_of(
    st.sampled_from(sorted(Permission.ALL)).map(Grant),
    st.builds(Grant, st.sampled_from(sorted(Scope.WITHOUT_ENTITY)), st.integers(1, ALL_ACCESS)),
    st.builds(Grant, st.sampled_from(sorted(Scope.WITH_ENTITY)), st.integers(1, ALL_ACCESS), st.integers(1, 10**12)),
)
group_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True) | st.just("*")
principals = st.builds(
    Principal,
    st.sampled_from(["token", "user", "nonce"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,30}", fullmatch=True),
    st.lists(group_names, max_size=5).map(tuple),
    st.lists(grants_strategy, max_size=6).map(lambda g: tuple(checked_grants(g))),
    st.from_regex(r"[A-Za-z0-9-]{1,40}", fullmatch=True),
    st.just(""),
    st.none() | st.integers(1, 10**12),
    st.none() | st.integers(0, 10**12),
    st.none() | st.integers(0, 2**40),
)


@given(principals)
def test_a_principal_round_trips_through_the_authorizer_context(principal: Principal) -> None:
    context = {k: str(v) for k, v in principal.to_context().items()}  # API Gateway hands on strings
    assert Principal.from_context({**context, "principalId": "x"}) == principal


def test_a_request_without_the_authorizers_context_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        Principal.from_context({})
    with pytest.raises(Unauthenticated):
        Principal.from_context({"kind": "root", "name": "x", "owner_id": "y"})


@pytest.mark.parametrize(
    ("groups", "report_groups", "allowed"),
    [
        (("*",), ("finance",), True),
        (("sales",), ("*",), True),
        (("sales",), ("finance",), False),
        (("sales", "finance"), ("finance",), True),
        ((), ("finance",), False),
    ],
)
def test_the_report_groups_rule_is_one_way_to_run_a_report(
    groups: tuple[str, ...], report_groups: tuple[str, ...], allowed: bool
) -> None:
    report = ReportTarget(id=1, groups=report_groups)
    assert decide(who(groups), Action.RUN_REPORT, report).allowed is allowed


@pytest.mark.parametrize(
    ("grants", "allowed"),
    [
        ((Grant("document", READ, 7),), True),
        ((Grant("document", READ, 8),), False),  # another report
        ((Grant("document", MODIFY, 7),), False),  # no read bit
        ((Grant("allDocuments", READ),), True),
        ((Grant("allDocuments", READ | MODIFY),), True),
        ((Grant("allDataModels", ALL_ACCESS),), False),
        ((Grant("admin"),), True),
        ((Grant("refresh_data"),), False),
        ((Grant("documentsInCategory", READ, 3),), False),  # categories are enforced with their issue
    ],
)
def test_read_permissions_on_documents_let_a_principal_run_a_report(grants: tuple[Grant, ...], allowed: bool) -> None:
    assert decide(who(("sales",), grants), Action.RUN_REPORT, REPORT).allowed is allowed


def test_only_admin_may_administer_and_the_refusal_says_why() -> None:
    with pytest.raises(Forbidden, match=r"token 't' lacks the 'admin' permission"):
        authorize(who(("*",), ("execute_subscription", Grant("allDocuments", ALL_ACCESS))), Action.ADMIN)
    authorize(who((), ("admin",)), Action.ADMIN)


@pytest.mark.parametrize("action", [Action.EXECUTE_SUBSCRIPTION, Action.REFRESH_DATA])
def test_named_permissions_are_needed_for_their_actions(action: Action) -> None:
    assert not decide(who(("*",)), action).allowed
    assert decide(who((), (action.value,)), action).allowed
    assert decide(who((), ("admin",)), action).allowed


def test_an_embed_session_views_reports_only_and_only_its_own() -> None:
    session = who(("finance",), kind="nonce", only_report=7)
    assert decide(session, Action.RUN_REPORT, REPORT).allowed
    assert not decide(session, Action.RUN_REPORT, ReportTarget(id=8, groups=("finance",))).allowed
    admin_session = who((), ("admin",), kind="nonce")
    for action in (Action.ADMIN, Action.MANAGE_OWN_TOKENS, Action.CREATE_NONCE):
        assert not decide(admin_session, action).allowed, action


@pytest.mark.parametrize(
    ("given_grant", "message"),
    [
        (Grant("root"), "Unknown permission or scope 'root'"),
        (Grant("document", 0, 7), "accessMode of 'document' must be 1 to 15"),
        (Grant("document", 16, 7), "accessMode of 'document' must be 1 to 15"),
        (Grant("document", -1, 7), "accessMode"),
        (Grant("document", READ), "names one object: give its entityId"),
        (Grant("allDocuments", READ, 7), "covers every object"),
        (Grant("document", READ, 0), "entityId of 'document' must be a positive"),
        (Grant("admin", READ), "takes no accessMode or entityId"),
        (Grant("refresh_data", 0, 3), "takes no accessMode or entityId"),
    ],
)
def test_bad_permissions_are_refused_naming_the_fault(given_grant: Grant, message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        checked_grants([given_grant])


@given(st.lists(grants_strategy, max_size=8))
def test_checked_grants_are_a_sorted_set(grants: list[Grant]) -> None:
    checked = checked_grants(grants)
    assert set(checked) == set(grants) and len(checked) == len(set(grants))
    assert checked_grants(reversed(checked)) == checked


# Few ids and modes, so that holder and receiver often name the same report with other bits.
modes = st.sampled_from([1, 2, 4, 8, 6, ALL_ACCESS])
reports = st.builds(
    ReportTarget, st.integers(1, 3), st.lists(st.sampled_from(["*", "sales", "finance", "hr"]), max_size=2).map(tuple)
)
small_grants = st.one_of(
    st.sampled_from(sorted(Permission.ALL)).map(Grant),
    st.builds(Grant, st.sampled_from(sorted(Scope.WITHOUT_ENTITY)), modes),
    st.builds(Grant, st.sampled_from([Scope.DOCUMENT, Scope.DOCUMENTS_IN_CATEGORY]), modes, st.integers(1, 3)),
)
small_groups = st.lists(st.sampled_from(["*", "sales", "finance", "hr"]), max_size=3)


# What each group carries: the receiver of a group gets its permissions when it authenticates.
CARRIED = {"sales": (Grant("document", READ, 1),), "finance": (Grant("admin"),), "hr": ()}


@given(
    small_groups,
    st.lists(small_grants, max_size=4),
    small_groups,
    st.lists(small_grants, max_size=4),
    st.lists(reports, min_size=1, max_size=6),
)
@example(["hr"], [Grant("document", MODIFY, 1)], [], [Grant("document", READ, 1)], [ReportTarget(1, ("finance",))])
@example(["hr"], [Grant("documentsInCategory", READ, 1)], [], [Grant("allDocuments", READ)], [ReportTarget(2, ())])
@example(["*"], [], ["finance"], [], [ReportTarget(1, ("hr",))])  # found: * handed on a group carrying admin
def test_what_a_principal_may_hand_on_never_lets_the_receiver_do_more(
    holder_groups: list[str],
    holder_grants: list[Grant],
    wanted_groups: list[str],
    wanted_grants: list[Grant],
    targets: list[ReportTarget],
) -> None:
    holder_carried = [g for name in holder_groups for g in CARRIED.get(name, ())]
    holder = who(tuple(holder_groups), tuple([*holder_grants, *holder_carried]))
    carried = lambda name: CARRIED.get(name, ())  # noqa: E731
    if covers(holder, wanted_groups, checked_grants(wanted_grants), carried) is not None:
        return
    # The receiver as it authenticates: its groups, its own permissions and what its groups carry
    receiver_carried = [g for name in wanted_groups for g in carried(name)]
    receiver = who(tuple(wanted_groups), tuple([*wanted_grants, *receiver_carried]))
    # Whatever the receiver may run or do, its maker may too; and admin comes only from an admin.
    for target in targets:
        if decide(receiver, Action.RUN_REPORT, target).allowed:
            assert decide(holder, Action.RUN_REPORT, target).allowed, target
    for action in (Action.ADMIN, Action.EXECUTE_SUBSCRIPTION, Action.REFRESH_DATA):
        if decide(receiver, action).allowed:
            assert decide(holder, action).allowed, action


def test_what_a_principal_lacks_is_named() -> None:
    holder = who(("sales",), (Grant("allDocuments", READ),))
    assert covers(holder, ["sales"], [Grant("document", READ, 9)]) is None
    assert covers(holder, ["finance"], []) == "group 'finance'"
    assert covers(holder, [], [Grant("document", READ | MODIFY, 9)]) == "document permission (accessMode 6)"
    assert covers(holder, [], [Grant("admin")]) == "permission 'admin'"
    assert covers(who(("*",)), ["finance", "*"], []) is None  # finance carries nothing here
    carrying = {"finance": [Grant("admin")]}
    assert covers(who(("*",)), ["finance"], [], lambda g: carrying.get(g, [])) == (
        "group 'finance', which carries permission 'admin'"
    )
    assert covers(who(("finance",), ("admin",)), ["finance"], [], lambda g: carrying.get(g, [])) is None


def test_the_guest_account_makes_no_tokens_and_an_embed_session_none_either() -> None:
    guest = Principal("user", "guest", ("sales",), (), "user-guest", user_id=4)
    assert not decide(guest, Action.MANAGE_OWN_TOKENS).allowed
    assert decide(Principal("user", "ada", ("sales",), (), "user-1", user_id=1), Action.MANAGE_OWN_TOKENS).allowed
    assert not decide(who(kind="nonce"), Action.MANAGE_OWN_TOKENS).allowed
