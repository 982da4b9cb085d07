"""The shadowscale command line: capacity policies, shadow tests, response diffs, the local cloud's clock.

Commands import what they need when they run, so `--help`, `--version` and shell completion load no AWS
SDK and no pydantic.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from shadowscale.cli.errors import EXIT_CODES_HELP, ExitCode, describe_failure

STACK_ENV = "SHADOWSCALE_STACK"
F = Callable[..., Any]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def aws_options(command: F) -> F:
    """--stack-name, --region and --endpoint-url, accepted after any AWS command's arguments."""
    command = click.option(
        "--endpoint-url",
        default=None,
        help="AWS endpoint, e.g. http://localhost:5000 for the local cloud (boto3 also reads AWS_ENDPOINT_URL).",
    )(command)
    command = click.option("--region", default=None, help="AWS region (default: your AWS configuration's).")(command)
    return click.option(
        "--stack-name",
        "--stack",
        "stack_name",
        envvar=STACK_ENV,
        default=None,
        help=f"The deployed stack (or ${STACK_ENV}). Default: the one stack in the region with shadowscale's outputs.",
    )(command)


def output_option(command: F) -> F:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: machine-readable and stable; text: for people.",
    )(command)


def _session(args: argparse.Namespace) -> Any:  # noqa: ANN401  (boto3 sessions are untyped)
    import boto3

    return boto3.Session(region_name=args.region) if args.region else boto3.Session()


def client(args: argparse.Namespace, service: str) -> Any:  # noqa: ANN401
    from shadowscale.shared.clients import SDK_CONFIG

    return _session(args).client(service, config=SDK_CONFIG, endpoint_url=args.endpoint_url)


def _args(**params: Any) -> argparse.Namespace:  # noqa: ANN401
    # The command classes read their options as attributes; a namespace keeps them independent of click.
    return argparse.Namespace(**params)


@click.group(context_settings=CONTEXT, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="shadowscale", prog_name="shadowscale")
def cli() -> None:
    """Day-2 operations for SageMaker endpoints: capacity policies, shadow tests, response diffs.

    \b
    Shell completion (bash; use zsh or fish likewise):
      eval "$(_SHADOWSCALE_COMPLETE=bash_source shadowscale)"
    """


# --- policy ---------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES_HELP)
def policy() -> None:
    """Capacity policies: validate, apply, show, status, delete."""


def _policy(**params: Any) -> Any:  # noqa: ANN401
    from shadowscale.cli.policy import PolicyCommands

    return PolicyCommands(_args(**params), client)


@policy.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option
def policy_validate(**params: Any) -> int:  # noqa: ANN401
    """Check a policy file offline."""
    return int(_policy(**params).validate())


@policy.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the plan and the capacity it leads to; change nothing.")
@click.option("--allow-missing-endpoint", is_flag=True, help="Store the policy although the endpoint is not there.")
@aws_options
def policy_apply(**params: Any) -> int:  # noqa: ANN401
    """Store a policy and create or remove the schedules and alarm rule it implies."""
    return int(_policy(**params).apply())


@policy.command("show")
@click.argument("endpoint")
@aws_options
@output_option
def policy_show(**params: Any) -> int:  # noqa: ANN401
    """Print the stored policy."""
    return int(_policy(**params).show())


@policy.command("status")
@click.argument("endpoint")
@aws_options
@output_option
def policy_status(**params: Any) -> int:  # noqa: ANN401
    """The endpoint now: counts, weights, windows, alarm states, lease."""
    return int(_policy(**params).status())


@policy.command("delete")
@click.argument("endpoint")
@aws_options
def policy_delete(**params: Any) -> int:  # noqa: ANN401
    """Delete a policy and everything it implies."""
    return int(_policy(**params).delete())


# --- shadow ---------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES_HELP)
def shadow() -> None:
    """Shadow tests: start, follow, approve, reject, abort, recover, status, report."""


def _shadow(**params: Any) -> Any:  # noqa: ANN401
    from shadowscale.cli.shadow import ShadowCommands

    return ShadowCommands(_args(**params), client)


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def poll_option(default: float) -> Callable[[F], F]:
    return click.option(
        "--poll-seconds", type=float, default=default, show_default=True, help="How often to look again."
    )


EXECUTION = click.argument("execution", metavar="EXECUTION")  # an execution ARN or name


@shadow.command("start")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", help="Execution name (default: <endpoint>-<UTC timestamp>).")
@click.option("--follow", is_flag=True, help="Show progress until it ends.")
@poll_option(10.0)
@aws_options
def shadow_start(**params: Any) -> int:  # noqa: ANN401
    """Start a shadow test from a JSON input file (checked first: the input, the endpoint, the model)."""
    return int(_shadow(**params).start())


