"""IAM for the local stack, as strict as AWS: each function runs under the role the template gives it.

SAM turns a function's `Policies` (policy templates, managed policy ARNs, inline statements) into an
execution role; `aws-sam-translator`, the library `sam build` and `sam deploy` use, does the same here
from `template.yaml` itself, so the roles cannot drift from what deploys. Each role is created in moto
and assumed; its credentials are the ones the function's handler runs with (`LocalApi.invoke`). Then
moto authenticates and authorises every request: a call whose action (and, where moto checks it, the
resource) is not allowed by the caller's policies fails with AccessDenied, as it would in AWS.

Everything that is not a function (provisioning, demo data, test set-up, the CLI) acts as the
*operator*: an IAM user with every permission, like the admin who runs `sam deploy`.

moto checks resources for S3 and SQS but asks "*" of DynamoDB (and of Athena, Secrets Manager and API
Gateway, each named as AWS names them below), which no resource-scoped statement
matches; `_dynamodb_resource` names the table (or index) of each request, so a policy scoped to
another table fails here as in AWS.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3

from infra.local import dynamodb_atomic, gateway_cache, scheduler
from infra.local.template import LOCAL_PREFIX, Template, sam_translated

OPERATOR = f"{LOCAL_PREFIX}-operator"
_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Role:
    """A function's execution role as SAM builds it: inline policy documents and managed policy ARNs."""

    function: str
    name: str
    policies: dict[str, dict[str, Any]]
    managed: tuple[str, ...]

    def without(self, action: str) -> Role:
        """The same role with one action taken out of every statement (to show a test fails without it)."""
        policies = copy.deepcopy(self.policies)
        found = False
        for document in policies.values():
            for statement in document.get("Statement", []):
                actions = statement.get("Action", [])
                listed = [actions] if isinstance(actions, str) else list(actions)
                if action in listed:
                    found = True
                    listed.remove(action)
                    statement["Action"] = listed or ["none:NoAction"]
        if not found:
            raise ValueError(f"{self.function}'s role has no {action}")
        return Role(self.function, self.name, policies, self.managed)


def function_roles(template: Template) -> dict[str, Role]:
    """Each function's execution role, translated by SAM from the template and resolved locally."""
    resources = sam_translated(template)["Resources"]
    roles = {}
    for logical_id in template.of_type("AWS::Serverless::Function"):
        role_id = resources[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        properties = resources[role_id]["Properties"]
        # SAM's policy templates carry no Version (IAM then reads them as 2008-10-17, which moto refuses);
        # they use no policy variables, so the two versions mean the same.
        policies = {
            p["PolicyName"]: {"Version": "2012-10-17", **template.resolve(p["PolicyDocument"])}
            for p in properties.get("Policies", [])
        }
        # Policies of their own (AWS::IAM::Policy) that name this role: attached to it as in AWS.
        for policy in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
            if {"Ref": role_id} in policy.get("Roles", []):
                policies[policy["PolicyName"]] = template.resolve(policy["PolicyDocument"])
        managed = tuple(template.resolve(arn) for arn in properties.get("ManagedPolicyArns", []))
        roles[logical_id] = Role(logical_id, f"{LOCAL_PREFIX}-{role_id}"[:64], policies, managed)
    return roles


@dataclass(frozen=True)
class Identities:
    """Who calls AWS locally: the operator, and each function under its own role."""

    operator: dict[str, str]
    functions: dict[str, dict[str, str]]


def create_identities(roles: dict[str, Role]) -> Identities:
    """Create the operator and each role in moto (before enforcement), and assume each role."""
    iam = boto3.client("iam")
    iam.create_user(UserName=OPERATOR)
    iam.put_user_policy(UserName=OPERATOR, PolicyName="everything", PolicyDocument=json.dumps(_EVERYTHING))
    key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
    operator = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    sts = boto3.client("sts", **operator)
    functions = {}
    for role in roles.values():
        arn = iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST))["Role"]["Arn"]
        for name, policy in role.policies.items():
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(policy))
        for managed in role.managed:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=managed)
        credentials = sts.assume_role(RoleArn=arn, RoleSessionName=role.function, DurationSeconds=43_200)
        issued = credentials["Credentials"]
        functions[role.function] = {
            "aws_access_key_id": issued["AccessKeyId"],
            "aws_secret_access_key": issued["SecretAccessKey"],
            "aws_session_token": issued["SessionToken"],
        }
    return Identities(operator, functions)


def replace_policies(role: Role) -> None:
    """Put a role's inline policies as given (the operator does this, e.g. to take one action away)."""
    iam = boto3.client("iam")
    for name, policy in role.policies.items():
        iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(policy))


