"""Which AWS errors are retryable, and as which typed error (the state machines' ErrorEquals names)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.errors import (
    AwsServiceUnavailable,
    EndpointBusy,
    EndpointNotFound,
    ScalingTargetBusy,
    Throttled,
)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("ThrottlingException", "Rate exceeded", 400, Throttled),
        ("SlowDown", "Please reduce your request rate.", 503, Throttled),  # S3
        ("ProvisionedThroughputExceededException", "", 400, Throttled),  # DynamoDB
        ("KMSThrottlingException", "", 400, Throttled),  # an encrypted queue or topic passing KMS's on
        ("ConcurrentUpdateException", "target being updated", 400, ScalingTargetBusy),  # Auto Scaling
        ("ValidationException", "Cannot update in-progress endpoint", 400, EndpointBusy),
        ("RequestTimeout", "", 400, AwsServiceUnavailable),  # botocore's transient codes
        ("InternalServerError", "", 500, AwsServiceUnavailable),
        ("ServiceUnavailable", "", 503, AwsServiceUnavailable),
        ("ValidationException", 'Could not find endpoint "x".', 400, EndpointNotFound),
    ],
)
def test_retryable_aws_errors_become_typed_errors(
    code: str, message: str, status: int, expected: type[Exception]
) -> None:
    # GIVEN an AWS error as botocore raises it once its own retries are spent
    error = client_error(code, message, status)

    # WHEN the adapter maps it
    with pytest.raises(expected) as raised:
        raise_domain_error(error, "the call")

    # THEN the typed error names the call and keeps the cause
    assert "the call" in str(raised.value)
    assert raised.value.__cause__ is error


def test_an_error_nothing_can_fix_by_retrying_propagates_unchanged() -> None:
    error = client_error("AccessDeniedException", "not authorized")
    with pytest.raises(ClientError) as raised:
        raise_domain_error(error, "the call")
    assert raised.value is error
