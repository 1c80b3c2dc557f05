"""Create the template's tables, buckets and queues on the moto server (or under moto in tests)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from infra.local.template import LOCAL_ACCOUNT, LOCAL_REGION, Template

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


def provision(template: Template) -> dict[str, str]:
    """Create every supported resource; return logical id -> local physical name."""
    names: dict[str, str] = {}
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        names[logical_id] = _table(template, logical_id, template.resolve(resource["Properties"]))
    for logical_id, resource in template.of_type("AWS::S3::Bucket").items():
        names[logical_id] = _bucket(template, logical_id, template.resolve(resource.get("Properties", {})))
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: a queue's redrive policy names one that must already exist.
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
        names[logical_id] = _queue(template, logical_id, template.resolve(queues[logical_id].get("Properties", {})))
    for logical_id in template.of_type("AWS::Scheduler::ScheduleGroup"):
        names[logical_id] = template.physical_name(logical_id)
        boto3.client("scheduler").create_schedule_group(Name=names[logical_id])
    for logical_id, resource in template.of_type("AWS::IAM::Role").items():
        names[logical_id] = _role(template, logical_id, template.resolve(resource["Properties"]))
    sender = template.values.get("MailFrom")
    if sender:  # as an operator does once in AWS: the address job runs mail from is verified in SES
        boto3.client("ses").verify_email_identity(EmailAddress=str(sender))
    for logical_id, resource in template.of_type("AWS::ApiGateway::UsagePlan").items():
        names[logical_id] = usage_plan(template, logical_id, template.resolve(resource["Properties"]))
    return names


def _role(template: Template, logical_id: str, properties: dict[str, Any]) -> str:
    """A role a service assumes (Scheduler's, to send a job's run), with its inline policies."""
    name = template.physical_name(logical_id)
    iam = boto3.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]))
    for policy in properties.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
        )
    return name


def _table(template: Template, logical_id: str, properties: dict[str, Any]) -> str:
    name = template.physical_name(logical_id)
    client = boto3.client("dynamodb")
    request: dict[str, Any] = {k: properties[k] for k in _TABLE_KEYS if k in properties}
    request["BillingMode"] = properties.get("BillingMode", "PAY_PER_REQUEST")
    client.create_table(TableName=name, **request)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def _bucket(template: Template, logical_id: str, properties: dict[str, Any]) -> str:
    name = template.physical_name(logical_id)
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    lifecycle = properties.get("LifecycleConfiguration")
    if lifecycle:
        rules = [_lifecycle_rule(rule) for rule in lifecycle["Rules"]]
        client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    return name


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape to the S3 API's."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


def usage_plan(template: Template, logical_id: str, properties: dict[str, Any]) -> str:
    """A usage plan in API Gateway (moto), for the local API's stage: the front door reads it back."""
    request: dict[str, Any] = {
        "name": properties.get("UsagePlanName") or template.physical_name(logical_id),
        "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in properties.get("ApiStages", [])],
    }
    throttle = properties.get("Throttle")
    if throttle:
        if not isinstance(throttle["BurstLimit"], int):  # an Integer property: CloudFormation refuses 40.5
            raise ValueError(f"{logical_id} BurstLimit must be a whole number, not {throttle['BurstLimit']!r}")
        request["throttle"] = {"rateLimit": float(throttle["RateLimit"]), "burstLimit": throttle["BurstLimit"]}
    if "Description" in properties:
        request["description"] = properties["Description"]
    # The plan's id is what `Ref` gives (functions' settings, IAM resources name it): moto is told to use
    # the template's local name as the id, rather than one of its own choosing.
    from moto.apigateway.utils import ApigwUsagePlanIdentifier  # noqa: PLC0415 - moto runs in this process
    from moto.utilities.id_generator import moto_id_manager  # noqa: PLC0415

    wanted = template.reference(logical_id)
    moto_id_manager.set_custom_id(ApigwUsagePlanIdentifier(LOCAL_ACCOUNT, LOCAL_REGION, request["name"]), wanted)
    made = str(boto3.client("apigateway").create_usage_plan(**request)["id"])
    if made != wanted:
        raise RuntimeError(f"moto gave the usage plan the id {made!r}, not {wanted!r}")
    return made


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
)


def _queue(template: Template, logical_id: str, properties: dict[str, Any]) -> str:
    name = template.physical_name(logical_id)
    attributes = {k: str(v) for k, v in properties.items() if k in _QUEUE_ATTRIBUTES}
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
    boto3.client("sqs").create_queue(QueueName=name, Attributes=attributes)
    return name
