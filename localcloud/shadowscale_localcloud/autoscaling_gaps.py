"""Where moto's Application Auto Scaling answers differently from AWS, corrected. Targets moto==5.2.5.

- DeregisterScalableTarget of a target that does not exist: AWS answers `ObjectNotFoundException`
  ("For any operation that deletes or deregisters a resource, this exception is thrown if the resource
  cannot be found", Application Auto Scaling API reference, DeregisterScalableTarget / Errors); moto
  answers `ValidationException`, which would make our idempotent deregister look like a failure.
"""

from __future__ import annotations

from typing import Any, Self

import moto
from moto.applicationautoscaling import models as autoscaling_models
from moto.core.exceptions import JsonRESTError

TARGET_MOTO_VERSION = "5.2.5"


class ObjectNotFoundException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ObjectNotFoundException", message)


class AutoScalingGapFill:
    def __init__(self) -> None:
        self._original: Any = None

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"AutoScalingGapFill targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        backend_class = autoscaling_models.ApplicationAutoscalingBackend
        original = self._original = backend_class.deregister_scalable_target

        def deregister_scalable_target(
            backend: autoscaling_models.ApplicationAutoscalingBackend, namespace: str, r_id: str, dimension: str
        ) -> None:
            if not backend._scalable_target_exists(r_id, dimension):
                raise ObjectNotFoundException(
                    f"No scalable target found for service namespace: {namespace}, resource ID: {r_id}, "
                    f"scalable dimension: {dimension}"
                )
            original(backend, namespace, r_id, dimension)

        backend_class.deregister_scalable_target = deregister_scalable_target  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            autoscaling_models.ApplicationAutoscalingBackend.deregister_scalable_target = self._original  # type: ignore[method-assign]
            self._original = None
