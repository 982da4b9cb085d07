"""`make local-up`: every command of the README's local-mode section, as written, against the server mode,
with nothing set up beforehand but what the README says (`eval "$(make -s local-env)"`)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.e2e.local_server import REPO, RunningServer, local_server, run_shell

pytestmark = pytest.mark.skipif(
    not (REPO / ".tools" / "awscli" / "bin" / "aws").exists(), reason="make tools installs the AWS CLI"
)


# The heartbeat of examples/capacity_policy.yaml, the policy the server applies.
POLICY_RECONCILE_MINUTES: int = yaml.safe_load((REPO / "examples" / "capacity_policy.yaml").read_text())[
    "reconcileMinutes"
]


def wait_until(condition: Callable[[], bool], seconds: float = 90) -> None:
    """Poll `condition` (each poll is a README command, about a second) until it holds or the time is up."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the local cloud did not get there in time"
        time.sleep(0.5)


def readme_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- local-cloud-cli -->\n```bash\n(.*?)```\n<!-- /local-cloud-cli -->", text, re.DOTALL)
    assert block is not None, "README lost its local-cloud command block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with local_server("--speed", "60") as running:  # make local-up's default speed
        yield running


def _json_after(output: str) -> object:
    """The JSON document after the body invoke-endpoint wrote to /dev/stdout."""
    return json.loads(output[output.index("{") :])


def test_the_readme_commands_work_as_written_against_the_server(server: RunningServer) -> None:
    setup, *commands = readme_lines()
    assert setup == 'eval "$(make -s local-env)"'
    (
        describe,
        invoke,
        clock,
        count_before,
        set_alarm,
        count_after,
        start,
        describe_execution,
        list_capture,
        invoke_function,
    ) = commands

    def run(command: str) -> str:
        done: subprocess.CompletedProcess[str] = run_shell([setup, command], server.port)
        return done.stdout

    # GIVEN the server is up and a shell that ran only the README's eval
    # WHEN each README command runs THEN it does what the README says
    assert json.loads(run(describe))["EndpointStatus"] == "InService"

    answered = run(invoke)
    assert re.match(r"^0\.\d{6},[01]", answered), answered  # the simulated model's CSV answer
    metadata = _json_after(answered)
    assert metadata == {"ContentType": "text/csv", "InvokedProductionVariant": "primary"}

    told = json.loads(run(clock))
    assert set(told) == {"now", "speed", "stack"}
    assert told["speed"] == 60.0
    assert told["stack"] == "shadowscale-local"
    assert datetime.fromisoformat(told["now"]) >= datetime.now(UTC) - timedelta(minutes=2)

    # A person types the next commands a minute or more after the server came up: the policy's first
    # heartbeat (reconcileMinutes: 5 s of wall time at SPEED=60) has moved the count to the
    # schedule's minimum by then, and the update it started has ended. The test waits for the same.
    settled = datetime.fromisoformat(told["now"]) + timedelta(minutes=POLICY_RECONCILE_MINUTES + 1)
    wait_until(lambda: datetime.fromisoformat(json.loads(run(clock))["now"]) >= settled)
    wait_until(lambda: json.loads(run(describe))["EndpointStatus"] == "InService")
    before = int(run(count_before))
    run(set_alarm)
    # the applied policy scales out on the alarm: seen by the README's next command, once the event is delivered
    wait_until(lambda: int(run(count_after)) > before)

    assert json.loads(run(start))["executionArn"].endswith(":local-try-1")
    deadline = time.monotonic() + 120
    while (status := json.loads(run(describe_execution))["status"]) == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status == "SUCCEEDED"

    listed = run(list_capture)
    assert "/fraud-detector/primary/" in listed
    assert "/fraud-detector/shadow/" in listed  # the shadow variant's own folder
    assert ".jsonl" in listed

    # the Docker-free way to run one function on a sample event: the function's answer (its decision), then
    # the CLI's own response, one JSON document after the other on stdout
    decided = run(invoke_function)
    report, end = json.JSONDecoder().raw_decode(decided)
    assert report["endpoint"] == "fraud-detector"
    assert report["source_event"].startswith("tick:fraud-detector:business-hours.start:")
    assert report["outcome"] in {"no-change", "applied", "deferred"}
    assert json.loads(decided[end:]) == {"StatusCode": 200}


def test_the_server_prints_the_exports_make_local_env_prints(server: RunningServer) -> None:
    # GIVEN the banner WHEN make local-env runs for the same port THEN the same export lines
    emitted = run_shell(["make -s local-env"], server.port).stdout.splitlines()
    printed = [line for line in server.banner if line.startswith("export ")]
    assert emitted == printed
    assert server.exports["AWS_ENDPOINT_URL"] == f"http://localhost:{server.port}"
    assert server.exports["AWS_ACCESS_KEY_ID"]
    assert server.exports["AWS_SECRET_ACCESS_KEY"]
    assert server.exports["AWS_DEFAULT_REGION"] == "us-east-1"


def test_without_the_exports_the_aws_cli_has_no_credentials(server: RunningServer) -> None:
    # GIVEN a shell that skipped the eval WHEN a command runs THEN it fails as users saw (the eval matters)
    done = run_shell(
        [f"aws --endpoint-url http://localhost:{server.port} --region us-east-1 sagemaker list-endpoints"],
        server.port,
        check=False,
    )
    assert done.returncode != 0
    assert "Unable to locate credentials" in done.stderr


def test_the_start_is_quiet_and_fast(server: RunningServer) -> None:
    # moto's notes on skipped template resources are filtered; the banner says what is there
    assert "No Moto CloudFormation support" not in server.stderr()
    assert "not supported by moto's CloudFormation implementation" not in server.stderr()
    assert any(line.strip().startswith("policy examples/capacity_policy.yaml applied") for line in server.banner)
    assert server.ready_seconds < 60
