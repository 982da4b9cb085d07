"""Settings as one typed model, read from the environment once, at the edge.

Defaults for deployed functions live in template.yaml Globals; the defaults here are for tools and
tests. Domain code receives a Settings object; it never reads os.environ itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shadowscale.shared.errors import ConfigurationError
from shadowscale.shared.validation import field_problems


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    stage: str = Field(default="dev", alias="STAGE")
    policy_table: str = Field(default="shadowscale-policies", alias="POLICY_TABLE", min_length=3)
    state_table: str = Field(default="shadowscale-endpoint-state", alias="STATE_TABLE", min_length=3)
    idempotency_table: str = Field(default="shadowscale-idempotency", alias="IDEMPOTENCY_TABLE", min_length=3)
    intent_queue_url: str = Field(default="", alias="INTENT_QUEUE_URL")
    dead_letter_queue_url: str = Field(default="", alias="DEAD_LETTER_QUEUE_URL")
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
    data_bucket: str = Field(default="", alias="DATA_BUCKET")
    notification_topic_arn: str = Field(default="", alias="NOTIFICATION_TOPIC_ARN")
    # The response-diff pipeline's queue: S3 notifications of capture, and the lifecycle's close requests.
    capture_diff_queue_url: str = Field(default="", alias="CAPTURE_DIFF_QUEUE_URL")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            raise ConfigurationError(f"invalid settings: {field_problems(exc)}") from exc


@cache
def get_settings() -> Settings:
    """The process's settings, validated on first use (cached: a Lambda container reads them once)."""
    return Settings.from_environ(os.environ)
