"""The baseline the fault matrix is generated from: each scenario run once without faults, recording every
(service, operation, caller, state machine, state) the stack called, the order of its UpdateEndpoint
calls, and the states the shadow test's execution passed through.

Run in a subprocess of its own (`python -m tests.integration.fault_matrix.baseline OUT.json`) and cached
under .pytest_cache, keyed by a hash of everything the stack runs (state machines, functions, the
layer, the template): xdist workers must collect the same cases, and each would otherwise pay for it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.fault_matrix.harness import SCENARIOS, Case, matrix_cloud

REPO = Path(__file__).resolve().parents[3]
SOURCES = (
    "statemachine",
    "functions",
    "layers/shadowscale/shadowscale",
    "localcloud/shadowscale_localcloud",
    "template.yaml",
    "tests/integration/fault_matrix",
)
CACHE = REPO / ".pytest_cache" / "fault-matrix"


def source_hash() -> str:
    digest = hashlib.sha256()
    for source in SOURCES:
        root = REPO / source
        files = (
            [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json", ".yaml"))
        )
        for path in files:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def record() -> dict[str, Any]:
    """Run each scenario without faults and say what it called, where."""
    recorded: dict[str, Any] = {}
    with matrix_cloud("fault-baseline") as matrix:
        for scenario in SCENARIOS:
            case = Case(matrix, case_id=f"baseline-{scenario}", scenario=scenario)
            run = case.deploy()
            matrix.faults.calls.clear()
            case.start()
            broken = case.finish()
            calls = [call for call in matrix.faults.calls if case.applies(call)]
            counts: dict[str, int] = {}
            sites: list[dict[str, Any]] = []
            for call in calls:
                key = json.dumps(call.site.as_dict(), sort_keys=True)
                if key not in counts:
                    sites.append(call.site.as_dict())
                counts[key] = counts.get(key, 0) + 1
            for site in sites:
                site["calls"] = counts[json.dumps({k: site[k] for k in sorted(site)}, sort_keys=True)]
            history = case.cloud.history(run.execution_arn)
            entered = [
                (event["stateEnteredEventDetails"]["name"], event["type"])
                for event in history
                if event["type"].endswith("StateEntered")
            ]
            report, _ = case.report(run)
            recorded[scenario] = {
                "sites": sites,
                "updates": [
                    call.site.state
                    for call in calls
                    if (call.site.service, call.site.operation) == ("sagemaker", "UpdateEndpoint")
                ],
                "states": list(dict.fromkeys(name for name, _ in entered)),
                "waitStates": list(dict.fromkeys(name for name, kind in entered if kind == "WaitStateEntered")),
                "taskStates": list(dict.fromkeys(name for name, kind in entered if kind == "TaskStateEntered")),
                "outcome": (report or {}).get("outcome"),
                "broken": broken,
            }
    return recorded


def load(python: str = sys.executable) -> dict[str, Any]:
    """The baseline for the current sources: from the cache, or recorded once (other workers wait)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"baseline-{source_hash()}.json"
    with (CACHE / "baseline.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers/shadowscale"), str(REPO / "localcloud")]),
            }
            subprocess.run(
                [python, "-m", "tests.integration.fault_matrix.baseline", str(path)], check=True, cwd=REPO, env=env
            )
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def main(out: str) -> None:
    import tests.conftest  # noqa: F401  (the test-wide environment: region, Powertools switches)

    recorded = record()
    Path(out + ".tmp").write_text(json.dumps(recorded, indent=1))
    Path(out + ".tmp").replace(out)


if __name__ == "__main__":
    main(sys.argv[1])
