"""moto-backed AWS for handler tests: the tables, queues and endpoint the capacity functions use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale.capacity.policy_store import PolicyRepository
from shadowscale.shared import clients
from shadowscale.shared.settings import get_settings
from shadowscale_localcloud import resources
from shadowscale_localcloud.lambda_runtime import LambdaContext, on_clock, rebuild
from shadowscale_localcloud.sagemaker_gaps import SageMakerGapFill

from functions.alarm_scaler import app as alarm_app
from functions.deferred_scaler import app as deferred_app
from functions.scheduled_scaler import app as scheduled_app
from tests.factories import ENDPOINT, make_policy

# The capacity handlers the tests call directly, each bound to the test's clock while a stack is up.
CAPACITY_HANDLER_MODULES = (alarm_app, deferred_app, scheduled_app)

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class Clock:
    """Stands in for wall time in the gap-filled SageMaker (status transitions)."""

    # Monday 2026-11-23 21:00 UTC: after business hours in Berlin (the sample policy's window is closed).
    current: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 21, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


@dataclass
class Stack:
    """Handles on what a deployed stack provides, with helpers to read the endpoint back."""

    sagemaker: Any
    dynamodb: Any
    sqs: Any
    autoscaling: Any
    policies: PolicyRepository
    intent_queue_url: str
    dead_letter_queue_url: str
    gaps: SageMakerGapFill
    clock: Clock
    context: LambdaContext = field(default_factory=lambda: LambdaContext(function_name="shadowscale-test"))

    def rebuild_functions(self) -> None:
        """New settings: the capacity handlers build their parts again (as a new Lambda container would)."""
        get_settings.cache_clear()
        for module in CAPACITY_HANDLER_MODULES:
            rebuild(module)

    def put_policy(self, policy: CapacityPolicy) -> None:
        self.policies.put(policy)

    def variant(self, name: str, endpoint: str = ENDPOINT) -> dict[str, Any]:
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        found: dict[str, Any] = next(v for v in described["ProductionVariants"] if v["VariantName"] == name)
        return found

    def instances(self, name: str = "primary") -> int:
        return int(self.variant(name)["CurrentInstanceCount"])

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]

    def queued_bodies(self, queue_url: str) -> list[dict[str, Any]]:
        return [json.loads(body) for body in resources.queued_bodies(queue_url)]

    def sqs_event(self, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:shadowscale-test-deferred-changes"
        return resources.sqs_event([json.dumps(body) for body in bodies], queue_arn)

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesDelayed"])


def create_endpoint(sagemaker: Any, name: str = ENDPOINT, primary: int = 1, candidate: int = 1) -> None:
    resources.create_endpoint(sagemaker, name, {"primary": (primary, 1.0), "candidate": (candidate, 0.1)})


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        made = resources.create_capacity_resources(boto3, prefix="shadowscale-test")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        create_endpoint(sagemaker)
        environment = made.environment(
            UPDATE_RETRY_BUDGET_SECONDS="30", UPDATE_MAX_ATTEMPTS="3", POLICY_CACHE_SECONDS="0"
        )
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        resources.apply_environment(environment)
        clock = Clock()
        undo = [on_clock(module, clock) for module in CAPACITY_HANDLER_MODULES]
        with SageMakerGapFill(clock=clock.now) as gaps:
            yield Stack(
                sagemaker=sagemaker,
                dynamodb=dynamodb,
                sqs=sqs,
                autoscaling=boto3.client("application-autoscaling", region_name=REGION),
                policies=PolicyRepository(dynamodb, "shadowscale-test-policies"),
                intent_queue_url=made.intent_queue_url,
                dead_letter_queue_url=made.dead_letter_queue_url,
                gaps=gaps,
                clock=clock,
            )
        for restore in undo:
            restore()
        get_settings.cache_clear()
        clients.session.cache_clear()


@pytest.fixture
def sample_policy(stack: Stack) -> CapacityPolicy:
    """The sample policy; tests pick their instants so business hours apply or not."""
    policy = make_policy()
    stack.put_policy(policy)
    return policy
