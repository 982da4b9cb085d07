"""Wall-clock time. Tests and the local cloud inject their own clocks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...