def enforce() -> None:
    """From now on moto authenticates every request and checks it against the caller's policies.

    moto runs in this process (under `mock_aws`, or as the local stack's threaded server), so its
    settings are this process's."""
    from moto import settings  # noqa: PLC0415
    from moto.apigateway.responses import APIGatewayResponse  # noqa: PLC0415
    from moto.athena.responses import AthenaResponse  # noqa: PLC0415
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.iam.access_control import IAMRequestBase  # noqa: PLC0415
    from moto.s3.responses import S3Response  # noqa: PLC0415
    from moto.scheduler.responses import EventBridgeSchedulerResponse  # noqa: PLC0415
    from moto.secretsmanager.responses import SecretsManagerResponse  # noqa: PLC0415
    from moto.ses.responses import EmailResponse  # noqa: PLC0415
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    DynamoHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
    gateway_cache.install()
    dynamodb_atomic.install()  # not IAM, but moto's, patched once with the rest before anything runs
    scheduler.install()  # likewise: UpdateSchedule replaces ActionAfterCompletion as Scheduler's does
    if not getattr(DynamoHandler, "_per_item_transactions", False):
        authorize_dynamodb = DynamoHandler._authenticate_and_authorize_normal_action
        setattr(DynamoHandler, "_authenticate_and_authorize_normal_action", _per_item(authorize_dynamodb))  # noqa: B010
        setattr(DynamoHandler, "_per_item_transactions", True)  # noqa: B010
    if not getattr(APIGatewayResponse, "_aws_action_names", False):
        authorize = APIGatewayResponse._authenticate_and_authorize_normal_action
        setattr(APIGatewayResponse, "_authenticate_and_authorize_normal_action", _as_api_gateway(authorize))  # noqa: B010
        setattr(APIGatewayResponse, "_aws_action_names", True)  # noqa: B010
    if not getattr(SecretsManagerResponse, "_secret_arns", False):
        authorize_secret = SecretsManagerResponse._authenticate_and_authorize_normal_action
        setattr(SecretsManagerResponse, "_authenticate_and_authorize_normal_action", _as_secret(authorize_secret))  # noqa: B010
        setattr(SecretsManagerResponse, "_secret_arns", True)  # noqa: B010
    if not getattr(AthenaResponse, "_workgroup_arns", False):
        authorize_athena = AthenaResponse._authenticate_and_authorize_normal_action
        setattr(AthenaResponse, "_authenticate_and_authorize_normal_action", _as_workgroup(authorize_athena))  # noqa: B010
        setattr(AthenaResponse, "_workgroup_arns", True)  # noqa: B010
    if not getattr(EventBridgeSchedulerResponse, "_schedule_arns", False):
        authorize_schedule = EventBridgeSchedulerResponse._authenticate_and_authorize_normal_action
        checked_schedule = _as_schedule(authorize_schedule)
        setattr(EventBridgeSchedulerResponse, "_authenticate_and_authorize_normal_action", checked_schedule)  # noqa: B010
        setattr(EventBridgeSchedulerResponse, "_schedule_arns", True)  # noqa: B010
    if not getattr(EmailResponse, "_identity_arns", False):
        authorize_mail = EmailResponse._authenticate_and_authorize_normal_action
        setattr(EmailResponse, "_authenticate_and_authorize_normal_action", _as_identity(authorize_mail))  # noqa: B010
        setattr(EmailResponse, "_identity_arns", True)  # noqa: B010
    if not getattr(SQSResponse, "_batch_actions", False):
        authorize_queue = SQSResponse._authenticate_and_authorize_normal_action
        setattr(SQSResponse, "_authenticate_and_authorize_normal_action", _as_single_message(authorize_queue))  # noqa: B010
        setattr(SQSResponse, "_batch_actions", True)  # noqa: B010
    if not getattr(IAMRequestBase, "_bodiless_pass", False):
        IAMRequestBase._create_aws_request = _bodiless(IAMRequestBase._create_aws_request)  # type: ignore[method-assign]
        setattr(IAMRequestBase, "_bodiless_pass", True)  # noqa: B010
    if not getattr(S3Response, "_presigned_pass", False):
        checked = _unless_presigned(S3Response._authenticate_and_authorize_s3_action)
        setattr(S3Response, "_authenticate_and_authorize_s3_action", checked)  # noqa: B010
        setattr(S3Response, "_presigned_pass", True)  # noqa: B010
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0


def relax() -> None:
    """Back to moto's default (no authentication), e.g. when a test session ends."""
    from moto import settings  # noqa: PLC0415
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415

    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0


