"""A shadow test's traces on its endpoint's state item: the test owner, its record (snapshot and plan),
its approval token, and the recovery claim. The same item carries the endpoint lease (shared.endpoint_state)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.shadow_tests.models import RestoreRecord
from shadowscale.shadow_tests.ports import StoredShadowTest
from shadowscale.shared.aws_errors import error_code, raise_domain_error
from shadowscale.shared.endpoint_state import CONDITION_FAILED
from shadowscale.shared.errors import EndpointLocked, LockLost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class DynamoShadowTestRecords:
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

    def save(self, endpoint: str, owner: str, record: RestoreRecord) -> None:
        self._set(endpoint, owner, "shadowTest", json.dumps(record.model_dump(mode="json", by_alias=True)))

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None:
        self._set(endpoint, owner, "approvalToken", token)

    def load(self, endpoint: str) -> StoredShadowTest:
        """The owning test, its record, approval token and recovering execution as stored now."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True
            ).get("Item", {})
        except ClientError as exc:
            raise_domain_error(exc, f"read state of {endpoint}")
        record = item.get("shadowTest", {}).get("S")
        return StoredShadowTest(
            owner=item.get("testOwner", {}).get("S"),
            record=RestoreRecord.model_validate_json(record) if record else None,
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
