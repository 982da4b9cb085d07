"""An EventBridge rule's delivery to a Lambda or a Step Functions target: retries, then the target's
dead-letter queue.

As the EventBridge User Guide describes it ("Event retry policy and using dead-letter queues";
"Monitoring Amazon EventBridge"):
- a delivery fails when the target cannot be invoked: it no longer exists or EventBridge lacks
  permission (not retried: "EventBridge sends these events directly to the DLQ"), or it is throttled or
  unavailable (retried up to the target's RetryPolicy, default 185 attempts within 24 hours). An error
  the function itself raises is not a delivery failure: EventBridge invokes Lambda asynchronously and
  Lambda's own retries and the function's dead-letter queue handle it.
- a Step Functions target is started with StartExecution by EventBridge under the target's RoleArn
  ("Amazon EventBridge targets": the role needs states:StartExecution), with the whole event as input;
  a refusal for want of permission is not retried, throttling is.
- after the last attempt the event goes to the target's DeadLetterConfig queue, with the message
  attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS and, after retries,
  EXHAUSTED_RETRY_CONDITION; or, with no DLQ, it is dropped.
- EventBridge writes to the queue as the service principal events.amazonaws.com: the queue policy must
  allow it sqs:SendMessage (the guide scopes it with aws:SourceArn, the rule's ARN) and, for a queue
  encrypted with a customer managed key, the key policy must let it use the key (SQS Developer Guide,
  "Key management": kms:GenerateDataKey and kms:Decrypt for the event source's service principal).
  If either refuses, the event is lost and counted in InvocationsFailedToBeSentToDlq.
- CloudWatch metrics, namespace AWS/Events, dimension RuleName, unit Count: FailedInvocations for an
  invocation that failed permanently, then InvocationsSentToDlq or InvocationsFailedToBeSentToDlq.

Not imitated: retries are spaced by exponential back-off with jitter in AWS; here they follow one
another at the same simulated instant (so MaximumEventAgeInSeconds never ends them first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from shadowscale_localcloud.resource_policies import ServiceRequest, allows
from shadowscale_localcloud.resources import ACCOUNT, REGION

EVENTS_PRINCIPAL = "events.amazonaws.com"
DEFAULT_RETRY_ATTEMPTS = 185
# Lambda Invoke errors EventBridge does not retry, with the DLQ's ERROR_CODE for each.
NOT_RETRIED = {
    "ResourceNotFoundException": "NO_RESOURCE",
    "AccessDeniedException": "NO_PERMISSIONS",
    "AccessDenied": "NO_PERMISSIONS",
}
RETRIED = {"TooManyRequestsException": "THROTTLING", "ThrottlingException": "THROTTLING"}
STATE_MACHINE_TARGET = ":states:"


@dataclass(frozen=True)
class DeadLetterOutcome:
    at: datetime
    rule: str
    target_arn: str
    queue_arn: str | None
    error_code: str
    sent: bool
    reason: str  # why the queue refused, or "" when sent


@dataclass
class RuleTargetDelivery:
    """`invoke(function_arn, payload, kind=..., detail=...)` is the local cloud's Lambda invocation, and
    `start(state_machine_arn, payload, role_arn)` its StartExecution as a rule target's role; both raise
    ClientError when the target cannot be reached."""

    invoke: Callable[..., Any]
    start: Callable[[str, str, str | None], Any]
    now: Callable[[], datetime]
    client: Callable[[str], Any]
    dead_letters: list[DeadLetterOutcome] = field(default_factory=list)

    def deliver(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:  # noqa: ANN401
        payload = json.dumps(event)
        retry_policy = target.get("RetryPolicy") or {}
        retries_allowed = int(retry_policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))
        retries = 0
        while True:
            try:
                if STATE_MACHINE_TARGET in target["Arn"]:
                    self.start(target["Arn"], payload, target.get("RoleArn"))
                else:
                    self.invoke(target["Arn"], payload, kind="eventbridge", detail=rule.name)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                if code in NOT_RETRIED or retries >= retries_allowed:
                    self._failed(
                        rule,
                        target,
                        payload,
                        NOT_RETRIED.get(code) or RETRIED.get(code, "SDK_CLIENT_ERROR"),
                        message,
                        retries,
                        exhausted=code not in NOT_RETRIED,
                    )
                    return
                retries += 1
            else:
                return

    def _failed(
        self,
        rule: Any,  # noqa: ANN401
        target: dict[str, Any],
        payload: str,
        error_code: str,
        message: str,
        retries: int,
        *,
        exhausted: bool,
    ) -> None:
        self._count(rule.name, "FailedInvocations")
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            return
        refusal = self._refusal(queue_arn, rule.arn)
        if refusal is None:
            attributes = {
                "RULE_ARN": rule.arn,
                "TARGET_ARN": target["Arn"],
                "ERROR_CODE": error_code,
                "ERROR_MESSAGE": message or error_code,
                "RETRY_ATTEMPTS": str(retries),
            }
            if exhausted:
                attributes["EXHAUSTED_RETRY_CONDITION"] = "MaximumRetryAttempts"
            self.client("sqs").send_message(
                QueueUrl=self._queue_url(queue_arn),
                MessageBody=payload,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        self._count(rule.name, "InvocationsSentToDlq" if refusal is None else "InvocationsFailedToBeSentToDlq")
        self.dead_letters.append(
            DeadLetterOutcome(
                self.now(), rule.name, target["Arn"], queue_arn, error_code, refusal is None, refusal or ""
            )
        )

    def _refusal(self, queue_arn: str, rule_arn: str) -> str | None:
        """Why SQS (or KMS, for an encrypted queue) refuses EventBridge's SendMessage, or None."""
        context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT, "aws:SecureTransport": "true"}
        sqs = self.client("sqs")
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=self._queue_url(queue_arn), AttributeNames=["All"])[
                "Attributes"
            ]
        except ClientError as exc:
            return f"queue {queue_arn}: {exc.response.get('Error', {}).get('Code')}"
        policy = json.loads(attributes["Policy"]) if attributes.get("Policy") else None
        if not allows(policy, ServiceRequest(EVENTS_PRINCIPAL, "sqs:SendMessage", queue_arn, context)):
            return f"the policy of {queue_arn} does not allow {EVENTS_PRINCIPAL} sqs:SendMessage"
        key_id = attributes.get("KmsMasterKeyId")
        if not key_id:
            return None
        kms = self.client("kms")
        try:
            key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            key_policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
        except ClientError as exc:
            return f"key {key_id}: {exc.response.get('Error', {}).get('Code')}"
        key_context = {**context, "kms:EncryptionContext:aws:sqs:arn": queue_arn}
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not allows(key_policy, ServiceRequest(EVENTS_PRINCIPAL, action, key["Arn"], key_context)):
                return f"the policy of key {key['Arn']} does not allow {EVENTS_PRINCIPAL} {action}"
        return None

    def _queue_url(self, queue_arn: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"])

    def _count(self, rule_name: str, metric: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        datum = {
            "MetricName": metric,
            "Dimensions": [{"Name": "RuleName", "Value": rule_name}],
            "Timestamp": self.now().astimezone(UTC).replace(tzinfo=None),  # moto: naive UTC
            "Unit": "Count",
            "Value": 1.0,
        }
        cloudwatch_backends[ACCOUNT][REGION].put_metric_data("AWS/Events", [datum])
