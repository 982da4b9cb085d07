"""What the response-diff pipeline needs of its store beyond bytes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredState:
    """A shadow test's stored diff state: its manifest (None for a new test) and that object's ETag."""

    manifest: bytes | None
    version: str | None
