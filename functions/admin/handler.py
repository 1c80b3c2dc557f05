"""Administration: API tokens (seeds 000 and 004), users and user groups with their permissions (seed 001)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.audit import search_audit
from reportserver.domain.identity import (
    GroupChange,
    GroupCreate,
    IdentityAdmin,
    PasswordChange,
    PermissionsChange,
    UserChange,
    UserCreate,
    VersionOnly,
)
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.token_admin import TokenAdmin, TokenRequest
from reportserver.http import audit
from reportserver.http.api import caller, has_body, install_error_handlers, json_body, json_response, query_parameters
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import AdminSettings
from reportserver.store.audit import DynamoAuditStore
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.tokens import DynamoTokenStore
from reportserver.store.usage import AuthorizerCache, UsagePlanKeys

settings = AdminSettings.from_environ()
tokens_store = DynamoTokenStore(settings.tokens_table)
identity_store = DynamoIdentityStore(settings.identity_table)
catalog = DynamoCatalog(settings.catalog_table)
audit_store = DynamoAuditStore(settings.audit_table, settings.audit_retention_days)
usage = UsagePlanKeys(usage_plan_name=settings.usage_plan_name)
authorizer_cache = AuthorizerCache()


def _now() -> datetime:
    return datetime.now(UTC)


def _group_use(name: str) -> str | None:
    """What names this group: a token, or a report (they name groups by name)."""
    token = next((t.name for t in tokens_store.list_tokens() if name in t.groups), None)
    if token is not None:
        return f"the token '{token}'"
    report = next((r.slug for r in catalog.list_reports() if name in r.groups), None)
    return f"the report '{report}'" if report is not None else None


def _revoked() -> None:
    """Rights were taken away: API Gateway's cached decisions for this stage go at once. The change has
    landed already: a flush that fails (twice) is logged and counted, never answered as a 500."""
    context = app.current_event.request_context
    for attempt in (1, 2):
        try:
            authorizer_cache.flush(context.api_id, context.stage)
            return
        except Exception:
            logger.warning("authorizer cache flush failed", extra={"attempt": attempt}, exc_info=True)
    metrics.add_metric(name="AuthorizerFlushFailures", unit=MetricUnit.Count, value=1)


token_admin = TokenAdmin(tokens_store, usage, _now, identity_store.groups, _revoked)
identity = IdentityAdmin(
    identity_store,
    usage,
    PasswordHasher(n=settings.scrypt_cost),
    _now,
    _group_use,
    token_admin.revoke_made_by,
    _revoked,
    identity_store,
)
app = Resolver()
install_error_handlers(app)


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, "message": "", **fields}


# Tokens


@app.post("/api/tokens")
def create_token() -> Response[str]:
    created = token_admin.create(caller(app), json_body(app, TokenRequest))
    metrics.add_metric(name="TokensCreated", unit=MetricUnit.Count, value=1)
    return json_response(created, 201, {"Cache-Control": "no-store"})


@app.get("/api/tokens")
def list_tokens() -> Response[str]:
    return json_response(token_admin.list(caller(app)))


@app.get("/api/tokens/<name>")
def get_token(name: str) -> Response[str]:
    return json_response(token_admin.get(caller(app), name))


@app.delete("/api/tokens/<name>")
def delete_token(name: str) -> Response[str]:
    return json_response(token_admin.delete(caller(app), name))


@app.post("/api/tokens/<name>/deactivate")
def deactivate_token(name: str) -> Response[str]:
    return json_response(token_admin.set_active(caller(app), name, active=False))


@app.post("/api/tokens/<name>/activate")
def activate_token(name: str) -> Response[str]:
    return json_response(token_admin.set_active(caller(app), name, active=True))


# User groups


@app.post("/api/usergroups")
def create_group() -> Response[str]:
    group = identity.create_group(caller(app), json_body(app, GroupCreate))
    return json_response(_ok(group=group.view()), 201)


@app.get("/api/usergroups")
def list_groups() -> Response[str]:
    return json_response(_ok(groups=[g.view() for g in identity.list_groups(caller(app))]))


@app.get("/api/usergroups/<group_id>")
def get_group(group_id: str) -> Response[str]:
    return json_response(_ok(group=identity.group(caller(app), group_id).view()))


@app.put("/api/usergroups/<group_id>")
def rename_group(group_id: str) -> Response[str]:
    group = identity.rename_group(caller(app), group_id, json_body(app, GroupChange))
    return json_response(_ok(group=group.view()))


@app.delete("/api/usergroups/<group_id>")
def delete_group(group_id: str) -> Response[str]:
    body = json_body(app, VersionOnly) if has_body(app) else None
    identity.delete_group(caller(app), group_id, body)
    return json_response(_ok(message=f"User group {group_id} deleted"))


@app.get("/api/usergroups/<group_id>/permissions")
def group_permissions(group_id: str) -> Response[str]:
    group = identity.group_permissions(caller(app), group_id, None)
    return json_response(_permissions(group.version, group.permissions))


@app.post("/api/usergroups/<group_id>/permissions")
def add_group_permissions(group_id: str) -> Response[str]:
    group = identity.group_permissions(caller(app), group_id, json_body(app, PermissionsChange))
    return json_response(_permissions(group.version, group.permissions))


@app.post("/api/usergroups/<group_id>/permissions/delete")
def remove_group_permissions(group_id: str) -> Response[str]:
    group = identity.group_permissions(caller(app), group_id, json_body(app, PermissionsChange), remove=True)
    return json_response(_permissions(group.version, group.permissions))


# Users


@app.post("/api/users")
def create_user() -> Response[str]:
    user = identity.create_user(caller(app), json_body(app, UserCreate))
    return json_response(_ok(user=user.view()), 201)


@app.get("/api/users")
def list_users() -> Response[str]:
    return json_response(_ok(users=[u.view() for u in identity.list_users(caller(app))]))


@app.get("/api/users/<user_id>")
def get_user(user_id: str) -> Response[str]:
    return json_response(_ok(user=identity.user(caller(app), user_id).view()))


@app.put("/api/users/<user_id>")
def change_user(user_id: str) -> Response[str]:
    user = identity.change_user(caller(app), user_id, json_body(app, UserChange))
    return json_response(_ok(user=user.view()))


@app.delete("/api/users/<user_id>")
def delete_user(user_id: str) -> Response[str]:
    identity.delete_user(caller(app), user_id)
    return json_response(_ok(message=f"User {user_id} deleted"))


@app.put("/api/users/<user_id>/password")
def change_password(user_id: str) -> Response[str]:
    user = identity.change_password(caller(app), user_id, json_body(app, PasswordChange))
    return json_response(_ok(message="Password changed; access tokens issued before no longer work", user=user.view()))


@app.get("/api/users/<user_id>/permissions")
def user_permissions(user_id: str) -> Response[str]:
    user = identity.user_permissions(caller(app), user_id, None)
    return json_response(_permissions(user.version, user.permissions))


@app.post("/api/users/<user_id>/permissions")
def add_user_permissions(user_id: str) -> Response[str]:
    user = identity.user_permissions(caller(app), user_id, json_body(app, PermissionsChange))
    return json_response(_permissions(user.version, user.permissions))


@app.post("/api/users/<user_id>/permissions/delete")
def remove_user_permissions(user_id: str) -> Response[str]:
    user = identity.user_permissions(caller(app), user_id, json_body(app, PermissionsChange), remove=True)
    return json_response(_permissions(user.version, user.permissions))


# The audit log


@app.get("/api/audit")
def search_audit_log() -> Response[str]:
    found = search_audit(audit_store, caller(app), query_parameters(app), _now(), settings.audit_retention_days)
    return json_response(found)


def _permissions(version: int, permissions: list[Any]) -> dict[str, Any]:
    return _ok(optimisticLock=version, permissions=permissions)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
