"""Capacity functions benchmark: AWS API calls per steady-state scaling decision.

Cold start of every function moved to bench/cold_start_bench.py (it imports this module's template and
offline-environment helpers).

In this process, on moto (`mock_aws`, no network): the three tables, both queues and a
SageMaker endpoint `fraud-detector` (variants primary and candidate, one instance each), the policy from
tests/factories.py stored through PolicyRepository (primary's cooldowns set to 0, so that back-to-back
scale-outs are not held by a cooldown). Every botocore API call of every client and session is recorded by
wrapping BaseClient._make_api_call. The real handlers run with a fake LambdaContext and
POWERTOOLS_TRACE_DISABLED=1 (and POWERTOOLS_LOG_LEVEL=WARNING, EMF output swallowed, to keep the table
readable). Each scenario makes one uncounted warm-up decision, then MEASURED_RUNS counted ones; the
endpoint is reset to one instance per variant, uncounted, between runs.

Results are printed and written to bench-output/capacity_bench.json. Run with `make bench`.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.client import BaseClient

REPO = Path(__file__).resolve().parent.parent
LAYER = REPO / "layers" / "shadowscale"
FUNCTIONS = REPO / "functions"
EVENTS = REPO / "events"
OUTPUT = REPO / "bench-output" / "capacity_bench.json"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.summary import write_report  # noqa: E402

HANDLERS = ("alarm_scaler", "scheduled_scaler", "deferred_scaler")
ROUNDS = 9
MEASURED_RUNS = 3
TARGET_RATIO = 1.3
TARGET_CONTROL_PLANE_CALLS = 3
CONTROL_PLANE = frozenset({"sagemaker", "application-autoscaling"})
CHILD_TIMEOUT_SECONDS = 60
REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "fraud-detector"
VARIANTS = (("primary", 0.9), ("candidate", 0.1))

FLOOR_CODE = """\
import time
t0 = time.perf_counter()
import boto3
boto3.client("sagemaker", region_name="us-east-1")
t1 = time.perf_counter()
print("BENCH", t1 - t0, t1 - t0)
"""

HANDLER_CODE = """\
import sys, time
sys.path[:0] = [{function_dir!r}, {layer_dir!r}]
sys.stderr.write("BENCH-START\\n"); sys.stderr.flush()
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
app.entrypoints()
t2 = time.perf_counter()
sys.stderr.write("BENCH-END\\n"); sys.stderr.flush()
print("BENCH", t2 - t0, t1 - t0)
"""

Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]
MakeApiCall = Callable[["BaseClient", str, Mapping[str, Any]], dict[str, Any]]

IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")


# ------------------------------------------------------------------------------------------------ shared


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None, indent: int = 3) -> str:
    """A plain fixed-width table, indented; columns in `right` are right-aligned."""
    right = right or set()
    widths = [
        max(len(headers[i]), *(len(row[i]) for row in rows)) if rows else len(headers[i]) for i in range(len(headers))
    ]

    def line(cells: list[str]) -> str:
        return (
            " " * indent
            + "  ".join(
                cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)
            ).rstrip()
        )

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)])


class _CfnLoader(yaml.SafeLoader):
    """Reads template.yaml: every CloudFormation short-form tag (!Ref, !Sub, ...) becomes {"Ref"|"Fn::X": value}."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, object]:
    value: object
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def template_globals_environment() -> dict[str, str]:
    """template.yaml Globals environment, with dummies for resources and parameter defaults for parameters."""
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    variables: dict[str, object] = template["Globals"]["Function"]["Environment"]["Variables"]
    environment: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, dict):
            if set(value) != {"Ref"}:
                raise ValueError(f"Globals variable {name}: only !Ref is understood by the bench, got {value}")
            ref = str(value["Ref"])
            if ref in template.get("Parameters", {}):
                environment[name] = str(template["Parameters"][ref]["Default"])
                continue
            kind = template["Resources"][ref]["Type"]
            if kind == "AWS::DynamoDB::Table":
                environment[name] = f"shadowscale-bench-{ref}"
            elif kind == "AWS::SQS::Queue":
                environment[name] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shadowscale-bench-{ref}"
            elif kind == "AWS::S3::Bucket":
                environment[name] = f"shadowscale-bench-{ref.lower()}-{ACCOUNT}-{REGION}"
            elif kind == "AWS::SNS::Topic":
                environment[name] = f"arn:aws:sns:{REGION}:{ACCOUNT}:shadowscale-bench-{ref}"
            else:
                raise ValueError(f"Globals variable {name}: no dummy for a {kind}")
        else:
            environment[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return environment


def offline_aws_environment() -> dict[str, str]:
    return {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # No shared config or credential files, no instance metadata: nothing can leave the machine.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# ------------------------------------------------------------------------------------------------ part 2


@dataclass
class CallRecorder:
    calls: list[tuple[str, str]] = field(default_factory=list)
    active: bool = False

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, str]]]:
        self.calls = []
        self.active = True
        try:
            yield self.calls
        finally:
            self.active = False


