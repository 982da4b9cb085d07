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


class ShadowTestRecord:
    """A running shadow test's ownership of its endpoint, plan, snapshot and approval token, on the endpoint's
    lease item.

    Two holds share the item: `testOwner` says which test owns the endpoint for its whole life (no second
    test may start; the autopilot may still resize production), `leaseOwner` is the exclusive writer hold
    the test takes only while it changes the endpoint (start, a ramp step, promote, restore). Kept with the
    lease so whoever restores the endpoint after an abort or a timeout (the recovery execution) finds the
    snapshot where the ownership is, and so the CLI finds the approval token by endpoint.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def claim_test(self, endpoint: str, owner: str, seconds: int, now: datetime) -> None:
        """Own the endpoint for a test; EndpointLocked naming the other test if one owns it."""
        epoch = int(now.timestamp())
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET testOwner = :owner, testExpiresAt = :expires",
                ConditionExpression="attribute_not_exists(testOwner) OR testExpiresAt < :now OR testOwner = :owner",
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":expires": {"N": str(epoch + seconds)},
                    ":now": {"N": str(epoch)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                held: dict[str, AttributeValueTypeDef] = exc.response.get("Item", {})  # type: ignore[assignment]
                raise EndpointLocked(endpoint, str(held.get("testOwner", {}).get("S", "another test"))) from exc
            raise_domain_error(exc, f"claim {endpoint} for a shadow test")

    def _set(self, endpoint: str, owner: str, attribute: str, value: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET #attribute = :value",
                ConditionExpression="testOwner = :owner",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues={":owner": {"S": owner}, ":value": {"S": value}},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise LockLost(f"shadow test {owner!r} no longer owns {endpoint!r}") from exc
            raise_domain_error(exc, f"save {attribute} for {endpoint}")

    def save(self, endpoint: str, owner: str, record: str) -> None:
        self._set(endpoint, owner, "shadowTest", record)

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None:
        self._set(endpoint, owner, "approvalToken", token)

    def load(self, endpoint: str) -> StoredTest:
        """The owning test, its record, approval token and recovering execution as stored now."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True
            ).get("Item", {})
        except ClientError as exc:
            raise_domain_error(exc, f"read state of {endpoint}")
        return StoredTest(
            owner=item.get("testOwner", {}).get("S"),
            record=item.get("shadowTest", {}).get("S"),
            approval_token=item.get("approvalToken", {}).get("S"),
            recovered_by=item.get("recoveredBy", {}).get("S"),
        )

    def claim_recovery(
        self, endpoint: str, owner: str, claimant: str, *, replacing: str | None, lease_seconds: int, now: datetime
    ) -> bool:
        """Mark `claimant` (a recovery execution) as the one restoring `owner`'s endpoint, and extend the
        test's ownership for it; False if another recovery (other than `replacing`, one that has ended) has it."""
        values: dict[str, AttributeValueTypeDef] = {
            ":owner": {"S": owner},
            ":claimant": {"S": claimant},
            ":expires": {"N": str(int(now.timestamp()) + lease_seconds)},
        }
        condition = "testOwner = :owner AND (attribute_not_exists(recoveredBy) OR recoveredBy = :claimant"
        if replacing is not None:
            values[":replacing"] = {"S": replacing}
            condition += " OR recoveredBy = :replacing"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET recoveredBy = :claimant, testExpiresAt = :expires",
                ConditionExpression=condition + ")",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise_domain_error(exc, f"claim recovery of {endpoint}")
        return True

    def release(self, endpoint: str, owner: str) -> bool:
        """Drop the test's ownership and record; False (and nothing changed) if `owner` does not own it.
        The writer hold is the lease's (EndpointStateStore.release)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="REMOVE testOwner, testExpiresAt, shadowTest, approvalToken, recoveredBy",
                ConditionExpression="testOwner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise_domain_error(exc, f"release {endpoint}")
        return True
