"""Capacity policies in DynamoDB: read through Powertools Parameters (cached), written by the CLI.

Items: `policy#<endpoint>` → the policy document (JSON) with its revision, and `alarm#<alarm name>`
→ the endpoint whose policy reacts to that alarm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from shadowscale.capacity.policy import CapacityPolicy, parse_policy
from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.errors import InvalidPolicy, PolicyNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def policy_key(endpoint: str) -> str:
    return f"policy#{endpoint}"


def alarm_key(alarm_name: str) -> str:
    return f"alarm#{alarm_name}"


@lru_cache(maxsize=64)
def _parsed_policy(stored: str) -> CapacityPolicy:
    """Validated once per stored revision: a warm function reuses the model (and its parsed schedules)."""
    return parse_policy(json.loads(stored)["policy"])


@dataclass(frozen=True)
class StoredPolicy:
    policy: CapacityPolicy
    revision: int
    applied_at: str | None
    applied_by: str | None
    reason: str | None


class CachedPolicyStore:
    """The read side, for the functions: one cached GetItem per key per cache period."""

    def __init__(self, provider: BaseProvider, max_age_seconds: int) -> None:
        self._provider = provider
        self._max_age = max_age_seconds

    def _get(self, key: str) -> str:
        try:
            value = self._provider.get(key, max_age=self._max_age)
        except GetParameterError as exc:
            # Powertools wraps whatever the provider raised; only a missing item means "no policy".
            cause = exc.__context__
            if isinstance(cause, ClientError):
                raise_domain_error(cause, f"read {key}")
            if isinstance(cause, KeyError):
                raise PolicyNotFound(f"no stored entry {key!r}") from exc
            raise
        if not isinstance(value, str):
            raise PolicyNotFound(f"entry {key!r} holds no text")
        return value

    def policy(self, endpoint: str) -> CapacityPolicy:
        return _parsed_policy(self._get(policy_key(endpoint)))

    def endpoint_for_alarm(self, alarm_name: str) -> str:
        return self._get(alarm_key(alarm_name))


class PolicyRepository:
    """The write side, for `shadowscale policy apply`: validated, revisioned, with its alarm index."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, endpoint: str) -> tuple[CapacityPolicy, int] | None:
        stored = self.describe(endpoint)
        return None if stored is None else (stored.policy, stored.revision)

    def describe(self, endpoint: str) -> StoredPolicy | None:
        """The stored revision with what it says of itself: when, by whom and why it was applied."""
        item = self._item(policy_key(endpoint), f"read policy {endpoint}")
        if not item:
            return None
        stored = json.loads(item["value"]["S"])
        return StoredPolicy(
            policy=parse_policy(stored["policy"]),
            revision=int(stored["revision"]),
            applied_at=stored.get("appliedAt"),
            applied_by=stored.get("appliedBy"),
            reason=stored.get("reason"),
        )

    def owner_of_alarm(self, alarm_name: str) -> str | None:
        item = self._item(alarm_key(alarm_name), f"read the owner of alarm {alarm_name}")
        return item["value"]["S"] if item else None

    def _item(self, key: str, doing: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] | None = self._client.get_item(
                TableName=self._table, Key={"id": {"S": key}}, ConsistentRead=True
            ).get("Item")
        except ClientError as exc:
            raise_domain_error(exc, doing)
        return found

    def put(
        self,
        policy: CapacityPolicy,
        *,
        reason: str | None = None,
        applied_by: str | None = None,
        applied_at: datetime | None = None,
    ) -> int:
        """Store the policy and its alarm index; returns the new revision. Alarm clashes are refused first."""
        for alarm_name in policy.alarm_names:
            owner = self.owner_of_alarm(alarm_name)
            if owner is not None and owner != policy.endpoint:
                raise InvalidPolicy(
                    f"alarm {alarm_name!r} already drives endpoint {owner!r}; an alarm can drive one endpoint"
                )
        previous = self.get(policy.endpoint)
        revision = previous[1] + 1 if previous else 1
        document: dict[str, Any] = {
            "revision": revision,
            "appliedAt": (applied_at or datetime.now(UTC)).isoformat(),
            "policy": policy.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        if reason:
            document["reason"] = reason
        if applied_by:
            document["appliedBy"] = applied_by
        stale = set(previous[0].alarm_names) - set(policy.alarm_names) if previous else set()
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"id": {"S": policy_key(policy.endpoint)}, "value": {"S": json.dumps(document)}},
            )
            for alarm_name in policy.alarm_names:
                self._client.put_item(
                    TableName=self._table,
                    Item={"id": {"S": alarm_key(alarm_name)}, "value": {"S": policy.endpoint}},
                )
            for alarm_name in stale:
                self._client.delete_item(TableName=self._table, Key={"id": {"S": alarm_key(alarm_name)}})
        except ClientError as exc:
            raise_domain_error(exc, f"store policy {policy.endpoint}")
        return revision

    def delete(self, endpoint: str) -> CapacityPolicy | None:
        previous = self.get(endpoint)
        if previous is None:
            return None
        for alarm_name in previous[0].alarm_names:
            self._client.delete_item(TableName=self._table, Key={"id": {"S": alarm_key(alarm_name)}})
        self._client.delete_item(TableName=self._table, Key={"id": {"S": policy_key(endpoint)}})
        return previous[0]


class TableParameterProvider(BaseProvider):
    """Powertools Parameters (caching, max_age, transforms) over a low-level DynamoDB client.

    Powertools' own DynamoDBProvider builds a boto3 *resource*, which costs ~13 ms of every cold start;
    the functions already hold a DynamoDB client.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client=client)  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        self._client = client
        self._table = table

    def _get(self, name: str, **sdk_options: Any) -> str:  # noqa: ANN401
        item = self._client.get_item(TableName=self._table, Key={"id": {"S": name}}).get("Item")
        if item is None:
            raise KeyError(name)  # BaseProvider turns this into GetParameterError
        return item["value"]["S"]

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:  # noqa: ANN401
        raise NotImplementedError("policies are read one key at a time")