@contextlib.contextmanager
def api_calls_recorded(recorder: CallRecorder) -> Iterator[None]:
    """Wrap BaseClient._make_api_call: every client of every session (Powertools' own included) goes through it."""
    from botocore.client import BaseClient

    original = cast(MakeApiCall, BaseClient.__dict__["_make_api_call"])

    def counting(client: BaseClient, operation_name: str, api_params: Mapping[str, Any]) -> dict[str, Any]:
        if recorder.active:
            recorder.calls.append((client.meta.service_model.service_name, operation_name))
        return original(client, operation_name, api_params)

    setattr(BaseClient, "_make_api_call", counting)  # noqa: B010  (mypy refuses assignment to a method)
    try:
        yield
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


@contextlib.contextmanager
def environment_patched(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fake_context(function_name: str) -> LambdaContext:
    from shadowscale_localcloud.lambda_runtime import LambdaContext as LocalContext

    return cast("LambdaContext", LocalContext(function_name=f"shadowscale-bench-{function_name}"))


def load_handler(function: str) -> Handler:
    spec = importlib.util.spec_from_file_location(f"bench_{function}_app", FUNCTIONS / function / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(Handler, module.lambda_handler)


def invoke(handler: Handler, function: str, event: dict[str, Any]) -> dict[str, Any]:
    # Metrics flush EMF to stdout on every invocation: swallowed here so the table stays readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return handler(event, fake_context(function))


class Events:
    """Fresh sample events from events/: every alarm transition a minute after the previous one."""

    def __init__(self) -> None:
        self._alarm = json.loads((EVENTS / "alarm_eventbridge_alarm.json").read_text())
        self._tick = json.loads((EVENTS / "schedule_tick.json").read_text())
        self._moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def alarm(self) -> dict[str, Any]:
        self._moment += timedelta(minutes=1)
        event: dict[str, Any] = copy.deepcopy(self._alarm)
        event["id"] = str(uuid.uuid4())
        event["time"] = self._moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        event["detail"]["state"]["timestamp"] = self._moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        return event

    def tick(self) -> dict[str, Any]:
        event: dict[str, Any] = copy.deepcopy(self._tick)
        event["scheduledTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event["executionId"] = str(uuid.uuid4())
        return event


def bench_policy_document() -> dict[str, Any]:
    from tests.factories import policy_document

    document = policy_document()
    variants: list[dict[str, Any]] = copy.deepcopy(document["variants"])
    for variant in variants:
        if variant["name"] == "primary":
            variant["scaleOutCooldownSeconds"] = 0
            variant["scaleInCooldownSeconds"] = 0
    return policy_document(variants=variants)


def create_resources() -> dict[str, str]:
    """Tables, queues, endpoint and policy on moto (the local cloud's shared setup); returns their environment."""
    import boto3
    from shadowscale.capacity.policy import parse_policy
    from shadowscale.capacity.policy_store import PolicyRepository
    from shadowscale_localcloud import resources

    made = resources.create_capacity_resources(boto3, prefix="shadowscale-bench")
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    resources.create_endpoint(sagemaker, ENDPOINT, {name: (1, weight) for name, weight in VARIANTS})
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    PolicyRepository(dynamodb, made.policy_table).put(parse_policy(bench_policy_document()))
    return made.environment()


def reset_endpoint() -> None:
    """Back to one instance per variant (uncounted), so every alarm run is a real scale-out."""
    import boto3

    boto3.client("sagemaker", region_name=REGION).update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": name, "DesiredInstanceCount": 1, "DesiredWeight": weight} for name, weight in VARIANTS
        ],
    )


@dataclass
class Run:
    calls: list[tuple[str, str]]
    outcome: str
    duplicate: bool

    @property
    def control_plane(self) -> int:
        return sum(1 for service, _ in self.calls if service in CONTROL_PLANE)

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "duplicate": self.duplicate,
            "control_plane_calls": self.control_plane,
            "total_calls": len(self.calls),
            "calls": [f"{service}:{operation}" for service, operation in self.calls],
        }


