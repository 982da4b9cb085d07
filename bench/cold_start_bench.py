"""Cold-start benchmark: initialisation of every Lambda function in template.yaml against a boto3 floor.

Each sample is a fresh interpreter (`sys.executable -c ...`) timed from inside with time.perf_counter, so
interpreter start-up is excluded. The floor is `import boto3` plus `boto3.client("sagemaker")`; a function
sample is `import app` (the function's directory and layers/shadowscale first on sys.path, cwd = the
function directory) plus `app.entrypoints()`, which builds the composition root the handler calls on its
first invocation. The functions are every AWS::Serverless::Function of template.yaml (their CodeUri).
Children get the template's Globals environment (dummy resource names, parameter defaults) merged with the
function's own Environment, region, dummy credentials, PATH/HOME and the variables the Lambda runtime sets
(LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, its MemorySize, ...); tracing stays on, as in Lambda.

One discarded run of each warms the .pyc caches, then floor and function runs alternate (floor, alarm,
floor, scheduled, ...) for --rounds rounds; each function is compared with the floor runs alternated with
it (ratio of medians, target <= 1.5x), so a machine loaded by other work moves both sides alike. The
slowest function is run once more under `-X importtime` to show where its time goes.

Results are printed and written to bench-output/cold_start_bench.json (its "figures" feed bench/summary.py).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from bench.capacity_bench import (  # noqa: E402  (the template helpers are the capacity bench's)
    _CfnLoader,
    offline_aws_environment,
    table,
    template_globals_environment,
)
from bench.summary import write_report  # noqa: E402

LAYER = REPO / "layers" / "shadowscale"
FUNCTIONS = REPO / "functions"
OUTPUT = REPO / "bench-output" / "cold_start_bench.json"

ROUNDS = 9
TARGET_RATIO = 1.5
CHILD_TIMEOUT_SECONDS = 60

FLOOR_CODE = """\
import time
t0, c0 = time.perf_counter(), time.process_time()
import boto3
boto3.client("sagemaker", region_name="us-east-1")
t1, c1 = time.perf_counter(), time.process_time()
print("BENCH", t1 - t0, t1 - t0, c1 - c0)
"""

FUNCTION_CODE = """\
import sys, time
sys.path[:0] = [{function_dir!r}, {layer_dir!r}]
sys.stderr.write("BENCH-START\\n"); sys.stderr.flush()
t0, c0 = time.perf_counter(), time.process_time()
import app
t1 = time.perf_counter()
app.entrypoints()
t2, c2 = time.perf_counter(), time.process_time()
sys.stderr.write("BENCH-END\\n"); sys.stderr.flush()
print("BENCH", t2 - t0, t1 - t0, c2 - c0)
"""

IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")


@dataclass(frozen=True)
class Function:
    """One AWS::Serverless::Function: its code directory and what the template sets for it alone."""

    name: str
    directory: Path
    memory_mb: int
    environment: dict[str, str]


def template_functions() -> list[Function]:
    """Every function in template.yaml, in template order; a function without code here is an error."""
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    default_memory = int(template["Globals"]["Function"].get("MemorySize", 128))
    functions: list[Function] = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        directory = REPO / str(properties["CodeUri"])
        if not (directory / "app.py").is_file():
            raise ValueError(f"template function {properties['CodeUri']}: no app.py")
        own = properties.get("Environment", {}).get("Variables", {})
        if any(isinstance(value, dict) for value in own.values()):
            raise ValueError(f"{properties['CodeUri']}: per-function intrinsics are not understood by the bench")
        functions.append(
            Function(
                name=directory.name,
                directory=directory,
                memory_mb=int(properties.get("MemorySize", default_memory)),
                environment={name: str(value) for name, value in own.items()},
            )
        )
    return functions


@dataclass
class Sample:
    total_ms: float
    import_ms: float
    cpu_ms: float  # the child's process time: what contention from other processes moves least


@dataclass
class ColdStart:
    function: str
    samples: list[Sample] = field(default_factory=list)
    floor_samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(sample.total_ms for sample in self.samples)

    @property
    def floor_median(self) -> float:
        return statistics.median(sample.total_ms for sample in self.floor_samples)

    @property
    def ratio(self) -> float:
        return self.median / self.floor_median

    @property
    def cpu_ratio(self) -> float:
        mine = statistics.median(sample.cpu_ms for sample in self.samples)
        return mine / statistics.median(sample.cpu_ms for sample in self.floor_samples)

    def summary(self) -> dict[str, object]:
        function_ms = [round(sample.total_ms, 2) for sample in self.samples]
        floor_ms = [round(sample.total_ms, 2) for sample in self.floor_samples]
        return {
            "function_ms": {"median": round(self.median, 2), "min": min(function_ms), "samples": function_ms},
            "import_app_ms": {
                "median": round(statistics.median(sample.import_ms for sample in self.samples), 2),
                "samples": [round(sample.import_ms, 2) for sample in self.samples],
            },
            "floor_ms": {"median": round(self.floor_median, 2), "min": min(floor_ms), "samples": floor_ms},
            "ratio_of_medians": round(self.ratio, 3),
            "cpu_ratio_of_medians": round(self.cpu_ratio, 3),
            "target_ratio": TARGET_RATIO,
            "pass": self.ratio <= TARGET_RATIO,
        }


def child_environment(function: Function) -> dict[str, str]:
    """What a child sees: template Globals and the function's own variables, offline AWS settings, and the
    variables the Lambda runtime sets.

    LAMBDA_TASK_ROOT matters: without it the X-Ray SDK believes it runs outside Lambda and, at import,
    builds a centralised sampler with two botocore sessions and X-Ray clients, which Lambda never does.
    """
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    for name in ("LANG", "LC_ALL", "TMPDIR"):
        if name in os.environ:
            environment[name] = os.environ[name]
    environment.update(template_globals_environment())
    environment.update(function.environment)
    environment.update(offline_aws_environment())
    environment.update(
        {
            "LAMBDA_TASK_ROOT": str(function.directory),
            "AWS_LAMBDA_FUNCTION_NAME": f"shadowscale-bench-{function.name.replace('_', '-')}",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        }
    )
    # Deliberately absent: POWERTOOLS_TRACE_DISABLED (Lambda runs the tracer), PYTHONDONTWRITEBYTECODE.
    return environment


def run_child(code: str, cwd: Path, environment: Mapping[str, str], *, importtime: bool = False) -> tuple[Sample, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    done = subprocess.run(
        command, cwd=cwd, env=dict(environment), capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}) in {cwd}:\n{done.stderr[-4000:]}")
    marks = [line.split() for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if not marks:
        raise RuntimeError(f"child printed no timing in {cwd}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    _, total, imported, cpu = marks[-1]
    return Sample(float(total) * 1000, float(imported) * 1000, float(cpu) * 1000), done.stderr


def function_code(function: Function) -> str:
    return FUNCTION_CODE.format(function_dir=str(function.directory), layer_dir=str(LAYER))


@dataclass
class Imported:
    module: str
    self_ms: float
    cumulative_ms: float
    depth: int
    parent: str | None = None

    @property
    def package(self) -> str:
        return self.module.split(".")[0]


def parse_importtime(stderr: str) -> list[Imported]:
    """`-X importtime` lines between the child's start and end marks (the timed region only), with parents.

    Python prints a module when its import finishes, so its children come just before it, one level deeper.
    """
    rows: list[Imported] = []
    pending: dict[int, list[Imported]] = {}
    inside = False
    for line in stderr.splitlines():
        if line == "BENCH-START":
            inside = True
        elif line == "BENCH-END":
            break
        elif inside and (found := IMPORTTIME_LINE.match(line)):
            self_us, cumulative_us, indent, module = found.groups()
            row = Imported(module.strip(), int(self_us) / 1000, int(cumulative_us) / 1000, max(0, len(indent) - 1) // 2)
            for child in pending.pop(row.depth + 1, []):
                child.parent = row.module
            pending.setdefault(row.depth, []).append(row)
            rows.append(row)
    return rows


def deployed_packages() -> set[str]:
    """Top-level import names a deployed function can import: the stdlib, the layer's closure, the runtime's boto3."""
    requirements = (LAYER / "requirements.txt").read_text().splitlines()
    layer = {line.split("==")[0].strip().lower().replace("-", "_") for line in requirements if "==" in line}
    # What the Lambda Python runtime ships (boto3 and its closure), plus the function and the shared package.
    runtime = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six", "app", "shadowscale"}
    return set(sys.stdlib_module_names) | layer | runtime


def importtime_breakdown(function: Function, environment: Mapping[str, str]) -> dict[str, object]:
    traced, stderr = run_child(function_code(function), function.directory, environment, importtime=True)
    imports = parse_importtime(stderr)
    by_name = {row.module: row for row in imports}
    deployed = deployed_packages()
    # Outermost imports of packages a deployed function would not have (dev dependencies found by patch_all, ...).
    foreign = [
        row
        for row in imports
        if row.package not in deployed
        and (row.parent is None or by_name[row.parent].package in deployed)
        and not row.package.startswith("_sysconfigdata")
    ]
    return {
        "function": function.name,
        "run_total_ms_under_importtime": round(traced.total_ms, 2),
        "import_app_ms_under_importtime": round(traced.import_ms, 2),
        "top_by_cumulative": [
            asdict(row) for row in sorted(imports, key=lambda row: row.cumulative_ms, reverse=True)[:12]
        ],
        "top_by_self": [asdict(row) for row in sorted(imports, key=lambda row: row.self_ms, reverse=True)[:10]],
        "not_in_lambda_deployment": {
            "modules": [
                {"module": row.module, "inside": row.parent, "cumulative_ms": row.cumulative_ms} for row in foreign
            ],
            "cumulative_ms": round(sum(row.cumulative_ms for row in foreign), 2),
        },
    }


def measure(functions: list[Function], rounds: int) -> dict[str, Any]:
    environments = {function.name: child_environment(function) for function in functions}
    results = {function.name: ColdStart(function.name) for function in functions}
    # Warm the .pyc caches (and the OS page cache): one discarded run of each.
    run_child(FLOOR_CODE, functions[0].directory, environments[functions[0].name])
    for function in functions:
        run_child(function_code(function), function.directory, environments[function.name])
    for _ in range(rounds):
        for function in functions:
            environment = environments[function.name]
            floor, _ = run_child(FLOOR_CODE, function.directory, environment)
            measured, _ = run_child(function_code(function), function.directory, environment)
            results[function.name].floor_samples.append(floor)
            results[function.name].samples.append(measured)

    slowest = max(functions, key=lambda function: results[function.name].ratio)
    all_floors = [sample.total_ms for result in results.values() for sample in result.floor_samples]
    return {
        "rounds": rounds,
        "floor_definition": 'fresh process: import boto3 + boto3.client("sagemaker", region_name="us-east-1")',
        "function_definition": "fresh process: import app + app.entrypoints() (the function's composition root)",
        "child_environment": {
            name: value for name, value in environments[slowest.name].items() if name not in {"PATH", "HOME"}
        },
        "floor_all_runs_ms": {"median": round(statistics.median(all_floors), 2), "min": round(min(all_floors), 2)},
        "functions": {name: result.summary() for name, result in results.items()},
        "importtime": importtime_breakdown(slowest, environments[slowest.name]),
    }


def figures(report: Mapping[str, Any]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, result in report["functions"].items():
        rows.append(
            {
                "figure": f"cold start {name}",
                "value": result["ratio_of_medians"],
                "unit": "x",
                "target": f"<= {TARGET_RATIO}x the boto3 floor",
                "passed": result["pass"],
                "detail": (
                    f"median {result['function_ms']['median']:.1f} ms vs floor {result['floor_ms']['median']:.1f} ms "
                    f"over {report['rounds']} alternating rounds"
                ),
            }
        )
    rows.append(
        {
            "figure": "cold start floor (import boto3 + SageMaker client)",
            "value": report["floor_all_runs_ms"]["median"],
            "unit": "ms",
            "target": "",
            "passed": None,
            "detail": "median of every floor run",
        }
    )
    return rows


def print_report(report: Mapping[str, Any]) -> None:
    print(f"Cold start: {report['rounds']} alternating rounds, fresh process per sample, start-up excluded")
    print(f"   floor    = {report['floor_definition']}")
    print(f"   function = {report['function_definition']}")
    print("   children: template Globals env (dummy resources), tracer ON, Lambda runtime vars (LAMBDA_TASK_ROOT, ...)")
    print()
    rows = [
        [
            name,
            f"{result['function_ms']['median']:.1f}",
            f"{result['function_ms']['min']:.1f}",
            f"{result['import_app_ms']['median']:.1f}",
            f"{result['floor_ms']['median']:.1f}",
            f"{result['floor_ms']['min']:.1f}",
            f"{result['ratio_of_medians']:.2f}x",
            f"{result['cpu_ratio_of_medians']:.2f}x",
            f"<= {TARGET_RATIO}x",
            "PASS" if result["pass"] else "MISS",
        ]
        for name, result in report["functions"].items()
    ]
    headers = [
        "function",
        "median ms",
        "min ms",
        "of which import app",
        "floor median",
        "floor min",
        "ratio",
        "cpu ratio",
    ]
    print(table([*headers, "target", "result"], rows, right={1, 2, 3, 4, 5, 6, 7}))
    floor_all = report["floor_all_runs_ms"]
    print(f"   floor over all runs: median {floor_all['median']:.1f} ms, min {floor_all['min']:.1f} ms")
    print("   ratio = function median / median of the floor runs alternated with that function (wall time);")
    print("   cpu ratio = the same with the children's process time, which other load on the machine moves less")
    print()
    traced = report["importtime"]
    print(
        f"   Where {traced['function']}'s time goes (-X importtime, one run, informative): the run took "
        f"{traced['run_total_ms_under_importtime']:.1f} ms with importtime's overhead;"
    )
    print(
        f"   `import app` {traced['import_app_ms_under_importtime']:.1f} ms of it, the rest is app.entrypoints() "
        "building clients and utilities. Top imports"
    )
    for key, title in (("top_by_cumulative", "cumulative"), ("top_by_self", "self (own module body)")):
        table_rows = [
            [row["module"], str(row["parent"] or "-"), f"{row['cumulative_ms']:.1f}", f"{row['self_ms']:.1f}"]
            for row in traced[key]
        ]
        print(f"   by {title}:")
        print(table(["module", "inside (enclosing import)", "cumulative ms", "self ms"], table_rows, right={2, 3}))
    foreign = traced["not_in_lambda_deployment"]
    print(
        "   of which imports of packages a deployed function does not have (not stdlib, layer requirements.txt "
        f"or the runtime's boto3): {foreign['cumulative_ms']:.1f} ms"
    )
    for row in foreign["modules"]:
        if row["cumulative_ms"] >= 0.5:
            print(f"     {row['module']:<24} {row['cumulative_ms']:6.1f} ms  inside {row['inside']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating rounds (default {ROUNDS})")
    parser.add_argument("--only", nargs="*", default=None, help="measure only these functions (while iterating)")
    arguments = parser.parse_args(argv)
    functions = template_functions()
    if arguments.only:
        unknown = set(arguments.only) - {function.name for function in functions}
        if unknown:
            parser.error(f"not a template function: {', '.join(sorted(unknown))}")
        functions = [function for function in functions if function.name in arguments.only]
    started = time.perf_counter()
    cold_start = measure(functions, arguments.rounds)
    elapsed = time.perf_counter() - started
    report = write_report("cold_start_bench", {"cold_start": cold_start, "figures": figures(cold_start)}, elapsed)
    print(f"shadowscale cold-start bench - Python {report['python']}, {report['platform']}")
    print()
    print_report(cold_start)
    print()
    print(f"wrote {OUTPUT.relative_to(REPO)} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