_SQS_BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _as_single_message(authorize: Any) -> Any:
    """IAM has no `sqs:SendMessageBatch`: a batch is allowed by the single message's action
    (`sqs:SendMessage`), and a policy can grant nothing else; moto asked for the batch's own name, which
    no policy of this template grants. Checked as AWS checks them."""

    def checked(self: Any, resource: str = "*") -> None:
        action = self._get_action()
        if action not in _SQS_BATCHES:
            authorize(self, resource)
            return
        self._get_action = lambda: _SQS_BATCHES[action]
        try:
            authorize(self, resource)
        finally:
            del self._get_action

    return checked


def _as_api_gateway(authorize: Any) -> Any:
    """IAM names API Gateway's management calls by their HTTP method on the resource's path
    (`apigateway:POST` on `arn:aws:apigateway:<region>::/apikeys`); moto checked its operation names
    (`apigateway:CreateApiKey`) on `*`, which no AWS policy grants. Checked as AWS checks them."""

    def checked(self: Any, resource: str = "*") -> None:
        self._get_action = lambda: self.method  # the name IAM checks; moto's dispatch is left as it was
        try:
            authorize(self, f"arn:aws:apigateway:{self.region}::{urlsplit(self.uri).path}")
        finally:
            del self._get_action  # the class's own again

    return checked


def _as_secret(authorize: Any) -> Any:
    """IAM checks a secret's actions on the secret's ARN (`...:secret:<name>-<6 characters>`), so a
    policy may grant one prefix of secrets; moto checked them on `*`, which refused such a policy."""

    def checked(self: Any, resource: str = "*") -> None:
        named = self._get_param("SecretId") or self._get_param("Name")
        if isinstance(named, str) and named:
            secret = self.backend.secrets.get(named)
            if secret is not None:
                resource = secret.arn
            elif named.startswith("arn:"):
                resource = named
            else:  # a secret not made yet (CreateSecret): its ARN will be the name and a suffix
                resource = f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{named}-??????"
        authorize(self, resource)

    return checked


def _as_workgroup(authorize: Any) -> Any:
    """IAM checks a query's actions on its workgroup's ARN (`...:workgroup/<name>`), so a policy may grant
    some workgroups only; moto checked them on `*`. A call naming an execution is checked on the
    workgroup that execution ran in."""

    def checked(self: Any, resource: str = "*") -> None:
        workgroup = self._get_param("WorkGroup")
        execution_id = self._get_param("QueryExecutionId")
        if not workgroup and execution_id:
            execution = self.athena_backend.executions.get(execution_id)
            workgroup = execution.workgroup.name if execution is not None and execution.workgroup else "primary"
        if workgroup:
            resource = f"arn:aws:athena:{self.region}:{self.current_account}:workgroup/{workgroup}"
        authorize(self, resource)

    return checked


def _as_identity(authorize: Any) -> Any:
    """IAM checks a send on the SES identity it sends from (`...:identity/<address>`), so a policy may
    grant its own identities only; moto checked it on `*`."""

    def checked(self: Any, resource: str = "*") -> None:
        source = self._get_param("Source")
        if isinstance(source, str) and "@" in source:
            address = source.rsplit("<", 1)[-1].strip("> ")
            resource = f"arn:aws:ses:{self.region}:{self.current_account}:identity/{address}"
        authorize(self, resource)

    return checked


def _as_schedule(authorize: Any) -> Any:
    """IAM checks a schedule's actions on the schedule's ARN (`...:schedule/<group>/<name>`), so a policy
    may grant one group's schedules only; moto checked them on `*`. Creating or changing a schedule also
    hands its target's role to Scheduler, which IAM checks as `iam:PassRole` on that role; moto did not."""
    from moto.iam.access_control import IAMRequest  # noqa: PLC0415

    class PassRole(IAMRequest):
        def __init__(self, **request: Any) -> None:
            super().__init__(**request)
            self._action = "iam:PassRole"

    def checked(self: Any, resource: str = "*") -> None:
        parts = urlsplit(self.uri).path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "schedules":
            group = self._get_param("GroupName") or self._get_param("groupName") or "default"
            resource = f"arn:aws:scheduler:{self.region}:{self.current_account}:schedule/{group}/{unquote(parts[1])}"
        elif len(parts) == 2 and parts[0] == "schedule-groups":
            resource = f"arn:aws:scheduler:{self.region}:{self.current_account}:schedule-group/{unquote(parts[1])}"
        authorize(self, resource)
        role = (self._get_param("Target") or {}).get("RoleArn")
        if role and self._get_action() in ("CreateSchedule", "UpdateSchedule"):
            self._authenticate_and_authorize_action(PassRole, role)

    return checked


