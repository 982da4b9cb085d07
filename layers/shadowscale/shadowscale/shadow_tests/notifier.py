"""Notifications of a shadow test's outcome, on SNS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.shadow_tests.report_page import sns_subject
from shadowscale.shared.aws_errors import raise_domain_error

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


SNS_MESSAGE_LIMIT = 250_000


class SnsNotifier:
    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        try:
            self._client.publish(TopicArn=topic_arn, Subject=sns_subject(subject), Message=message[:SNS_MESSAGE_LIMIT])
        except ClientError as exc:
            raise_domain_error(exc, f"Publish {topic_arn}")
