"""Create, in moto, the resources the capacity functions use, and simulated SageMaker endpoints.

Shared by the integration tests, the benchmark and the demo so all three run against one setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


class CapacityResources(BaseModel):
    """The stack's resources a function's settings name. The capacity functions use the tables and queues;
    the bucket, topic and capture-diff queue exist too because every function is given every variable."""

    model_config = ConfigDict(frozen=True)

    policy_table: str
    state_table: str
    idempotency_table: str
    intent_queue_url: str
    dead_letter_queue_url: str
    data_bucket: str
    notification_topic_arn: str
    capture_diff_queue_url: str

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment variables a deployed function would get from the template's Globals."""
        return {
            "POLICY_TABLE": self.policy_table,
            "STATE_TABLE": self.state_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "INTENT_QUEUE_URL": self.intent_queue_url,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "DATA_BUCKET": self.data_bucket,
            "NOTIFICATION_TOPIC_ARN": self.notification_topic_arn,
            "CAPTURE_DIFF_QUEUE_URL": self.capture_diff_queue_url,
            **extra,
        }


def create_capacity_resources(session: Any, prefix: str = "shadowscale-local") -> CapacityResources:  # noqa: ANN401
    """Tables and queues shaped as template.yaml declares them (keys, TTL, redrive), and the bucket, topic and
    capture-diff queue by name."""
    dynamodb = session.client("dynamodb", region_name=REGION)
    tables = {"policies": "id", "endpoint-state": "endpoint", "idempotency": "id"}
    for suffix, key in tables.items():
        dynamodb.create_table(
            TableName=f"{prefix}-{suffix}",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        )
    dynamodb.update_time_to_live(
        TableName=f"{prefix}-idempotency", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    sqs = session.client("sqs", region_name=REGION)
    dead_letters = sqs.create_queue(QueueName=f"{prefix}-dead-letters")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    intents = sqs.create_queue(
        QueueName=f"{prefix}-deferred-changes",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": "8"})},
    )["QueueUrl"]
    capture_diffs = sqs.create_queue(QueueName=f"{prefix}-capture-diffs")["QueueUrl"]
    data_bucket = f"{prefix}-data-{ACCOUNT}-{REGION}"
    session.client("s3", region_name=REGION).create_bucket(Bucket=data_bucket)
    topic = session.client("sns", region_name=REGION).create_topic(Name=f"{prefix}-notifications")["TopicArn"]
    return CapacityResources(
        policy_table=f"{prefix}-policies",
        state_table=f"{prefix}-endpoint-state",
        idempotency_table=f"{prefix}-idempotency",
        intent_queue_url=intents,
        dead_letter_queue_url=dead_letters,
        data_bucket=data_bucket,
        notification_topic_arn=topic,
        capture_diff_queue_url=capture_diffs,
    )


def create_models(sagemaker: Any, *names: str) -> None:  # noqa: ANN401
    """Models with a container image named after them; one that exists already is left as it is."""
    for name in names:
        with contextlib.suppress(sagemaker.exceptions.ClientError):  # a model may be shared by endpoints
            sagemaker.create_model(
                ModelName=name,
                PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}:latest"},
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution",
            )


def create_one_variant_endpoint(
    sagemaker: Any,  # noqa: ANN401
    name: str,
    candidate_model: str,
    wait: Callable[[float], None] | None = None,
    *,
    instances: int = 2,
) -> None:
    """An endpoint `name` serving `<name>-v1` on one production variant `primary` (config `<name>-config-1`),
    with `candidate_model` registered beside it: where a shadow test starts."""
    create_models(sagemaker, f"{name}-v1", candidate_model)
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config-1",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{name}-v1",
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    create_endpoint_once_visible(sagemaker, name, f"{name}-config-1", wait)


def create_endpoint_once_visible(
    sagemaker: Any,  # noqa: ANN401
    name: str,
    config_name: str,
    wait: Callable[[float], None] | None = None,
) -> None:
    """CreateEndpoint right after CreateEndpointConfig, retried while the new config is not visible yet
    (SageMaker reads are eventually consistent: CreateEndpointConfig's documentation asks for retries).
    `wait` lets time pass (the local cloud's clock); without it, time.sleep."""
    pause = wait or time.sleep
    for attempt in range(8):
        try:
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        except sagemaker.exceptions.ClientError as exc:
            if "could not find endpoint configuration" not in str(exc).lower() or attempt == 7:
                raise
            pause(2.0**attempt)
        else:
            return


def create_endpoint(
    sagemaker: Any,  # noqa: ANN401
    name: str,
    variants: Mapping[str, tuple[int, float]],
    wait: Callable[[float], None] | None = None,
) -> None:
    """A real-time endpoint with one production variant per entry: name → (instances, weight)."""
    production_variants = []
    for variant, (instances, weight) in variants.items():
        model = f"{name}-{variant}-model"
        create_models(sagemaker, model)
        production_variants.append(
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
        )
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config-1", ProductionVariants=production_variants)
    create_endpoint_once_visible(sagemaker, name, f"{name}-config-1", wait)


@cache
def _shared_loader() -> Any:  # noqa: ANN401
    from botocore.loaders import create_loader

    return create_loader()


def apply_environment(values: Mapping[str, str]) -> None:
    """Set function environment variables in this process and drop every cache built from the old ones."""
    from shadowscale.shared import clients
    from shadowscale.shared.settings import get_settings

    os.environ.update(values)
    get_settings.cache_clear()
    # Every part a function builds holds clients with the credentials it was built under: the runtime
    # rebuilds its containers' composition roots (lambda_runtime.rebuild) after this.
    clients.session.cache_clear()
    # In Lambda each container loads botocore's service models once; here one process plays every
    # container, so the rebuilt sessions share one loader (credentials stay each session's own).
    clients.session()._session.register_component("data_loader", _shared_loader())


def queued_bodies(queue_url: str, *, remove: bool = False) -> list[str]:
    """Every message body on a moto queue, delayed ones included; `remove` takes them off the queue.

    moto delays messages in wall time; the local cloud runs on its own clock, so it reads through delays
    and plays the event source mapping itself.
    """
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][REGION].queues[queue_url.rsplit("/", 1)[-1]]
    bodies = [message.body for message in queue._messages]
    if remove:
        queue._messages.clear()
    return bodies


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    """Bodies as Lambda's SQS event source mapping delivers them."""
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def create_latency_alarm(cloudwatch: Any, alarm_name: str, endpoint: str, threshold: float) -> None:  # noqa: ANN401
    """The demos' scale-out alarm: a variant's ModelLatency p90 above `threshold` µs for two minutes."""
    cloudwatch.put_metric_alarm(
        AlarmName=alarm_name,
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p90",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "primary"}],
        Period=60,
        EvaluationPeriods=2,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )
