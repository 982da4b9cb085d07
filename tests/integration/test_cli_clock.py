"""`shadowscale clock` against a tiny HTTP stub of the local server's GET /_shadowscale/clock."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from shadowscale.cli.errors import ExitCode
from shadowscale.cli.main import main

SIMULATED = datetime.now(UTC) + timedelta(hours=3)


class ClockStub(BaseHTTPRequestHandler):
    body = json.dumps({"now": SIMULATED.isoformat(), "speed": 60.0, "stack": "shadowscale-local"}).encode()

    def do_GET(self) -> None:
        if self.path != "/_shadowscale/clock":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class NotOurs(ClockStub):
    body = b"<html>an ordinary web server</html>"


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_cloud() -> Iterator[str]:
    yield from serve(ClockStub)


@pytest.fixture
def other_server() -> Iterator[str]:
    yield from serve(NotOurs)


@pytest.fixture(autouse=True)
def no_ambient_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_given_a_local_cloud_when_asked_the_time_then_its_simulated_time_and_speed(
    local_cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "--endpoint-url", local_cloud]) == 0
    out = capsys.readouterr().out
    assert out.startswith(SIMULATED.isoformat())
    assert "x60 wall speed" in out
    assert "ahead of wall time" in out


def test_given_json_output_when_asked_then_a_stable_document(
    local_cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "--endpoint-url", local_cloud, "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "now": SIMULATED.isoformat(),
        "speed": 60.0,
        "stack": "shadowscale-local",
    }


def test_given_aws_endpoint_url_in_the_environment_when_asked_then_it_is_used(
    local_cloud: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_cloud)
    assert main(["clock"]) == 0
    assert SIMULATED.isoformat() in capsys.readouterr().out


def test_given_no_endpoint_url_when_asked_then_usage_error_saying_how_to_point_at_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["clock"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: not pointed at a local cloud: pass --endpoint-url")


def test_given_a_server_that_is_not_a_local_cloud_when_asked_then_not_found(
    other_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "--endpoint-url", other_server]) == ExitCode.NOT_FOUND
    assert "did not answer with the local cloud's clock" in capsys.readouterr().err


def test_given_nothing_listening_when_asked_then_an_unreachable_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["clock", "--endpoint-url", f"http://127.0.0.1:{port}"]) == ExitCode.AWS
    assert f"cannot reach http://127.0.0.1:{port}" in capsys.readouterr().err
