"""Embedding a report in another site's page (seed 003): single-use nonces and the view's session.

A server that holds a token (or a logged-in user) asks for a nonce (`POST /api/v1/nonce-tokens`) and
puts it in an iframe's URL, `?nonce=`. The first request with it consumes it, atomically (a conditional
delete: of two requests racing with one nonce exactly one gets in), and opens an embed session, kept by
an HttpOnly cookie that authenticates the report view's routes only. The nonce and the session carry a
copy of the creator's rights at that moment, narrowed to one report when it names one, and the
parameters it fixes (`locked`: a viewer cannot change them, so a page can show a customer its own rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol

import msgspec

from reportserver.domain.access import Action, Principal, ReportTarget, authorize
from reportserver.domain.errors import InvalidParameter, Unauthenticated
from reportserver.domain.tokens import checksum_holds, generate_secret, hash_secret

NONCE_PREFIX = "rsn_"
VIEW_SESSION_PREFIX = "rsv_"
VIEW_COOKIE = "rs_view"
DEFAULT_NONCE_SECONDS = 60
MAX_NONCE_SECONDS = 300
Value = str | int | bool


class NonceRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /api/v1/nonce-tokens`: an optional report (id or slug), the parameters it fixes."""

    report_id: int | str | None = None
    parameters: dict[str, Value | list[Value]] = msgspec.field(default_factory=dict)
    expires_in: Annotated[int, msgspec.Meta(ge=5, le=MAX_NONCE_SECONDS)] = DEFAULT_NONCE_SECONDS


class EmbedGrant(msgspec.Struct, kw_only=True):
    """What a nonce or a session holds: its creator's rights then, and the parameters it fixes."""

    context: dict[str, str]  # the creator's principal, as the authorizer passes principals on
    usage_key: str  # the creator's API key: the views' requests count against its rate
    locked: dict[str, list[str]]
    expires_at: datetime

    def principal(self) -> Principal:
        context: dict[str, object] = dict(self.context)
        creator = Principal.from_context(context)
        return Principal(
            kind="nonce",
            name=creator.name,
            groups=creator.groups,
            grants=creator.grants,
            owner_id=creator.owner_id,
            usage_key=self.usage_key,
            only_report=creator.only_report,
            user_id=creator.user_id,
        )


class EmbedStore(Protocol):
    def put_nonce(self, nonce_hash: str, grant: EmbedGrant) -> None: ...

    def take_nonce(self, nonce_hash: str) -> EmbedGrant | None:
        """Delete the nonce and return what it held, in one conditional step; None if it is not there
        (never was, or already taken)."""
        ...

    def put_view(self, session_hash: str, grant: EmbedGrant) -> None: ...

    def view(self, session_hash: str) -> EmbedGrant | None: ...


def _text(value: Value | list[Value]) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]


def create_nonce(
    store: EmbedStore,
    principal: Principal,
    report: ReportTarget | None,
    locked: dict[str, Value | list[Value]],
    now: datetime,
    seconds: int = DEFAULT_NONCE_SECONDS,
) -> tuple[str, int]:
    """A nonce for what `principal` may read: one report (`report`), or any it may read. The caller has
    checked the locked parameters against the report. Returns the nonce and its lifetime."""
    authorize(principal, Action.CREATE_NONCE, report)
    if locked and report is None:
        raise InvalidParameter("parameters", "Fixed parameters need a report (report_id)")
    narrowed = Principal(
        kind=principal.kind,
        name=principal.name,
        groups=principal.groups,
        grants=principal.grants,
        owner_id=principal.owner_id,
        only_report=report.id if report is not None else None,
        user_id=principal.user_id,
    )
    nonce = generate_secret(NONCE_PREFIX)
    grant = EmbedGrant(
        context=narrowed.to_context(),
        usage_key=principal.usage_key,
        locked={name: _text(value) for name, value in locked.items()},
        expires_at=now + timedelta(seconds=seconds),
    )
    store.put_nonce(hash_secret(nonce), grant)
    return nonce, seconds


@dataclass(frozen=True)
class ViewSessions:
    store: EmbedStore
    clock: Callable[[], datetime]
    session_seconds: int = 900
    # Whether the nonce's maker still stands (a token active and unexpired, a user active): read on
    # every view request, so that revoking the maker ends its embeds at once, as its own requests.
    maker_stands: Callable[[Principal], bool] = lambda _: True

    def open(self, nonce: str | None, cookie: str | None) -> tuple[EmbedGrant, str | None]:
        """The embed session of a request: from its nonce (consumed now; a new session's secret is
        returned for the cookie), else from its cookie. `Unauthenticated` otherwise."""
        now = self.clock()
        if nonce:
            if not checksum_holds(nonce, NONCE_PREFIX):
                raise Unauthenticated("Invalid nonce")
            grant = self.store.take_nonce(hash_secret(nonce))
            if grant is None:
                raise Unauthenticated("This nonce was used already or never issued: ask the page for a new one")
            if grant.expires_at <= now:
                raise Unauthenticated("This nonce has expired: ask the page for a new one")
            self._check_maker(grant)
            session = generate_secret(VIEW_SESSION_PREFIX)
            opened = msgspec.structs.replace(grant, expires_at=now + timedelta(seconds=self.session_seconds))
            self.store.put_view(hash_secret(session), opened)
            return opened, session
        if cookie:
            if not checksum_holds(cookie, VIEW_SESSION_PREFIX):
                raise Unauthenticated("Invalid embed session")
            found = self.store.view(hash_secret(cookie))
            if found is None or found.expires_at <= now:
                raise Unauthenticated("The embed session has ended: reload the page")
            self._check_maker(found)
            return found, None
        raise Unauthenticated("Open the report view with ?nonce=, or with its session cookie")

    def _check_maker(self, grant: EmbedGrant) -> None:
        if not self.maker_stands(grant.principal()):
            raise Unauthenticated("The token or user that made this embed no longer may: ask the page again")


def cookie_value(header: str | None) -> str | None:
    """The embed session's cookie from a Cookie header (the first of that name)."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == VIEW_COOKIE and value:
            return value.strip()
    return None