_TRANSACTION_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _per_item(authorize: Any) -> Any:
    """IAM has no action for a DynamoDB transaction: each of its parts needs its own action on its own
    table (`dynamodb:PutItem` for a Put, ...), as AWS checks them; moto checked `TransactWriteItems`."""

    def checked(self: Any, resource: str = "*") -> None:
        if self._get_action() not in ("TransactWriteItems", "TransactGetItems"):
            authorize(self, resource)
            return
        body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
        for part in body.get("TransactItems", []):
            for kind, request in part.items():
                arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{request.get('TableName', '')}"
                self._get_action = lambda kind=kind: _TRANSACTION_PARTS[kind]
                try:
                    authorize(self, arn)
                finally:
                    del self._get_action

    return checked


def _bodiless(create: Any) -> Any:
    """moto checks a signature over the request it rebuilds; for a GET or DELETE without a body it puts
    its parsed form of the request (for API Gateway: the headers) in the body, so every such request's
    signature "does not match". Such requests have no body on the wire: none is signed, none is checked."""

    def rebuilt(self: Any) -> Any:
        request = create(self)
        if self._method in ("GET", "DELETE", "HEAD") and not self._body:
            request.data = b""
        return request

    return rebuilt


def _unless_presigned(check: Any) -> Any:
    """A presigned URL carries its credentials in its query, where moto's check cannot read them (it
    fails on the missing Authorization header). Here such a request is checked as AWS checks it, but
    for its signature, which moto cannot verify: a GET or HEAD only, not expired (X-Amz-Date plus
    X-Amz-Expires), by a known access key whose policies allow the action on that object. So a link
    signed by a role that may not read the file, or an old one, is refused locally as in AWS."""

    def checked(response: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        query = response.querystring
        if "X-Amz-Signature" not in query:
            check(response, bucket_name, key_name)
            return
        from moto.iam.access_control import S3IAMRequest  # noqa: PLC0415
        from moto.s3.exceptions import S3AccessDeniedError  # noqa: PLC0415

        credential = query.get("X-Amz-Credential", [""])[0]
        if response.method not in ("GET", "HEAD") or len(credential.split("/")) != 5 or _expired(query):
            raise S3AccessDeniedError()
        headers = dict(response.headers)
        headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=-"
        if query.get("X-Amz-Security-Token"):
            headers["X-Amz-Security-Token"] = query["X-Amz-Security-Token"][0]
        request = S3IAMRequest(
            account_id=response.current_account,
            method=response.method,
            path=response.path,
            data=response.data,
            body=response.raw_body,
            headers=headers,
            action=response._get_action(),
        )
        target = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
        request.check_action_permitted(f"arn:aws:s3:::{target}")

    return checked


def _expired(query: dict[str, list[str]]) -> bool:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    try:
        signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        seconds = int(query["X-Amz-Expires"][0])
    except (KeyError, IndexError, ValueError):
        return True
    # SigV4 links live at most 7 days (S3 refuses a longer X-Amz-Expires), and none before it was signed.
    if not 1 <= seconds <= 604_800:
        return True
    return not signed - timedelta(minutes=15) <= datetime.now(UTC) <= signed + timedelta(seconds=seconds)


def _dynamodb_resource(handler: Any) -> str:
    """The ARN a DynamoDB request acts on, as IAM evaluates it: its table, or the table's index."""
    params = getattr(handler, "params", None) or {}
    table = params.get("TableName")
    if not table:
        # Batch and transaction requests name their tables inside: the first one decides here.
        items = params.get("RequestItems") or {}
        table = next(iter(items), None)
    if not table:
        return "*"
    arn = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}"
    index = params.get("IndexName")
    return f"{arn}/index/{index}" if index else arn


def operate_as(operator: dict[str, str]) -> dict[str, str | None]:
    """Make the operator this process's default AWS identity; return what the environment had."""
    import os  # noqa: PLC0415

    names = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY"}
    previous = {v: os.environ.get(v) for v in [*names.values(), "AWS_SESSION_TOKEN"]}
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update({names[k]: v for k, v in operator.items()})
    boto3.DEFAULT_SESSION = None  # boto3.client() makes a new default session, which reads them
    return previous


def local_iam(template: Template) -> Identities:
    """The whole set-up, before any function runs: roles from the template, the operator as this
    process's identity, then enforcement."""
    from reportserver.store import aws  # noqa: PLC0415

    identities = create_identities(function_roles(template))
    operate_as(identities.operator)
    aws.reset()
    enforce()
    return identities
