"""Where a shadow test leaves its traces: reports and diff summaries in S3, notices on SNS, its
timeline in the Step Functions execution history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.adapters.aws_errors import error_code, raise_domain_error
from shadowscale.domain.ports import ExecutionFacts, StoredBytes
from shadowscale.domain.report_page import sns_subject
from shadowscale.models.shadow_test import TimelineEntry

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
SNS_MESSAGE_LIMIT = 250_000


class S3Objects:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str:
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as exc:
            raise_domain_error(exc, f"PutObject s3://{bucket}/{key}")
        return f"s3://{bucket}/{key}"

    def get(self, bucket: str, key: str) -> StoredBytes | None:
        """The object's bytes and (unquoted) ETag; None if there is no such key. Errors S3 gives for
        anything else are mapped (raise_domain_error) or propagate as they are (e.g. AccessDenied)."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            return StoredBytes(body=response["Body"].read(), etag=response["ETag"].strip('"'))
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return None
            raise_domain_error(exc, f"GetObject s3://{bucket}/{key}")

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        found = self.get(bucket, key)
        if found is None:
            return None
        loaded: dict[str, Any] = json.loads(found.body)
        return loaded


class SnsNotifier:
    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        try:
            self._client.publish(TopicArn=topic_arn, Subject=sns_subject(subject), Message=message[:SNS_MESSAGE_LIMIT])
        except ClientError as exc:
            raise_domain_error(exc, f"Publish {topic_arn}")


# History event types worth a line in the report's timeline.
_TIMELINE_EVENTS = {
    "ExecutionStarted": "started",
    "TaskStateEntered": "entered",
    "WaitStateEntered": "waiting",
    "ChoiceStateEntered": None,
    "PassStateEntered": None,
    "TaskFailed": "failed",
    "LambdaFunctionFailed": "failed",
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "failed",
    "ExecutionAborted": "aborted",
    "ExecutionTimedOut": "timed out",
}


class ExecutionTimeline:
    def __init__(self, client: SFNClient) -> None:
        self._client = client

    def timeline(self, execution_arn: str, limit: int = 400) -> tuple[TimelineEntry, ...]:
        """States entered and failures, oldest first; repeated bake loops are collapsed to keep it readable."""
        entries: list[TimelineEntry] = []
        try:
            pages = self._client.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
            for page in pages:
                for event in page.get("events", []):
                    kind = event["type"]
                    label = _TIMELINE_EVENTS.get(kind)
                    if label is None:
                        continue
                    details: Mapping[str, Any] = event.get("stateEnteredEventDetails") or {}
                    state = str(details.get("name", kind))
                    if entries and entries[-1].state == state and label == "entered":
                        continue
                    entries.append(TimelineEntry(at=event["timestamp"], state=state, event=label))
        except ClientError as exc:
            if error_code(exc) in {"ExecutionDoesNotExist", "AccessDeniedException"}:
                return ()
            raise_domain_error(exc, f"GetExecutionHistory {execution_arn}")
        if len(entries) > limit:
            entries = entries[: limit // 2] + entries[-limit // 2 :]
        return tuple(entries)

    def describe(self, execution_arn: str) -> ExecutionFacts | None:
        try:
            described = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise_domain_error(exc, f"DescribeExecution {execution_arn}")
        return ExecutionFacts(
            status=described["status"],
            input=described.get("input"),
            started_at=described["startDate"],
            error=described.get("error"),
        )

    def last_state(self, execution_arn: str) -> dict[str, Any] | None:
        """The machine state the execution last entered a state with, once it had a plan. The newest event
        is found by its id, not by the page order (`reverseOrder` is not honoured everywhere)."""
        newest: tuple[int, dict[str, Any]] | None = None
        try:
            pages = self._client.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn, reverseOrder=True, includeExecutionData=True
            )
            for page in pages:
                for event in page.get("events", []):
                    details: Mapping[str, Any] = event.get("stateEnteredEventDetails") or {}
                    try:
                        state = json.loads(details.get("input") or "null")
                    except ValueError:
                        continue
                    planned = isinstance(state, dict) and isinstance(state.get("plan"), dict)
                    if planned and (newest is None or int(event["id"]) > newest[0]):
                        newest = (int(event["id"]), state)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise_domain_error(exc, f"GetExecutionHistory {execution_arn}")
        return newest[1] if newest is not None else None
