"""EventBridge Scheduler's CreationDate on the local cloud's clock. Targets moto==5.2.5.

A rate schedule without a StartDate runs from when it was created (GetSchedule's `CreationDate`; the
`StartDate` is "the date, in UTC, after which the schedule can begin invoking its target", and without one
nothing holds it back). moto stamps schedules with wall time, so on an accelerated clock that starts in the
past a `rate(5 minutes)` heartbeat would seem to be created in the future and never fire. Installed,
schedules and groups are stamped with the local cloud's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from moto.scheduler import models as scheduler_models


@dataclass
class SchedulerClock:
    now: Callable[[], datetime]
    _original: Any = field(default=None)

    def install(self) -> Self:
        self._original = getattr(scheduler_models, "unix_time")  # noqa: B009  (moto does not export it)
        setattr(scheduler_models, "unix_time", lambda *_: self.now().timestamp())  # noqa: B010
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            setattr(scheduler_models, "unix_time", self._original)  # noqa: B010
            self._original = None
