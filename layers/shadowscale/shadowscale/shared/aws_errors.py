"""The one place AWS error codes and messages are read and turned into domain errors."""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import ClientError

from shadowscale.shared.errors import (
    AwsServiceUnavailable,
    EndpointBusy,
    EndpointNotFound,
    ScalingTargetBusy,
    Throttled,
)

# botocore's standard retry mode treats these codes as throttling (botocore/retries/standard.py,
# ThrottledRetryableChecker), plus the KMS codes a KMS-encrypted queue, topic or bucket passes on.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
        "KMSThrottlingException",
        "KMS.ThrottlingException",
    }
)
# ...and these as transient (TransientRetryableChecker), with the 5xx codes services name in their models.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def raise_domain_error(exc: ClientError, subject: str) -> NoReturn:
    """Re-raise a ClientError as the domain error it means; unknown errors propagate unchanged."""
    code, message = error_code(exc), error_message(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING_CODES:
        raise Throttled(f"{subject}: {code}: {message}") from exc
    if code == "ValidationException" and "in-progress" in message.lower():
        raise EndpointBusy(f"{subject}: {message}") from exc
    if code == "ConcurrentUpdateException":  # Application Auto Scaling: documented as retryable
        raise ScalingTargetBusy(f"{subject}: {message}") from exc
    if code == "ValidationException" and ("could not find" in message.lower() or "not found" in message.lower()):
        raise EndpointNotFound(f"{subject}: {message}") from exc
    if status >= 500 or code in TRANSIENT_CODES:
        raise AwsServiceUnavailable(f"{subject}: {code}: {message}") from exc
    raise exc
