"""In-memory stand-ins for the storage protocols, so domain tests need no AWS."""

from __future__ import annotations

from reportserver.domain.access import Principal, PrincipalKind, checked_grants
from reportserver.domain.errors import AlreadyExists
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report
from reportserver.domain.tokens import ApiToken


def principal(
    name: str, groups: tuple[str, ...], permissions: tuple[str, ...] = (), kind: PrincipalKind = "token"
) -> Principal:
    """A principal as the authorizer would hand it on: named permissions only."""
    return Principal(kind, name, groups, tuple(checked_grants(permissions)), f"{name}-id")


class MemoryTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, ApiToken] = {}

    def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
        return self.tokens.get(name)

    def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None:
        return next((t for t in self.tokens.values() if t.secret_hash == secret_hash), None)

    def create(self, token: ApiToken) -> None:
        if token.name in self.tokens:
            raise AlreadyExists(token.name)
        self.tokens[token.name] = token

    def list_tokens(self) -> list[ApiToken]:
        return sorted(self.tokens.values(), key=lambda t: t.name)

    def delete(self, name: str, secret_hash: str | None = None) -> bool:
        return self.tokens.pop(name, None) is not None

    def set_active(self, token: ApiToken, active: bool) -> bool:
        token.active = active
        return True


class MemoryUsageKeys:
    """API keys of a usage plan, by id: what `issue_token` adds and a deletion removes."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def add(self, name: str, owner_id: str, value: str) -> str:
        if value in self.keys.values():
            raise AssertionError("API Gateway refuses a second key of the same value")
        key_id = f"key-{len(self.keys) + 1}"
        self.keys[key_id] = value
        return key_id

    def remove(self, key_id: str) -> None:
        self.keys.pop(key_id, None)


class MemoryCatalog:
    def __init__(self, reports: list[Report], sources: list[DataSource]) -> None:
        self.reports = {r.id: r for r in reports}
        self.sources = {s.id: s for s in sources}

    def report_by_id(self, report_id: int) -> Report | None:
        return self.reports.get(report_id)

    def report_by_slug(self, slug: str) -> Report | None:
        return next((r for r in self.reports.values() if r.slug == slug), None)

    def report_by_field_id(self, field_id: int) -> Report | None:
        return next((r for r in self.reports.values() if any(f.id == field_id for f in r.fields)), None)

    def list_reports(self) -> list[Report]:
        return list(self.reports.values())

    def data_source(self, data_source_id: str) -> DataSource | None:
        return self.sources.get(data_source_id)


class MemoryIdentity:
    """Users, groups, access tokens and failed logins in memory (the identity store's protocols)."""

    def __init__(self) -> None:
        from reportserver.domain.identity import User, UserGroup
        from reportserver.domain.sessions import AccessSession

        self.users_by_id: dict[int, User] = {}
        self.groups_by_id: dict[int, UserGroup] = {}
        self.sessions: dict[str, AccessSession] = {}
        self.attempts: dict[str, tuple[int, object]] = {}
        self.known: dict[str, object] = {}
        self._ids = {"user": 0, "group": 0}

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def user(self, user_id: int) -> object:
        return self.users_by_id.get(user_id)

    def user_by_name(self, user_name: str) -> object:
        return next((u for u in self.users_by_id.values() if u.user_name.lower() == user_name.lower()), None)

    def users(self) -> list[object]:
        return list(self.users_by_id.values())

    def create_user(self, user: object) -> None:
        if self.user_by_name(user.user_name) is not None:  # type: ignore[attr-defined]
            raise AlreadyExists(user.user_name)  # type: ignore[attr-defined]
        self.users_by_id[user.id] = user  # type: ignore[attr-defined]

    def groups(self) -> list[object]:
        return list(self.groups_by_id.values())

    def put_session(self, session: object) -> None:
        self.sessions[session.token_hash] = session  # type: ignore[attr-defined]

    def session(self, token_hash: str) -> object:
        return self.sessions.get(token_hash)

    def failures(self, key: str, now: object) -> tuple[int, object]:
        return self.attempts.get(key, (0, None))  # type: ignore[return-value]

    def record_failure(self, key: str, now: object, hold_until: object, forget_at: object) -> int:
        count = self.attempts.get(key, (0, None))[0] + 1
        previous = self.attempts.get(key, (0, None))[1]
        self.attempts[key] = (count, hold_until or previous)
        return count

    def clear(self, key: str) -> None:
        self.attempts.pop(key, None)

    def remember(self, key: str, forget_at: object) -> None:
        self.known[key] = forget_at

    def remembered(self, key: str, now: object) -> bool:
        return key in self.known and self.known[key] > now  # type: ignore[operator]
