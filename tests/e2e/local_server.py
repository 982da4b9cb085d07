"""`make local-up` for the end-to-end tests: the server on a free port, started as a user would start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / ".tools" / "awscli" / "bin" / "aws"


@dataclass(frozen=True)
class RunningServer:
    port: str
    banner: list[str]  # what it printed up to "ready"
    ready_seconds: float
    stderr_file: Path

    def stderr(self) -> str:
        return self.stderr_file.read_text()

    @property
    def exports(self) -> dict[str, str]:
        """The `export KEY=value` lines the server printed for the user's shell."""
        found = {}
        for line in self.banner:
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                found[key] = value
        return found


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def user_environment() -> dict[str, str]:
    """The caller's environment without anything that would point AWS clients somewhere or sign for them:
    what a user has before following the README."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SHADOWSCALE_")) and key not in {"PORT", "SPEED"}
    }
    environment["AWS_PAGER"] = ""
    environment["AWS_CONFIG_FILE"] = os.devnull  # no profile of the user's to fall back on
    environment["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return environment


@contextmanager
def local_server(*arguments: str, timeout: float = 120.0) -> Iterator[RunningServer]:
    port = free_port()
    started = time.monotonic()
    errors = tempfile.NamedTemporaryFile(prefix="local-up-", suffix=".stderr", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowscale_localcloud.server", "--port", port, *arguments],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env={
            **user_environment(),
            "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "shadowscale"), str(REPO / "localcloud")]),
        },
    )
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if line.strip() == "ready":
            break
        assert time.monotonic() - started < timeout, "the local cloud did not come up"
    assert banner[-1:] == ["ready"], "\n".join(banner)
    try:
        yield RunningServer(port, banner, time.monotonic() - started, Path(errors.name))
    finally:
        process.terminate()
        process.wait(timeout=30)
        errors.close()
        Path(errors.name).unlink(missing_ok=True)


def run_shell(lines: Sequence[str], port: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """README lines run as written in one bash, with the AWS CLI from .tools first on PATH and PORT set
    (make local-env reads it) to the server's port: the only difference from the README's 5000."""
    environment = user_environment()
    environment["PATH"] = f"{AWS.parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["PORT"] = port
    script = "set -euo pipefail\n" + "\n".join(lines)
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, capture_output=True, text=True, env=environment, timeout=180, check=False
    )
    if check:
        assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done
