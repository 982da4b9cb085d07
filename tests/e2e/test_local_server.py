"""`make local-up`: the README's AWS CLI commands, as written, against the local cloud's server mode."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / ".tools" / "awscli" / "bin" / "aws"
README_PORT = "5000"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- local-cloud-cli -->\n```bash\n(.*?)```\n<!-- /local-cloud-cli -->", text, re.DOTALL)
    assert block is not None, "README lost its local-cloud command block"
    return [line for line in block.group(1).splitlines() if line.startswith("aws ")]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = str(_free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowscale_localcloud.server", "--port", port, "--speed", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "shadowscale"), str(REPO / "localcloud")]),
        },
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if line.strip() == "ready":
            break
        assert time.monotonic() < deadline, "the local cloud did not come up"
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def aws(command: str, port: str) -> str:
    """Run one README line as written (only the port differs), with the AWS CLI from .tools."""
    arguments = shlex.split(command.replace(f"localhost:{README_PORT}", f"localhost:{port}"))
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_PAGER": ""}
    environment.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run(
        [str(AWS), *arguments[1:]], cwd=REPO, capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return done.stdout


def test_the_readme_commands_work_against_the_server(server: str) -> None:
    # (at --speed 1 the alarm's next evaluation is a minute away: the state set by hand is still there)
    describe, set_alarm, start, describe_execution, list_capture = readme_commands()

    # GIVEN the server is up WHEN the README's commands run THEN each does what the README says
    assert json.loads(aws(describe, server))["EndpointStatus"] == "InService"

    aws(set_alarm, server)
    alarms = aws(
        f"aws --endpoint-url http://localhost:{server} --region us-east-1 cloudwatch describe-alarms "
        "--alarm-names fraud-detector-latency-high",
        server,
    )
    assert json.loads(alarms)["MetricAlarms"][0]["StateValue"] == "ALARM"

    assert json.loads(aws(start, server))["executionArn"].endswith(":local-try-1")
    deadline = time.monotonic() + 120
    while (status := json.loads(aws(describe_execution, server))["status"]) == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status == "SUCCEEDED"

    listed = aws(list_capture, server)
    assert "/fraud-detector/primary/" in listed
    assert "/fraud-detector/shadow/" in listed  # the shadow variant's own folder
    assert ".jsonl" in listed
