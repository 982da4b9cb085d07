"""`make local-up`: the local cloud as a server on 127.0.0.1, so real clients work unchanged.

The stack is deployed, examples/capacity_policy.yaml is applied to a simulated production endpoint that
serves traffic, exactly as in the embedded mode; a moto server on the same process serves the same
backends over HTTP, so the AWS CLI, boto3 (`--endpoint-url` / `AWS_ENDPOINT_URL`) and
`shadowscale --endpoint-url` all see one cloud. InvokeEndpoint answers from the simulated endpoint, or
from your own model (`--model fraud-detector-v2=mypkg.mymodel:predict`). The clock runs `--speed`
times faster than wall time; at `--speed 1` it is wall time. GET /_shadowscale/clock tells the time.

    python -m shadowscale_localcloud.server --port 5000 --speed 60
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shadowscale_localcloud.demo import PROCESS_ENVIRONMENT, repo_root

if TYPE_CHECKING:
    from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud

ENDPOINT = "fraud-detector"
CANDIDATE_MODEL = "fraud-detector-v2"
STACK_NAME = "shadowscale-local"
REGION = "us-east-1"
CLOCK_PATH = "/_shadowscale/clock"
POLICY_FILE = Path("examples") / "capacity_policy.yaml"
# Any key works with moto; these are printed for clients that refuse to run without credentials.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# At wall speed the clock starts this far back, so the seconds seeding spends on it stay behind wall time.
WALL_SPEED_HEADROOM = timedelta(seconds=30)


def environment_lines(port: int) -> list[str]:
    """What `make local-env` prints and local-up repeats: `eval "$(make -s local-env)"` sets them."""
    values = {
        "AWS_ENDPOINT_URL": f"http://localhost:{port}",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **DUMMY_CREDENTIALS,
        "SHADOWSCALE_STACK": STACK_NAME,
    }
    return [f"export {key}={value}" for key, value in values.items()]


# --- quiet start ----------------------------------------------------------------------------------


class _MotoTemplateNotices(logging.Filter):
    """moto's notes on template resources its CloudFormation skips: the local cloud creates those itself
    (stack.deploy_stack), so the notes say nothing a user can act on. Everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No Moto CloudFormation support for")


def silence_moto_template_notices() -> None:
    logging.getLogger("moto").addFilter(_MotoTemplateNotices())
    logging.getLogger("moto.cloudformation.parsing").addFilter(_MotoTemplateNotices())
    warnings.filterwarnings(
        "ignore",
        message=r"Tried to parse AWS::\S+ but it's not supported by moto's CloudFormation implementation",
        category=UserWarning,
        module=r"moto\.cloudformation\.parsing",
    )
    # Powertools warns when an invocation published no metric (a heartbeat that changed nothing); its docs
    # suggest this filter for functions that may publish none. On AWS it is one log line; here it is noise.
    warnings.filterwarnings("ignore", message=r"No application metrics to publish", category=UserWarning)


# --- the endpoint and its policy ------------------------------------------------------------------------


def seed_endpoint(cloud: LocalCloud, root: Path) -> list[str]:
    """A one-variant production endpoint with a candidate model registered, ready for a shadow test, and
    the example capacity policy applied to it; what was applied, for the start-up banner."""
    from shadowscale_localcloud.resources import create_one_variant_endpoint

    create_one_variant_endpoint(cloud.client("sagemaker"), ENDPOINT, CANDIDATE_MODEL, cloud.advance)
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{ENDPOINT}-latency-high",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        ExtendedStatistic="p90",
        Period=60,
        EvaluationPeriods=3,
        Threshold=100_000.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    applied = apply_example_policy(cloud, root, POLICY_FILE)
    from shadowscale_localcloud.simulated_endpoint import TrafficPattern

    cloud.simulate(ENDPOINT, TrafficPattern.flat(20))  # traffic, metrics and data capture
    return applied


