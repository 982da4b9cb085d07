"""Per-endpoint lease and memory in one DynamoDB item, so a decision costs two calls: take, release.

The shadow-test state machine takes the same lease (owner `shadow-test:<execution ARN>`), which is how
the autopilot and a running test never write to one endpoint at the same time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.adapters.aws_errors import error_code, raise_domain_error
from shadowscale.domain.ports import StoredTest
from shadowscale.errors import EndpointLocked, LockLost
from shadowscale.models.endpoint import EndpointMemory

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


def read_memory(client: DynamoDBClient, table: str, endpoint: str) -> tuple[EndpointMemory, str | None]:
    """For humans (`policy status`): the endpoint's memory and who holds its lease, without taking it."""
    item = client.get_item(TableName=table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True).get("Item", {})
    stored = item.get("memory", {}).get("S")
    memory = EndpointMemory.model_validate_json(stored) if stored else EndpointMemory()
    return memory, item.get("leaseOwner", {}).get("S")


class ShadowTestRecord:
    """A running shadow test's plan, snapshot and approval token, kept on the endpoint's lease item.

    Kept with the lease so whoever restores the endpoint after an abort or a timeout (the recovery
    execution) finds the snapshot where the lock is, and so the CLI finds the approval token by endpoint.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _set(self, endpoint: str, owner: str, attribute: str, value: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET #attribute = :value",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues={":owner": {"S": owner}, ":value": {"S": value}},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise LockLost(f"shadow test {owner!r} no longer holds the lease on {endpoint!r}") from exc
            raise_domain_error(exc, f"save {attribute} for {endpoint}")

    def save(self, endpoint: str, owner: str, record: str) -> None:
        self._set(endpoint, owner, "shadowTest", record)

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None:
        self._set(endpoint, owner, "approvalToken", token)

    def load(self, endpoint: str) -> StoredTest:
        """The lease owner, test record, approval token and recovering execution as stored now."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True
            ).get("Item", {})
        except ClientError as exc:
            raise_domain_error(exc, f"read state of {endpoint}")
        return StoredTest(
            owner=item.get("leaseOwner", {}).get("S"),
            record=item.get("shadowTest", {}).get("S"),
            approval_token=item.get("approvalToken", {}).get("S"),
            recovered_by=item.get("recoveredBy", {}).get("S"),
        )

    def claim_recovery(
        self, endpoint: str, owner: str, claimant: str, *, replacing: str | None, lease_seconds: int, now: datetime
    ) -> bool:
        """Mark `claimant` (a recovery execution) as the one restoring `owner`'s endpoint, and extend the
        lease for it; False if another recovery (other than `replacing`, one that has ended) has it."""
        values: dict[str, AttributeValueTypeDef] = {
            ":owner": {"S": owner},
            ":claimant": {"S": claimant},
            ":expires": {"N": str(int(now.timestamp()) + lease_seconds)},
        }
        condition = "leaseOwner = :owner AND (attribute_not_exists(recoveredBy) OR recoveredBy = :claimant"
        if replacing is not None:
            values[":replacing"] = {"S": replacing}
            condition += " OR recoveredBy = :replacing"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET recoveredBy = :claimant, leaseExpiresAt = :expires",
                ConditionExpression=condition + ")",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise_domain_error(exc, f"claim recovery of {endpoint}")
        return True

    def release(self, endpoint: str, owner: str) -> bool:
        """Drop the lease and the test's record; False (and nothing changed) if `owner` does not hold it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="REMOVE leaseOwner, leaseExpiresAt, shadowTest, approvalToken, recoveredBy",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise_domain_error(exc, f"release {endpoint}")
        return True
