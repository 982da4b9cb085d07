"""Settings as one typed model, read from the environment once, at the edge.

template.yaml Globals gives every function every variable. The stack's resources (tables, queues, bucket,
topic) have no default here: a function started without one fails before its first AWS call, naming the
variable, instead of calling a table or queue that does not exist. The tunables keep defaults equal to the
Globals values (tests/static/test_settings_in_template.py keeps the two in step). Domain code receives a
Settings object; it never reads os.environ itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from shadowscale.shared.errors import ConfigurationError
from shadowscale.shared.validation import field_problems

# A resource the stack creates: its name, URL or ARN, never empty (nor only blanks).
Resource = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# DynamoDB table names are 3 to 255 characters.
TableName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=255)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    stage: str = Field(default="dev", alias="STAGE")
    policy_table: TableName = Field(alias="POLICY_TABLE")
    state_table: TableName = Field(alias="STATE_TABLE")
    idempotency_table: TableName = Field(alias="IDEMPOTENCY_TABLE")
    intent_queue_url: Resource = Field(alias="INTENT_QUEUE_URL")
    dead_letter_queue_url: Resource = Field(alias="DEAD_LETTER_QUEUE_URL")
    # A global kill switch on top of each policy's own dryRun.
    dry_run: bool = Field(default=False, alias="DRY_RUN")
    # How long one invocation may spend retrying a busy endpoint before it defers the change.
    update_retry_budget_seconds: float = Field(default=20.0, alias="UPDATE_RETRY_BUDGET_SECONDS", gt=0, le=600)
    update_max_attempts: int = Field(default=5, alias="UPDATE_MAX_ATTEMPTS", ge=1, le=20)
    # Delay before a deferred change is tried again (SQS DelaySeconds caps this at 900).
    defer_delay_seconds: int = Field(default=60, alias="DEFER_DELAY_SECONDS", ge=0, le=900)
    # While a shadow test holds an endpoint, a change that waits for it is re-checked this often.
    hold_recheck_seconds: int = Field(default=30, alias="HOLD_RECHECK_SECONDS", ge=1, le=900)
    lock_lease_seconds: int = Field(default=120, alias="LOCK_LEASE_SECONDS", ge=10, le=86_400)
    policy_cache_seconds: int = Field(default=60, alias="POLICY_CACHE_SECONDS", ge=0, le=3600)
    idempotency_ttl_seconds: int = Field(default=3600, alias="IDEMPOTENCY_TTL_SECONDS", ge=60)
    metrics_namespace: str = Field(default="Shadowscale", alias="POWERTOOLS_METRICS_NAMESPACE")
    # Shadow tests: reports, capture and diff summaries live in one bucket; notices go to one topic.
    data_bucket: Resource = Field(alias="DATA_BUCKET")
    notification_topic_arn: Resource = Field(alias="NOTIFICATION_TOPIC_ARN")
    # The response-diff pipeline's queue: S3 notifications of capture, and the lifecycle's close requests.
    capture_diff_queue_url: Resource = Field(alias="CAPTURE_DIFF_QUEUE_URL")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            problems = field_problems(exc, whole="(environment)", problem=_variable_problem)
            raise ConfigurationError(
                f"invalid settings: {problems} (template.yaml Globals gives every function these variables)"
            ) from exc


def _variable_problem(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return " is not set"
    if error["type"] == "string_too_short" and not str(error.get("input", "")).strip():
        return " is empty"
    return f": {error['msg']}"


@cache
def get_settings() -> Settings:
    """The process's settings, validated on first use (cached: a Lambda container reads them once)."""
    return Settings.from_environ(os.environ)