def apply_example_policy(cloud: LocalCloud, root: Path, path: Path) -> list[str]:
    """What `shadowscale policy apply` does once it has checked the endpoint: store the policy and wire its
    schedules and alarm rule. Variants the endpoint lacks (the example's `candidate`: the endpoint keeps one
    production variant so a shadow test can run) are left out rather than stored to do nothing."""
    from shadowscale.capacity.policy_store import PolicyRepository
    from shadowscale.cli.policy import load_policy_file
    from shadowscale.cli.policy_wiring import PolicyWiring, StackOutputs

    policy = load_policy_file(root / path)
    described = cloud.client("sagemaker").describe_endpoint(EndpointName=policy.endpoint)
    present = {variant["VariantName"] for variant in described["ProductionVariants"]}
    kept = tuple(variant for variant in policy.variants if variant.name in present)
    left_out = [variant.name for variant in policy.variants if variant.name not in present]
    policy = policy.model_copy(update={"variants": kept})
    outputs = StackOutputs.from_stack(cloud.client("cloudformation"), STACK_NAME)
    PolicyRepository(cloud.client("dynamodb"), outputs.PolicyTableName).put(policy)
    plan = PolicyWiring(outputs, cloud.client("scheduler"), cloud.client("events")).apply(policy)
    lines = [f"policy {path.as_posix()} applied to {policy.endpoint} (variants {', '.join(sorted(present))})"]
    if left_out:
        lines.append(f"  left out: variant(s) {', '.join(left_out)}, which the endpoint does not have")
    return lines + [f"  {line}" for line in plan.lines()]


# --- the clock ----------------------------------------------------------------------------------------


@dataclass
class ClockPace:
    """Simulated time as a function of wall time: origin + (wall - wall origin) * speed.

    At speed 1 the clock is wall time and must never run ahead of it: a state-machine Wait or a retry
    then takes its real duration (a 10-minute bake takes 10 minutes) instead of passing at once."""

    speed: float
    wall_origin: datetime
    simulated_origin: datetime

    @property
    def wall_speed(self) -> bool:
        return self.speed == 1.0

    def target(self, wall: datetime) -> datetime:
        if self.wall_speed:
            return wall
        return self.simulated_origin + (wall - self.wall_origin) * self.speed


def start_clock(speed: float, wall: datetime) -> tuple[AcceleratedClock, ClockPace]:
    from shadowscale_localcloud.platform import AcceleratedClock  # after the environment is set: moto reads it

    class WallPacedClock(AcceleratedClock):
        """A retry's sleep takes real time and moves the clock no further than wall time."""

        def sleep(self, seconds: float) -> None:
            time.sleep(seconds)
            self.current = max(self.current, min(self.current + timedelta(seconds=seconds), datetime.now(UTC)))

    if speed == 1.0:
        return WallPacedClock(wall - WALL_SPEED_HEADROOM), ClockPace(speed, wall, wall)
    start = wall.replace(second=0, microsecond=0)
    return AcceleratedClock(start), ClockPace(speed, wall, start)


def paced_advance(cloud: LocalCloud, pace: ClockPace) -> Callable[[float], None]:
    """A Wait state's advance at wall speed: wait in wall time until the clock may get there."""

    def advance(seconds: float) -> None:
        target = cloud.clock.now() + timedelta(seconds=seconds)
        while (ahead := (target - pace.target(datetime.now(UTC))).total_seconds()) > 0:
            time.sleep(min(ahead, 1.0))
        cloud.advance_to(target)

    return advance


class ClockReading(BaseModel):
    """GET /_shadowscale/clock: the simulated time, for clients that must not assume wall time."""

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime  # ISO-8601, UTC ("Z")
    speed: float  # simulated seconds per wall second
    stack: str


def clock_reading(cloud: LocalCloud, pace: ClockPace) -> ClockReading:
    return ClockReading(now=cloud.clock.now().astimezone(UTC), speed=pace.speed, stack=STACK_NAME)


# --- HTTP --------------------------------------------------------------------------------------------------