@shadow.command("follow")
@EXECUTION
@poll_option(10.0)
@aws_options
def shadow_follow(**params: Any) -> int:  # noqa: ANN401
    """Show a test's progress until it ends: step, sampling, bake, gates, what it waits for."""
    return int(_shadow(**params).follow())


def _decision_command(name: str, approved: bool) -> None:
    @shadow.command(name, help=f"{name.capitalize()} a test waiting for approval.")
    @EXECUTION
    @click.option("--by", default=_whoami, show_default="your user name", help="Who decides.")
    @click.option("--comment", default=None, help="Why; kept in the report.")
    @aws_options
    def decide(**params: Any) -> int:  # noqa: ANN401
        return int(_shadow(**params).decide(approved))


_decision_command("approve", True)
_decision_command("reject", False)


@shadow.command("abort")
@EXECUTION
@click.option("--by", default=_whoami, show_default="your user name")
@click.option("--cause", default=None, help="Why; the execution's abort cause (default: aborted by <by>).")
@aws_options
def shadow_abort(**params: Any) -> int:  # noqa: ANN401
    """Stop a running test; the endpoint returns to its snapshot."""
    return int(_shadow(**params).abort())


@shadow.command("recover")
@EXECUTION
@click.option("--wait", is_flag=True, help="Wait for the recovery to end.")
@poll_option(10.0)
@aws_options
def shadow_recover(**params: Any) -> int:  # noqa: ANN401
    """Restore (or finish promoting) an ended test's endpoint and write its report."""
    return int(_shadow(**params).recover())


@shadow.command("status")
@EXECUTION
@aws_options
@output_option
def shadow_status(**params: Any) -> int:  # noqa: ANN401
    """A test's status, and how to approve or reject it if it waits for that."""
    return int(_shadow(**params).status())


@shadow.command("report")
@EXECUTION
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --output json.")
@click.option("--open", "open_page", is_flag=True, help="Save the HTML report (see --out) and open it.")
@click.option(
    "--out",
    "--output-dir",
    "output_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for --open (default: the user cache folder, never the current one).",
)
@aws_options
@output_option
def shadow_report(as_json: bool, **params: Any) -> int:  # noqa: ANN401
    """Print a test's report (or --open its HTML page)."""
    if as_json:
        params["output"] = "json"
    return int(_shadow(**params).report())


# --- diffs ----------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES_HELP)
def diffs() -> None:
    """Response diffs of shadow tests: show, backfill."""


def _diffs(**params: Any) -> Any:  # noqa: ANN401
    from shadowscale.cli.diffs import DiffCommands

    return DiffCommands(_args(**params), client)


@diffs.command("show")
@click.argument("test_id", metavar="TEST_ID")
@click.option("--backfill", metavar="RUN", help="A backfill run's summary instead of the live one.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --output json.")
@aws_options
@output_option
def diffs_show(as_json: bool, **params: Any) -> int:  # noqa: ANN401
    """A test's response-diff summary (TEST_ID: the shadow test's execution name)."""
    if as_json:
        params["output"] = "json"
    return int(_diffs(**params).show())


@diffs.command("backfill")
@click.argument("test_id", metavar="TEST_ID")
@click.option("--run", "run_name", help="The run's name (default: run-<UTC timestamp>).")
@click.option("--since", help="Only capture written at or after this ISO time.")
@click.option("--until", help="Only capture written before this ISO time.")
@click.option("--comparison", type=click.Path(dir_okay=False), help="A JSON file of comparison settings.")
@click.option("--wait", is_flag=True, help="Wait for the run and print its summary.")
@poll_option(5.0)
@aws_options
def diffs_backfill(**params: Any) -> int:  # noqa: ANN401
    """Diff a test's capture again (a Distributed Map over S3)."""
    return int(_diffs(**params).backfill())


# --- the local cloud ------------------------------------------------------------------------------


@cli.command("clock", context_settings=CONTEXT)
@click.option(
    "--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None, help="The local cloud, e.g. http://localhost:5000."
)
@output_option
def clock(endpoint_url: str | None, output: str) -> int:
    """The local cloud's simulated time (it runs ahead of wall time)."""
    from shadowscale.cli.local_clock import show_clock

    return show_clock(endpoint_url, output)


# --- running ----------------------------------------------------------------------------------------


def _quiet_stdout() -> None:
    """The reader went away (`| head`): send whatever is still buffered nowhere (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture): nothing will be flushed to a closed pipe


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code is documented in --help (errors.ExitCode)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="shadowscale", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return ExitCode.FAILED  # as click ends a command whose reader went away: quietly, with 1
    except SystemExit as exc:  # click's own quiet exit after a closed pipe
        return exc.code if isinstance(exc.code, int) else ExitCode.FAILED
    except Exception as exc:
        problem = describe_failure(exc)
        if problem is None:
            raise  # a bug: its traceback is what a report needs
        print(f"error: {problem}", file=sys.stderr)
        return problem.code
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
