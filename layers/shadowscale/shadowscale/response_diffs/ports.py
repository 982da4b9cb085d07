"""What the response-diff pipeline needs of the world: a store (S3 when deployed: store.py) and a metrics
sink (CloudWatch EMF: emf.py). Unit tests implement both in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shadowscale.response_diffs.models import DiffMetrics
from shadowscale.response_diffs.state import WindowRef
from shadowscale.shared.diff_contract import DiffConfig
from shadowscale.shared.stored_bytes import StoredBytes


@dataclass(frozen=True)
class StoredState:
    """A shadow test's stored diff state: its manifest (None for a new test) and that object's ETag."""

    manifest: bytes | None
    version: str | None


class DiffStore(Protocol):
    def read_capture(self, key: str) -> StoredBytes | None: ...

    def load_config(self, test_id: str) -> DiffConfig | None: ...

    def load_state(self, prefix: str) -> StoredState: ...

    def load_window(self, prefix: str, ref: WindowRef) -> bytes: ...

    def write_windows(self, prefix: str, blobs: dict[WindowRef, bytes]) -> None: ...

    def commit(self, prefix: str, manifest: bytes, expected_version: str | None) -> None: ...

    def delete_windows(self, prefix: str, refs: tuple[WindowRef, ...]) -> None: ...

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None: ...


class DiffMetricsSink(Protocol):
    def publish(self, metrics: DiffMetrics, at: datetime) -> None:
        """One closed window's metrics, stamped with the window's end."""
        ...

    def count(self, name: str, value: float) -> None:
        """A pipeline counter (objects processed, rejected, conflicts...)."""
        ...
