"""The one place AWS error codes and messages are read and turned into domain errors."""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import ClientError

from shadowscale.errors import (
    AwsServiceUnavailable,
    EndpointBusy,
    EndpointNotFound,
    Throttled,
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
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
    if code == "ValidationException" and ("could not find" in message.lower() or "not found" in message.lower()):
        raise EndpointNotFound(f"{subject}: {message}") from exc
    if status >= 500 or code in {"InternalFailure", "ServiceUnavailable", "InternalServerError"}:
        raise AwsServiceUnavailable(f"{subject}: {code}: {message}") from exc
    raise exc
