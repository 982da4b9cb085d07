"""PutMetricAlarm on an existing alarm keeps its state, as CloudWatch does. Targets moto==5.2.5.

The PutMetricAlarm API reference: "When you update an existing alarm, its state is left unchanged, but the
update completely overwrites the previous configuration of the alarm." moto builds a new alarm object
instead, whose state starts over at OK: an alarm in ALARM that shadowscale re-points after a promotion
would fall back to OK without an evaluation and without the state-change event CloudWatch never sent.
Installed, the new object takes over the old one's state, reason and history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from moto.cloudwatch import models as cloudwatch_models

KEPT_ON_UPDATE = ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history")


@dataclass
class AlarmUpdatesKeepState:
    _original: Any = field(default=None)

    def install(self) -> Self:
        backend_class = cloudwatch_models.CloudWatchBackend
        original = backend_class.put_metric_alarm
        self._original = original

        def put_metric_alarm(backend: cloudwatch_models.CloudWatchBackend, name: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            previous = backend.alarms.get(name)
            alarm = original(backend, name, *args, **kwargs)
            if previous is not None:
                for attribute in KEPT_ON_UPDATE:
                    setattr(alarm, attribute, getattr(previous, attribute))
            return alarm

        backend_class.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            cloudwatch_models.CloudWatchBackend.put_metric_alarm = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()
