"""The one place that says which DiffEngine the pipeline (and the backfill) run.

TypedDiffEngine is DiffEngine with the typed capture reader: the same outcomes, byte for byte (the
differential test, tests/unit/test_diff_engine_differential.py, holds it to the reference), read faster.
Its module (and msgspec) is imported on the first engine built, not at import time, so that a function's
cold start does not pay for it before its first capture object.
"""

from __future__ import annotations

from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.state import WindowSource
from shadowscale.shared.diff_contract import DiffConfig


def pipeline_engine(
    config: DiffConfig, manifest: bytes | None = None, windows: WindowSource | None = None
) -> DiffEngine:
    """A new engine of the kind the pipeline uses, over this stored manifest and window source."""
    from shadowscale.response_diffs.typed_capture import TypedDiffEngine  # lazily: see the module docstring

    return TypedDiffEngine(config, manifest, windows)
