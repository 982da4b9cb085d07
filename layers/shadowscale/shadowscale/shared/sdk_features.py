"""What this code needs from the AWS SDK it runs with, checked where it is first needed.

The diff pipeline commits its state with conditional PutObject: `IfNoneMatch` (botocore 1.35.2 on) and
`IfMatch` (1.35.69 on). An older botocore refuses both with ParamValidationError, which would read as a
failed commit on every batch; the Lambda runtime's bundled SDK is not pinned, so the layer ships its own
(layers/shadowscale/requirements.txt) and the S3 adapter checks the one it actually got.

Imports botocore only (no pydantic, no compiled code): tests/artifacts/check_layer.py runs this very
check against the built layer's botocore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shadowscale.shared.errors import ConfigurationError

if TYPE_CHECKING:
    from botocore.model import ServiceModel


CONDITIONAL_WRITES = ("IfMatch", "IfNoneMatch")
CONDITIONAL_WRITES_SINCE = "IfNoneMatch needs botocore >= 1.35.2, IfMatch >= 1.35.69"


def missing_put_object_parameters(service_model: ServiceModel) -> tuple[str, ...]:
    """Which conditional-write parameters this S3 service model's PutObject cannot send."""
    shape = service_model.operation_model("PutObject").input_shape
    members = shape.members if shape is not None else {}
    return tuple(name for name in CONDITIONAL_WRITES if name not in members)


def require_conditional_writes(service_model: ServiceModel) -> None:
    """Raise ConfigurationError unless S3 PutObject takes IfMatch and IfNoneMatch in this SDK."""
    missing = missing_put_object_parameters(service_model)
    if missing:
        import botocore

        raise ConfigurationError(
            f"botocore {botocore.__version__} cannot make conditional S3 writes: PutObject has no "
            f"{', '.join(missing)} parameter ({CONDITIONAL_WRITES_SINCE}). The shared layer ships the pinned "
            "boto3/botocore: deploy it with the function, or put it first on the path."
        )