def to_run(calls: list[tuple[str, str]], response: dict[str, Any]) -> Run:
    notes = response.get("notes") or []
    return Run(
        calls=list(calls),
        outcome=str(response.get("outcome")),
        # Either form the entry points have used: outcome "duplicate", or the first outcome with a note.
        duplicate=response.get("outcome") == "duplicate" or any("duplicate delivery" in str(note) for note in notes),
    )


@dataclass
class Scenario:
    key: str
    title: str
    expected: str
    warm_up: Run
    runs: list[Run]

    @property
    def as_expected(self) -> bool:
        return all(self.matches(run) for run in self.runs)

    def matches(self, run: Run) -> bool:
        if self.expected == "duplicate":
            return run.duplicate
        return run.outcome == self.expected and not run.duplicate

    def summary(self) -> dict[str, object]:
        worst_control = max(run.control_plane for run in self.runs)
        return {
            "title": self.title,
            "expected_outcome": self.expected,
            "as_expected": self.as_expected,
            "control_plane_calls_max": worst_control,
            "total_calls_max": max(len(run.calls) for run in self.runs),
            "target_control_plane_calls": TARGET_CONTROL_PLANE_CALLS,
            "pass": worst_control <= TARGET_CONTROL_PLANE_CALLS,
            "by_operation": dict(Counter(f"{s}:{o}" for s, o in max(self.runs, key=lambda r: len(r.calls)).calls)),
            "warm_up": self.warm_up.as_dict(),
            "runs": [run.as_dict() for run in self.runs],
        }


def run_scenarios(recorder: CallRecorder) -> list[Scenario]:
    alarm = load_handler("alarm_scaler")
    scheduled = load_handler("scheduled_scaler")
    events = Events()

    def counted(handler: Handler, function: str, event: dict[str, Any]) -> Run:
        with recorder.recording() as calls:
            response = invoke(handler, function, event)
        return to_run(calls, response)

    # (a) alarm ALARM transition that scales out: a new transition each run, endpoint reset between runs.
    warm = counted(alarm, "alarm_scaler", events.alarm())
    scale_out: list[Run] = []
    for _ in range(MEASURED_RUNS):
        reset_endpoint()
        scale_out.append(counted(alarm, "alarm_scaler", events.alarm()))
    reset_endpoint()
    a = Scenario("a", "alarm ALARM transition, scales primary out", "applied", warm, scale_out)

    # (b) schedule ticks: the warm-up one may pass a schedule edge, the counted ones change nothing.
    warm = counted(scheduled, "scheduled_scaler", events.tick())
    ticks = [counted(scheduled, "scheduled_scaler", events.tick()) for _ in range(MEASURED_RUNS)]
    b = Scenario("b", "schedule tick that changes nothing", "no-change", warm, ticks)

    # (c) the same alarm event delivered twice: the first delivery (uncounted) decides, the second is counted.
    reset_endpoint()
    event = events.alarm()
    warm = counted(alarm, "alarm_scaler", event)
    duplicates = [counted(alarm, "alarm_scaler", event)]
    for _ in range(MEASURED_RUNS - 1):
        reset_endpoint()
        event = events.alarm()
        counted(alarm, "alarm_scaler", event)
        duplicates.append(counted(alarm, "alarm_scaler", event))
    c = Scenario("c", "duplicate delivery of the same alarm event", "duplicate", warm, duplicates)
    return [a, b, c]


