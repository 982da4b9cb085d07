"""The command line's exit codes, and every failure turned into one readable line.

This module is the CLI's one place that reads AWS error codes (it owns the calls the commands make), and it
imports botocore only when an error has to be described, so `--help` and `--version` stay fast.
"""

from __future__ import annotations

from enum import IntEnum

from shadowscale.shared.errors import ShadowscaleError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a check, a verdict or an execution that did not succeed
    USAGE = 2  # bad arguments or invalid input: nothing was changed
    NOT_FOUND = 3  # the stack, endpoint, model, execution, report or summary named does not exist
    AWS = 4  # AWS refused or could not be reached: credentials, permissions, network, throttling
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


EXIT_CODES_HELP = """\b
Exit codes:
  0  done
  1  a check failed, a test was rejected or did not succeed
  2  usage error or invalid input (nothing was changed)
  3  not found: stack, endpoint, model, execution, report, summary
  4  AWS error: credentials, permissions, network, throttling
  130 interrupted"""


class CliError(ShadowscaleError):
    """A failure the CLI words itself; `code` is the exit code."""

    code = ExitCode.FAILED


class UsageProblem(CliError):
    code = ExitCode.USAGE


class NotFound(CliError):
    code = ExitCode.NOT_FOUND


class AwsProblem(CliError):
    code = ExitCode.AWS


# ClientError codes that mean "the thing named is not there", by service.
_NOT_FOUND_CODES = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NotFound",
        "404",
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ExecutionDoesNotExist",
        "StateMachineDoesNotExist",
    }
)
_ACCESS_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch"})
_THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown"})


def client_error_problem(code: str, message: str, operation: str) -> CliError:
    """A ClientError's code, message and operation as one sentence with the right exit code."""
    if code in _NOT_FOUND_CODES:
        return NotFound(f"{operation}: not found ({message or code})")
    if code in _ACCESS_CODES:
        return AwsProblem(f"{operation}: access denied; your credentials may not call it ({message or code})")
    if code in _EXPIRED_CODES:
        return AwsProblem(f"{operation}: your AWS credentials are invalid or expired; sign in again")
    if code in _THROTTLE_CODES:
        return AwsProblem(f"{operation}: AWS is throttling requests; try again in a moment")
    if code in {"ValidationException", "ValidationError"}:
        return UsageProblem(f"{operation}: AWS refused the request: {message}")
    return AwsProblem(f"{operation} failed: {code}: {message}")


def describe_failure(exc: BaseException) -> CliError | None:
    """Any exception a command may raise, as a CliError; None for one that is a bug (let it show)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ShadowscaleError):
        from shadowscale.shared.errors import InvalidPolicy, InvalidShadowTestInput

        if isinstance(exc, InvalidPolicy):
            return UsageProblem(f"{exc} (nothing was applied)")
        if isinstance(exc, InvalidShadowTestInput):
            return UsageProblem(f"{exc} (nothing was started)")
        return CliError(str(exc))
    import botocore.exceptions as aws

    if isinstance(exc, aws.ClientError):
        error = exc.response.get("Error", {})
        return client_error_problem(str(error.get("Code", "")), str(error.get("Message", "")), exc.operation_name)
    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return AwsProblem(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(any values work against the local cloud)"
        )
    if isinstance(exc, aws.NoRegionError):
        return UsageProblem("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    if isinstance(exc, aws.EndpointConnectionError | aws.ConnectTimeoutError | aws.ReadTimeoutError):
        where = getattr(exc, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        return AwsProblem(f"cannot reach {where}: check the network, --endpoint-url, or that the local cloud runs")
    if isinstance(exc, aws.BotoCoreError):
        return AwsProblem(f"AWS SDK: {exc}")
    return None