class LocalServer:
    """moto's WSGI application on 127.0.0.1 with the clock at CLOCK_PATH; request lines logged if asked."""

    def __init__(
        self, port: int, clock: Callable[[], ClockReading], *, log_requests: bool, host: str = "127.0.0.1"
    ) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        moto_app = DomainDispatcherApplication(create_backend_app)

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == CLOCK_PATH and environ.get("REQUEST_METHOD") == "GET":
                body = clock().model_dump_json().encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            answered: Iterable[bytes] = moto_app(environ, start_response)
            return answered

        class RequestHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                if log_requests:
                    super().log_request(code, size)

        self._server = make_server(host, port, application, threaded=True, request_handler=RequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


# --- the process ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    port: int = 5000
    speed: float = 60.0
    models: tuple[str, ...] = ()  # "model-name=module:function"
    log_requests: bool = False


def serve(options: ServerOptions, root: Path, ready: threading.Event | None = None) -> None:
    began = time.monotonic()
    os.environ.update({key: value for key, value in PROCESS_ENVIRONMENT.items() if key not in os.environ})
    silence_moto_template_notices()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # user models such as examples.local_model import from the repository
    from shadowscale_localcloud.endpoint_invocations import parse_model_assignments
    from shadowscale_localcloud.platform import LocalCloud

    models: dict[str, Any] = dict(parse_model_assignments(options.models))
    stopping = threading.Event()
    clock, pace = start_clock(options.speed, datetime.now(UTC))
    with LocalCloud(root=root, clock=clock, stack_name=STACK_NAME, endpoint_update_seconds=30, models=models) as cloud:
        if pace.wall_speed and cloud.stepfunctions is not None:
            cloud.stepfunctions.advance = paced_advance(cloud, pace)
        applied = seed_endpoint(cloud, root)
        server = LocalServer(options.port, lambda: clock_reading(cloud, pace), log_requests=options.log_requests)
        server.start()
        cloud.advance_to(max(cloud.clock.now(), pace.target(datetime.now(UTC))))  # at wall speed: catch up now
        _banner(cloud, options, pace, applied, time.monotonic() - began)
        if ready is not None:
            ready.set()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            while not stopping.wait(1.0 if not pace.wall_speed else 0.25):
                target = pace.target(datetime.now(UTC))
                if target > cloud.clock.now():
                    cloud.advance_to(target)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def _banner(cloud: LocalCloud, options: ServerOptions, pace: ClockPace, applied: list[str], seconds: float) -> None:
    def say(line: str) -> None:
        print(line, flush=True)

    say(f"local cloud up on http://localhost:{options.port} (stack {STACK_NAME}, stage dev) in {seconds:.1f} s")
    for key, value in sorted(cloud.outputs.items()):
        say(f"  {key} = {value}")
    say(f"  endpoint {ENDPOINT} (variant primary), candidate model {CANDIDATE_MODEL}")
    for model_name in sorted(cloud.models):
        say(f"  model {model_name}: answered by {cloud.models[model_name]}")
    for line in applied:
        say(f"  {line}")
    speed = "wall time" if pace.wall_speed else f"{pace.speed:g}x wall time"
    say(f"  clock: {speed}, now {clock_reading(cloud, pace).now:%Y-%m-%dT%H:%M:%SZ} (GET {CLOCK_PATH})")
    say('# for your shell: eval "$(make -s local-env)", or paste:')
    for line in environment_lines(options.port):
        say(line)
    say("ready")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shadowscale_localcloud.server", description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per wall-clock second; 1 = wall time (Wait states then take their real time)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL=MODULE:FUNCTION",
        help="answer InvokeEndpoint for SageMaker model MODEL with FUNCTION(body, content_type) (repeatable; "
        "also SHADOWSCALE_LOCAL_MODELS=a=m:f,b=n:g)",
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        default=os.environ.get("LOG_REQUESTS", "") not in ("", "0"),
        help="log every HTTP request (also LOG_REQUESTS=1)",
    )
    parser.add_argument("--print-env", action="store_true", help="print the export lines for the port and exit")
    args = parser.parse_args(argv)
    if args.print_env:
        print("\n".join(environment_lines(args.port)))
        return 0
    if args.speed <= 0:
        parser.error("--speed must be positive")
    serve(ServerOptions(args.port, args.speed, tuple(args.model), args.log_requests), repo_root())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
