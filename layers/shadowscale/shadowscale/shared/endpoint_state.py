"""Per-endpoint lease and memory in one DynamoDB item, so a decision costs two calls: take, release.

The shadow-test state machine takes the same lease (owner `shadow-test:<execution ARN>`), which is how
the autopilot and a running test never write to one endpoint at the same time. This is the adapter of the
EndpointStateStore port (shared.endpoint_lease); domain code imports the port, never this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import error_code, raise_domain_error
from shadowscale.shared.endpoint import EndpointMemory
from shadowscale.shared.errors import EndpointLocked, LockLost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoEndpointState:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, endpoint: str, owner: str, lease_seconds: int, now: datetime) -> EndpointMemory:
        epoch = int(now.timestamp())
        try:
            item = self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET leaseOwner = :owner, leaseExpiresAt = :expires",
                ConditionExpression="attribute_not_exists(leaseOwner) OR leaseExpiresAt < :now OR leaseOwner = :owner",
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":expires": {"N": str(epoch + lease_seconds)},
                    ":now": {"N": str(epoch)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                held: dict[str, AttributeValueTypeDef] = exc.response.get("Item", {})  # type: ignore[assignment]
                raise EndpointLocked(endpoint, str(held.get("leaseOwner", {}).get("S", "another writer"))) from exc
            raise_domain_error(exc, f"lease {endpoint}")
        stored = item.get("memory", {}).get("S")
        return EndpointMemory.model_validate_json(stored) if stored else EndpointMemory()

    def release(self, endpoint: str, owner: str, memory: EndpointMemory | None) -> None:
        values: dict[str, AttributeValueTypeDef] = {":owner": {"S": owner}}
        update = "REMOVE leaseOwner, leaseExpiresAt"
        if memory is not None:
            update = "SET memory = :memory " + update
            values[":memory"] = {"S": memory.model_dump_json(exclude_defaults=True)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression=update,
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise LockLost(f"lease on {endpoint!r} held by {owner!r} expired and was taken over") from exc
            raise_domain_error(exc, f"release {endpoint}")

    def peek(self, endpoint: str) -> EndpointMemory:
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True
            ).get("Item", {})
        except ClientError as exc:
            raise_domain_error(exc, f"read memory of {endpoint}")
        stored = item.get("memory", {}).get("S")
        return EndpointMemory.model_validate_json(stored) if stored else EndpointMemory()


def read_memory(client: DynamoDBClient, table: str, endpoint: str) -> tuple[EndpointMemory, str | None]:
    """For humans (`policy status`): the endpoint's memory and who holds its lease, without taking it."""
    item = client.get_item(TableName=table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True).get("Item", {})
    stored = item.get("memory", {}).get("S")
    memory = EndpointMemory.model_validate_json(stored) if stored else EndpointMemory()
    return memory, item.get("leaseOwner", {}).get("S")
