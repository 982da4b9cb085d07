"""What the shadow-test lifecycle and the response-diff pipeline agree on: a test's comparison settings
(diffs/<test>/config.json), where capture and diffs live in the data bucket, and the close-diffs message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, Protocol, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shadowscale.shared.validation import SAGEMAKER_NAME

ComparatorName = Literal["auto", "numeric", "classification", "json", "text", "binary"]


# Paths name JSON fields as `a.b`, any list element as `[]` (`predictions[].score`), a CSV column as `[3]`.
# A path without dots or brackets names that key at any depth.
PATH_PATTERN = re.compile(r"^(\[\d*\]|[^.\[\]]+)(\[\d*\])*(\.[^.\[\]]+(\[\d*\])*)*$")


class CamelModel(BaseModel):
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, alias_generator=to_camel, extra="forbid", defer_build=True
    )


class Tolerance(CamelModel):
    """Two numbers agree when |a - b| <= absolute or |a - b| <= relative * max(|a|, |b|) (as math.isclose)."""

    absolute: float = Field(default=1e-6, ge=0)
    relative: float = Field(default=1e-4, ge=0)


class ClassificationRule(CamelModel):
    """Where a classifier's answer sits in its output. For CSV outputs use `[i]` for column i and "" for
    the whole row (e.g. a vector of class scores)."""

    label_path: str | None = "label"
    scores_path: str | None = None
    top_k: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _something_to_compare(self) -> Self:
        if self.label_path is None and self.scores_path is None:
            raise ValueError("give labelPath, scoresPath or both")
        return self


class DiffConfig(CamelModel):
    """How one shadow test compares its shadow's answers with production's."""

    shadow_test: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    endpoint: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    production_variant: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    shadow_variant: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    comparator: ComparatorName = Field(
        default="auto",
        description="auto: JSON outputs as documents (or classification when configured), CSV as numbers, "
        "text/* as text, anything else as binary.",
    )
    tolerance: Tolerance = Field(default_factory=Tolerance)
    classification: ClassificationRule | None = None
    ignore_paths: tuple[str, ...] = Field(default=(), description="Differences under these paths do not count.")
    redact_fields: tuple[str, ...] = Field(default=(), description="Blanked in every stored example.")
    normalise_text: bool = Field(default=True, description="Text within tolerance: equal up to case and whitespace.")
    pairing_window_seconds: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="Twins are at most this far apart on inferenceTime; also the length of a state/summary window.",
    )
    allowed_lateness_seconds: int = Field(
        default=900,
        ge=0,
        le=86_400,
        description="How far behind the latest inferenceTime read a record may still arrive (SageMaker delivers "
        "minutes late, objects out of order): a window closes once that watermark passes its end plus the "
        "pairing window (event time: a backlog read hours late closes as it would have on time).",
    )
    mismatch_samples: int = Field(default=20, ge=0, le=1000)
    quarantine_samples: int = Field(default=20, ge=0, le=1000)
    top_fields: int = Field(default=20, ge=1, le=200)
    max_example_chars: int = Field(default=2048, ge=64, le=65536)
    object_retention_hours: int = Field(
        default=168,
        ge=1,
        le=24 * 90,
        description="Only for state written before per-hour object sets: how long its object identities are "
        "remembered. Objects are now remembered for the test's whole life.",
    )

    @model_validator(mode="after")
    def _two_variants(self) -> Self:
        if self.production_variant == self.shadow_variant:
            raise ValueError("productionVariant and shadowVariant must differ")
        if self.comparator == "classification" and self.classification is None:
            raise ValueError("comparator 'classification' needs a classification rule (labelPath/scoresPath)")
        return self

    @field_validator("ignore_paths", "redact_fields")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not PATH_PATTERN.match(path):
                raise ValueError(f"{path!r} is not a path like 'key', 'a.b', 'items[].score' or '[3]'")
        return value

    @classmethod
    def for_test(
        cls,
        shadow_test: str,
        endpoint: str,
        production_variant: str,
        shadow_variant: str,
        comparison: Mapping[str, JsonValue] | None = None,
    ) -> DiffConfig:
        """From a shadow test's `comparison` settings (camelCase, as ShadowTestInput carries them)."""
        return cls.model_validate(
            {
                **(comparison or {}),
                "shadowTest": shadow_test,
                "endpoint": endpoint,
                "productionVariant": production_variant,
                "shadowVariant": shadow_variant,
            }
        )


CAPTURE_ROOT = "capture"


DIFFS_ROOT = "diffs"


def shadow_test_of_capture_key(key: str) -> str | None:
    """The shadow test a capture object belongs to: its keys are capture/<test>/<endpoint>/<variant>/..."""
    parts = key.split("/")
    if len(parts) == 9 and parts[0] == CAPTURE_ROOT and parts[1]:
        return parts[1]
    return None


def diffs_prefix(test_id: str, backfill_run: str | None = None) -> str:
    """Where one test's diff state and outputs live (a backfill run keeps its own, beside the live ones)."""
    base = f"{DIFFS_ROOT}/{test_id}/"
    return base if backfill_run is None else f"{base}backfill/{backfill_run}/"


def diff_config_key(test_id: str) -> str:
    return f"{DIFFS_ROOT}/{test_id}/config.json"


class CloseDiffs(CamelModel):
    """The message that closes a test's diffs once its capture has stopped (sent by the lifecycle)."""

    kind: Literal["shadowscale.close-diffs"] = "shadowscale.close-diffs"
    test_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    ended_at: datetime


class DiffCloser(Protocol):
    def close(self, message: CloseDiffs, delay_seconds: int) -> None:
        """Ask the diff pipeline to close a test's windows once late capture can no longer land."""
        ...
