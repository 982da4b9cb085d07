"""The message a promotion sends the capacity autopilot: the policy of the old production variant moves to
the promoted one. It travels on the deferred-change queue, so it inherits that queue's retries and
dead-letter queue, and the capacity side stays the only writer of capacity policies it did not get from
the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shadowscale.shared.validation import SAGEMAKER_NAME, parse_body

HANDOVER_KIND: Final = "shadowscale.promotion-handover"
# A handover that cannot be completed is sent round again for this long (an outage of hours), then it
# fails on and the queue's redrive policy dead-letters it with its reason.
HANDOVER_PATIENCE = timedelta(hours=24)


class PromotionHandover(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    kind: Literal["shadowscale.promotion-handover"] = HANDOVER_KIND
    endpoint: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    test_id: str = Field(alias="testId", min_length=1, max_length=200)
    from_variant: str = Field(alias="fromVariant", pattern=SAGEMAKER_NAME, max_length=63)
    to_variant: str = Field(alias="toVariant", pattern=SAGEMAKER_NAME, max_length=63)
    promoted_at: datetime = Field(alias="promotedAt")
    instances: int | None = Field(default=None, ge=0, description="The promoted variant's count when promoted.")
    variants: tuple[str, ...] = Field(
        default=(), description="The endpoint's production variants after the promotion (empty: not known)."
    )
    attempt: int = Field(default=0, ge=0, description="How many times it was sent round after a transient failure.")

    @model_validator(mode="after")
    def _two_variants(self) -> PromotionHandover:
        if self.from_variant == self.to_variant:
            raise ValueError(f"fromVariant and toVariant are both {self.from_variant!r}")
        return self

    @property
    def event_id(self) -> str:
        # Every re-send of one handover (finalize retried, recovery) is one event; a send-round is another.
        return f"promotion:{self.test_id}:{self.attempt}"

    def again(self) -> PromotionHandover:
        return self.model_copy(update={"attempt": self.attempt + 1})


def is_handover(body: str) -> bool:
    """Cheap look at a queue body's kind, before the full parse of whichever model it is."""
    return f'"kind":"{HANDOVER_KIND}"' in body.replace(" ", "")


def parse_handover(body: object) -> PromotionHandover:
    return parse_body(PromotionHandover, body, "promotion handover")


class PromotionAnnouncer(Protocol):
    def announce(self, handover: PromotionHandover, delay_seconds: int = 0) -> None:
        """Tell the capacity autopilot that a promotion replaced a production variant."""
        ...
