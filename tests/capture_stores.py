"""A data bucket that several diff writers share, as S3 behaves for them: conditional commits on the ETag,
a missing blob is DiffStateCorrupt (the S3 adapter's answer), writes are atomic. Each writer reaches it
through a WriterView whose every call is a step: `before(step)` runs first, so a test can run another
writer to completion between any two steps of this one, or crash this one at any step."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from shadowscale.response_diffs.models import DiffMetrics
from shadowscale.response_diffs.pipeline import unpack_state
from shadowscale.response_diffs.ports import StoredState
from shadowscale.response_diffs.state import WindowRef
from shadowscale.shared.diff_contract import DiffConfig
from shadowscale.shared.errors import DiffStateConflict, DiffStateCorrupt
from shadowscale.shared.stored_bytes import StoredBytes


def _no_step(step: str) -> None:
    return None


@dataclass
class SharedBucket:
    objects: dict[str, StoredBytes] = field(default_factory=dict)
    configs: dict[str, DiffConfig] = field(default_factory=dict)
    # (writer, label) of every commit that advanced the state's sequence, in commit order.
    main_commits: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, body: bytes) -> str:
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        with self.lock:
            self.objects[key] = StoredBytes(body, etag)
        return etag

    def json(self, key: str) -> Any:
        return orjson.loads(self.objects[key].body)

    def keys(self, prefix: str) -> list[str]:
        with self.lock:
            return sorted(key for key in self.objects if key.startswith(prefix))

    def files(self, prefix: str) -> dict[str, bytes]:
        """Every output under `prefix` (the state excepted), by key."""
        return {key: self.objects[key].body for key in self.keys(prefix) if "/state/" not in key}

    def commit(self, key: str, manifest: bytes, expected: str | None, writer: str, label: str) -> None:
        with self.lock:
            current = self.objects.get(key)
            if (current.etag if current else None) != expected:
                raise DiffStateConflict(f"{key} was committed by another writer")
            before = unpack_state(current.body)[1].sequence if current else 0
            self.objects[key] = StoredBytes(manifest, hashlib.md5(manifest, usedforsecurity=False).hexdigest())
            if unpack_state(manifest)[1].sequence > before:
                self.main_commits.append((writer, label))


@dataclass
class WriterView:
    """One invocation's DiffStore over the shared bucket."""

    bucket: SharedBucket
    name: str
    before: Callable[[str], None] = _no_step
    label: str = ""  # the batch being diffed (recorded with each commit)
    steps: list[str] = field(default_factory=list)

    def step(self, step: str) -> None:
        self.steps.append(step)
        self.before(step)

    def read_capture(self, key: str) -> StoredBytes | None:
        self.step(f"read_capture {key.rsplit('/', 1)[-1]}")
        return self.bucket.objects.get(key)

    def load_config(self, test_id: str) -> DiffConfig | None:
        return self.bucket.configs.get(test_id)

    def load_state(self, prefix: str) -> StoredState:
        self.step("load_state")
        stored = self.bucket.objects.get(f"{prefix}state/manifest.bin")
        return StoredState(stored.body, stored.etag) if stored else StoredState(None, None)

    def load_window(self, prefix: str, ref: WindowRef) -> bytes:
        self.step(f"load_window {getattr(ref, 'kind', 'window')}")
        found = self.bucket.objects.get(f"{prefix}state/windows/{ref.name}.bin")
        if found is None:
            raise DiffStateCorrupt(f"the manifest under {prefix} names window {ref.name}, which is not stored")
        return found.body

    def write_windows(self, prefix: str, blobs: dict[WindowRef, bytes]) -> None:
        for ref, blob in blobs.items():
            self.step(f"write_window {getattr(ref, 'kind', 'window')}")
            self.bucket.add(f"{prefix}state/windows/{ref.name}.bin", blob)

    def commit(self, prefix: str, manifest: bytes, expected_version: str | None) -> None:
        self.step("commit")
        self.bucket.commit(f"{prefix}state/manifest.bin", manifest, expected_version, self.name, self.label)

    def delete_windows(self, prefix: str, refs: tuple[WindowRef, ...]) -> None:
        for ref in refs:
            self.step(f"delete_window {getattr(ref, 'kind', 'window')}")
            with self.bucket.lock:
                self.bucket.objects.pop(f"{prefix}state/windows/{ref.name}.bin", None)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self.step(f"put {key.split('/')[2]}")
        self.bucket.add(key, body)


@dataclass
class SteppedMetrics:
    """Window metrics recorded in a list shared by all writers; emitting one is a step of its writer."""

    published: list[tuple[DiffMetrics, datetime]]
    before: Callable[[str], None] = _no_step
    counters: dict[str, float] = field(default_factory=dict)

    def publish(self, metrics: DiffMetrics, at: datetime) -> None:
        self.before("emit_metrics")
        self.published.append((metrics, at))

    def count(self, name: str, value: float) -> None:
        self.counters[name] = self.counters.get(name, 0) + value
