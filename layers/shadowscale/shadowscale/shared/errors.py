"""Typed errors of the domain.

Adapters translate AWS ClientError codes into these; nothing else matches on AWS error strings.
Their class names are a contract: state machine Catch/Retry clauses name them in ErrorEquals.
"""

from __future__ import annotations


class ShadowscaleError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(ShadowscaleError):
    """The deployment's settings are wrong; retrying cannot help."""


class InvalidPolicy(ShadowscaleError):
    """A capacity policy failed validation; the message names the field and the reason."""


class InvalidEvent(ShadowscaleError):
    """An event could not be understood; it is quarantined, never retried."""


class InvalidCaptureObject(InvalidEvent):
    """A capture object's key is not <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>, or names an
    endpoint or variant the shadow test does not compare."""


class DiffStateCorrupt(ShadowscaleError):
    """Stored response-diff state could not be read back (wrong format or version)."""


class CaptureObjectForbidden(InvalidEvent):
    """S3 refuses to return a capture object (e.g. it is encrypted with a KMS key the function may not use):
    no retry will help, so it is set aside with the reason."""


class DiffStateConflict(ShadowscaleError):
    """Another writer committed a shadow test's diff state first; the batch is retried from the new state."""


class AccountingMismatch(ShadowscaleError):
    """Records read and records accounted for (paired, unpaired, quarantined, pending) disagree: a bug."""


class PolicyNotFound(ShadowscaleError):
    """No capacity policy is stored for the endpoint or alarm an event names."""


class TransientAwsError(ShadowscaleError):
    """An AWS call failed in a way that may succeed later (throttling, 5xx, busy endpoint)."""


class EndpointBusy(TransientAwsError):
    """The endpoint is not InService, or SageMaker answered 'Cannot update in-progress endpoint'."""


class Throttled(TransientAwsError):
    """An AWS API throttled us beyond what the SDK's own retries absorbed."""


class AwsServiceUnavailable(TransientAwsError):
    """An AWS API answered with a server-side (5xx) error."""


class ScalingTargetBusy(TransientAwsError):
    """Application Auto Scaling answered ConcurrentUpdateException: another change to the scalable target is
    in progress (the API reference documents it as retryable)."""


class EndpointLocked(TransientAwsError):
    """Another writer (an autopilot invocation or a shadow test) holds the endpoint's lease."""

    def __init__(self, endpoint: str, owner: str) -> None:
        super().__init__(f"endpoint {endpoint!r} is locked by {owner!r}")
        self.endpoint = endpoint
        self.owner = owner


class EndpointHeld(TransientAwsError):
    """Another writer (an autopilot invocation) holds the endpoint for a moment while the shadow test wants to
    change it: retried shortly. Distinct from EndpointLocked, which at Lock means another test owns it."""


class EndpointNotFound(ShadowscaleError):
    """The endpoint (or a variant the policy names) does not exist."""


class LockLost(ShadowscaleError):
    """The lease expired and another writer took the lock before we released it."""


class InvalidShadowTestInput(ShadowscaleError):
    """The shadow test's input failed validation; the message names every bad field. Nothing was touched."""


class UnsupportedEndpoint(ShadowscaleError):
    """The endpoint cannot host a shadow test as it is (e.g. more than one production variant)."""


class EndpointNotInService(ShadowscaleError):
    """The endpoint did not reach InService on the expected config before the deadline."""


class EndpointUpdateFailed(ShadowscaleError):
    """SageMaker gave up an update (status Failed, or rolled back to another config)."""


class ModelNotFound(ShadowscaleError):
    """The candidate model does not exist."""


class CaptureObjectUnreadable(TransientAwsError):
    """A capture object could not be read now (S3 trouble); it is tried again."""


class EndpointConfigNotVisible(TransientAwsError):
    """An endpoint config we just created is not visible yet: SageMaker's reads are eventually consistent
    (CreateEndpointConfig's documentation), so the caller retries shortly."""


class ShadowSamplingRefused(ShadowscaleError):
    """SageMaker refused to set a shadow variant's weight with UpdateEndpointWeightsAndCapacities (whether
    it accepts one is undocumented); the ramp moves by a new endpoint config instead."""


class EndpointStateMismatch(ShadowscaleError):
    """After an update reached InService, the live endpoint is not what its config asked for (variants,
    shadow variant, data capture): the message says what differs. The test ends on the restore path."""


class RecoveryRefused(ShadowscaleError):
    """A recovery was asked for an execution that is still running, or that names no shadow test."""
