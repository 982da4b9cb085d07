"""boto3 clients configured once: standard retry mode, bounded timeouts, region from the environment.

Each factory returns a client that is created on its first use, not when the composition root wires it:
creating a client loads its service model (milliseconds each, and a root wires several), and an
invocation often needs only some of them. The real client is built from the process's session at that
moment, so a session dropped before then (the local cloud's new container) is not used.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


# botocore's standard mode retries throttling with jittered backoff inside each call; we add
# retries for what it does not retry (a busy endpoint) in domain/retry.py.
SDK_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=20,
)


@cache
def session() -> boto3.Session:
    """One session per process: every client and Powertools utility shares its loaded botocore data."""
    return boto3.Session()


class DeferredClient:
    """Stands in for a boto3 client until an attribute is first asked for, then is that client."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None

    @property
    def created(self) -> bool:
        return self._client is not None

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401  (whatever the client has)
        # Only names the instance lacks come here; its own two are read from __dict__ (no recursion).
        fields = self.__dict__
        if "_service" not in fields:
            raise AttributeError(name)
        if fields["_client"] is None:
            fields["_client"] = session().client(fields["_service"], config=SDK_CONFIG)
        return getattr(fields["_client"], name)

    def __repr__(self) -> str:
        return f"DeferredClient({self._service!r}, created={self.created})"


def _client(service: str) -> Any:  # noqa: ANN401  (boto3 types clients by service name only in stubs)
    return DeferredClient(service)


def sagemaker() -> SageMakerClient:
    client: SageMakerClient = _client("sagemaker")
    return client


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def application_autoscaling() -> ApplicationAutoScalingClient:
    client: ApplicationAutoScalingClient = _client("application-autoscaling")
    return client


def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


def cloudwatch() -> CloudWatchClient:
    client: CloudWatchClient = _client("cloudwatch")
    return client


def s3() -> S3Client:
    client: S3Client = _client("s3")
    return client


def sns() -> SNSClient:
    client: SNSClient = _client("sns")
    return client


def stepfunctions() -> SFNClient:
    client: SFNClient = _client("stepfunctions")
    return client