def measure_api_calls() -> dict[str, object]:
    for path in (str(REPO), str(LAYER)):
        if path not in sys.path:
            sys.path.insert(0, path)
    environment = {
        **template_globals_environment(),
        **offline_aws_environment(),
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "ShadowscaleBench",
    }
    recorder = CallRecorder()
    with environment_patched(environment):
        # moto first: it hooks botocore for every client created after it is imported.
        from moto import mock_aws

        with mock_aws(), api_calls_recorded(recorder):
            from shadowscale_localcloud.resources import apply_environment

            apply_environment(create_resources())
            scenarios = run_scenarios(recorder)
    return {
        "target_control_plane_calls": TARGET_CONTROL_PLANE_CALLS,
        "control_plane_services": sorted(CONTROL_PLANE),
        "measured_runs_per_scenario": MEASURED_RUNS,
        "policy": "tests/factories.py policy_document() with primary's scale-out/scale-in cooldowns set to 0",
        "scenarios": {scenario.key: scenario.summary() for scenario in scenarios},
    }


def print_api_calls(report: Mapping[str, Any]) -> None:
    print(
        f"2. AWS API calls per steady-state decision (moto, in-process; warm container; "
        f"{report['measured_runs_per_scenario']} counted runs per scenario after one warm-up)"
    )
    print(f"   policy: {report['policy']}")
    for key, scenario in report["scenarios"].items():
        print()
        runs = scenario["runs"]
        identical = all(run["calls"] == runs[0]["calls"] for run in runs)
        outcomes = ", ".join(
            sorted(
                {
                    run["outcome"] + (" (duplicate)" if run["duplicate"] and run["outcome"] != "duplicate" else "")
                    for run in runs
                }
            )
        )
        print(f"   ({key}) {scenario['title']}")
        print(
            f"       outcome: {outcomes}; expected {scenario['expected_outcome']}: "
            f"{'yes' if scenario['as_expected'] else 'NO - the count below is not of the intended path'}; "
            f"runs {'identical' if identical else 'DIFFER (worst run shown)'}"
        )
        rows = [
            [operation.split(":")[0], operation.split(":")[1], str(count)]
            for operation, count in sorted(scenario["by_operation"].items())
        ]
        print(table(["service", "operation", "calls"], rows, right={2}, indent=7))
        if not identical:
            for number, run in enumerate(runs, 1):
                print(f"       run {number}: {run['total_calls']} calls: {', '.join(run['calls'])}")
        print(
            f"       control-plane calls (sagemaker + application-autoscaling): {scenario['control_plane_calls_max']}"
            f"   target <= {report['target_control_plane_calls']}   {'PASS' if scenario['pass'] else 'MISS'}"
        )
        print(f"       total AWS API calls, DynamoDB and SQS included:       {scenario['total_calls_max']}")
        warm = scenario["warm_up"]
        print(
            f"       (uncounted warm-up decision: outcome {warm['outcome']}, {warm['total_calls']} calls: "
            f"{', '.join(warm['calls'])})"
        )


# ------------------------------------------------------------------------------------------------ main


def figures(report: Mapping[str, Any]) -> list[dict[str, object]]:
    """One figure per scenario: its worst control-plane call count, passed only on the intended path."""
    return [
        {
            "figure": f"control-plane calls ({key}) {scenario['title']}",
            "value": scenario["control_plane_calls_max"],
            "unit": "calls",
            "target": f"<= {TARGET_CONTROL_PLANE_CALLS}",
            "passed": bool(scenario["pass"] and scenario["as_expected"]),
            "detail": (
                f"expected outcome {scenario['expected_outcome']}: "
                f"{'reached' if scenario['as_expected'] else 'NOT reached, the count is not of the intended path'}"
            ),
        }
        for key, scenario in report["scenarios"].items()
    ]


def main() -> int:
    started = time.perf_counter()
    api_calls = measure_api_calls()
    elapsed = time.perf_counter() - started
    report = write_report("capacity_bench", {"api_calls": api_calls, "figures": figures(api_calls)}, elapsed)

    print(f"shadowscale capacity bench - Python {report['python']}, {report['platform']}")
    print()
    print_api_calls(api_calls)
    print()
    print(f"wrote {OUTPUT.relative_to(REPO)} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
