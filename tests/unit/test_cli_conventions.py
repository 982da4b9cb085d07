"""The command line's conventions, offline: version, help, did-you-mean, exit codes, errors, closed pipes."""

from __future__ import annotations

import errno
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from shadowscale.cli.errors import ExitCode, describe_failure
from shadowscale.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def aws_error(code: str, message: str = "message", operation: str = "DescribeEndpoint") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_given_version_flag_when_run_then_the_installed_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"shadowscale, version {version('shadowscale')}"


def test_given_help_when_run_then_exit_codes_and_completion_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "_SHADOWSCALE_COMPLETE=bash_source shadowscale" in out
    for line in ("0  done", "2  usage error", "3  not found", "4  AWS error"):
        assert line in out


def test_given_a_misspelt_command_when_run_then_exit_2_and_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shadow", "aprove", "x"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "No such command 'aprove'" in err
    assert "Did you mean" in err
    assert "'approve'" in err


def test_given_help_and_version_when_run_then_no_sdk_or_pydantic_is_imported() -> None:
    # WHEN --help and --version run in a fresh interpreter THEN neither boto3 nor pydantic was loaded
    probe = (
        "import sys; from shadowscale.cli.main import main; main(['--help']); main(['--version']);"
        "print(sorted(m for m in ('boto3', 'botocore', 'pydantic', 'yaml') if m in sys.modules), file=sys.stderr)"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert ran.stderr.strip() == "[]"


def test_given_the_shell_completion_variable_when_run_then_a_bash_script_is_printed() -> None:
    env = {"_SHADOWSCALE_COMPLETE": "bash_source", "PATH": "/usr/bin:/bin"}
    probe = "from shadowscale.cli.main import main; main([])"
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert "_shadowscale_completion()" in ran.stdout


@pytest.mark.parametrize(
    ("code", "exit_code", "words"),
    [
        ("NoSuchKey", ExitCode.NOT_FOUND, "GetObject: not found"),
        ("ResourceNotFoundException", ExitCode.NOT_FOUND, "not found"),
        ("ExecutionDoesNotExist", ExitCode.NOT_FOUND, "not found"),
        ("AccessDeniedException", ExitCode.AWS, "access denied"),
        ("ExpiredTokenException", ExitCode.AWS, "invalid or expired"),
        ("ThrottlingException", ExitCode.AWS, "throttling"),
        ("ValidationException", ExitCode.USAGE, "AWS refused the request: message"),
        ("InternalFailure", ExitCode.AWS, "GetObject failed: InternalFailure: message"),
    ],
)
def test_given_an_aws_error_code_when_described_then_a_sentence_and_its_exit_code(
    code: str, exit_code: ExitCode, words: str
) -> None:
    problem = describe_failure(aws_error(code, operation="GetObject"))
    assert problem is not None
    assert problem.code == exit_code
    assert words in str(problem)
    assert "An error occurred" not in str(problem)  # botocore's own wording never shows


def test_given_sdk_failures_when_described_then_they_name_the_fix() -> None:
    missing = describe_failure(NoCredentialsError())
    unreachable = describe_failure(EndpointConnectionError(endpoint_url="http://localhost:5999"))
    assert missing is not None
    assert unreachable is not None
    assert (missing.code, unreachable.code) == (ExitCode.AWS, ExitCode.AWS)
    assert "no AWS credentials found" in str(missing)
    assert "cannot reach http://localhost:5999" in str(unreachable)


def test_given_a_bug_when_described_then_it_is_not_hidden() -> None:
    assert describe_failure(KeyError("x")) is None


def test_given_a_command_failing_with_an_aws_error_when_run_then_one_line_on_stderr_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli import policy

    def refuse(self: object) -> int:
        raise aws_error("AccessDeniedException", "not allowed", "DescribeStacks")

    monkeypatch.setattr(policy.PolicyCommands, "show", refuse)
    assert main(["policy", "show", "fraud-detector"]) == ExitCode.AWS
    err = capsys.readouterr().err
    assert err == "error: DescribeStacks: access denied; your credentials may not call it (not allowed)\n"


def test_given_the_reader_goes_away_when_printing_then_it_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli import policy

    def closed_pipe(self: object) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(policy.PolicyCommands, "validate", closed_pipe)
    # the output was cut: 1, as click ends such a command, but without a word on stderr
    assert main(["policy", "validate", "any.yaml"]) == ExitCode.FAILED
    assert capsys.readouterr().err == ""


def test_given_a_real_closed_pipe_when_much_is_printed_then_no_broken_pipe_traceback(tmp_path: Path) -> None:
    # GIVEN a command whose output is far larger than a pipe's buffer, read by `head -c 10`
    probe = (
        "from shadowscale.cli import policy; from shadowscale.cli.main import main;"
        "policy.PolicyCommands.validate = lambda self: print('x' * 10_000_000) or 0;"
        "raise SystemExit(main(['policy', 'validate', 'any.yaml']))"
    )
    ran = subprocess.run(
        f'{sys.executable} -c "{probe}" | head -c 10; exit ${{PIPESTATUS[0]}}',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    # THEN the reader got its bytes, and the command ended quietly (1: its output was cut)
    assert ran.stdout == "x" * 10
    assert ran.stderr == ""
    assert ran.returncode == ExitCode.FAILED


def test_given_an_invalid_policy_when_validated_then_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: shadowscale/v1\nendpoint: e\nvariants:\n  - name: primary\n    minInstnces: 1\n")
    assert main(["policy", "validate", str(path)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "variants.0.minInstnces: unknown field; did you mean `minInstances`?" in err
    assert "at least 1 item" not in err
    assert "(nothing was applied)" in err
