"""EventBridge Scheduler's CreationDate on the local cloud's clock, and a cached view of the schedules.
Targets moto==5.2.5.

A rate schedule without a StartDate runs from when it was created (GetSchedule's `CreationDate`; the
`StartDate` is "the date, in UTC, after which the schedule can begin invoking its target", and without one
nothing holds it back). moto stamps schedules with wall time, so on an accelerated clock that starts in the
past a `rate(5 minutes)` heartbeat would seem to be created in the future and never fire. Installed,
schedules and groups are stamped with the local cloud's clock.

The local cloud fires schedules itself, so it reads them on every clock advance (a Wait state of every
execution advances the clock). Installed, this also counts the changes made to schedules and groups
(Create/Update/DeleteSchedule, Create/DeleteScheduleGroup reach moto's backend through these methods,
whoever calls), so `listing` reads them through the API only after a change.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from moto.scheduler import models as scheduler_models

# The backend methods that change what ListSchedules/GetSchedule answer.
_CHANGES = ("create_schedule", "update_schedule", "delete_schedule", "create_schedule_group", "delete_schedule_group")


@dataclass
class SchedulerClock:
    now: Callable[[], datetime]
    changes: int = 0  # how many schedule or group changes moto's backend has seen since install
    _original: Any = field(default=None)
    _originals: dict[str, Any] = field(default_factory=dict)
    _listing: tuple[int, list[dict[str, Any]]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> Self:
        self._original = getattr(scheduler_models, "unix_time")  # noqa: B009  (moto does not export it)
        setattr(scheduler_models, "unix_time", lambda *_: self.now().timestamp())  # noqa: B010
        backend = scheduler_models.EventBridgeSchedulerBackend
        for name in _CHANGES:
            self._originals[name] = getattr(backend, name)
            setattr(backend, name, self._counted(self._originals[name]))
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            setattr(scheduler_models, "unix_time", self._original)  # noqa: B010
            self._original = None
        for name, original in self._originals.items():
            setattr(scheduler_models.EventBridgeSchedulerBackend, name, original)
        self._originals = {}
        self._listing = None

    def listing(self, read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """What `read` (ListSchedules + GetSchedule) last returned, read again only after a change."""
        with self._lock:
            seen = self.changes
            if self._listing is not None and self._listing[0] == seen:
                return self._listing[1]
        found = read()
        with self._lock:
            # Stamped with the count from before the read: a change made during it forces another read.
            self._listing = (seen, found)
        return found

    def _counted(self, original: Callable[..., Any]) -> Callable[..., Any]:
        clock = self

        @functools.wraps(original)
        def change(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401  (moto's own signatures)
            try:
                return original(*args, **kwargs)
            finally:  # a change that failed half-way may still have changed something: count it
                with clock._lock:
                    clock.changes += 1

        return change
