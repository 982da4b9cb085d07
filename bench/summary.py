"""One table for `make bench`: every figure each bench wrote, its target, PASS or MISS.

Each bench writes bench-output/<name>.json with a top-level "figures" list:
    {"figure": str, "value": number | bool, "unit": str, "target": str, "passed": bool | None, "detail": str}
("passed": None for a figure that is informative only). This script reads the benches named on its
command line, in that order, and prints them as one table. A bench whose file is missing or has no
figures (it crashed, or an older file was left from another run: `make bench` clears them first) is a
MISS of its own. Exit status: 0 when every figure with a target passed, 1 otherwise.

    python bench/summary.py capacity_bench diff_bench backfill_bench
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "bench-output"


def write_report(bench: str, sections: dict[str, Any], elapsed_seconds: float) -> dict[str, Any]:
    """Write bench-output/<bench>.json, the file main() reads: where and when it ran and how long it took, then
    the bench's own sections (its "figures" list among them). Returns the report as written."""
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "elapsed_seconds": round(elapsed_seconds, 1),
        **sections,
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"{bench}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


@dataclass(frozen=True)
class Figure:
    bench: str
    figure: str
    value: str
    target: str
    passed: bool | None
    detail: str

    @property
    def result(self) -> str:
        return {True: "PASS", False: "MISS", None: "info"}[self.passed]


def _shown(value: object, unit: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}{(' ' + unit) if unit else ''}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        digits = 3 if abs(value) < 10 else 1
        return f"{value:,.{digits}f}{(' ' + unit) if unit and unit != 'x' else unit}"
    return f"{value}{(' ' + unit) if unit else ''}"


def _problem(bench: str, why: str) -> Figure:
    return Figure(bench=bench, figure="(bench ran)", value="no", target="writes its figures", passed=False, detail=why)


def figures_of(bench: str, directory: Path | None = None) -> list[Figure]:
    path = (directory or OUTPUT) / f"{bench}.json"
    if not path.exists():
        return [_problem(bench, f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path} was not written")]
    try:
        document: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [_problem(bench, f"{path.name} is not JSON: {exc}")]
    raw = document.get("figures") if isinstance(document, dict) else None
    if not isinstance(raw, list) or not raw:
        return [_problem(bench, f"{path.name} has no 'figures' list")]
    figures: list[Figure] = []
    for entry in raw:
        passed = entry.get("passed")
        figures.append(
            Figure(
                bench=bench,
                figure=str(entry.get("figure", "?")),
                value=_shown(entry.get("value"), str(entry.get("unit", ""))),
                target=str(entry.get("target", "")),
                passed=passed if isinstance(passed, bool) else None,
                detail=str(entry.get("detail", "")),
            )
        )
    return figures


def table(figures: list[Figure]) -> str:
    headers = ["bench", "figure", "value", "target", "result"]
    rows = [[f.bench, f.figure, f.value, f.target, f.result] for f in figures]
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    right = {2}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="+", help="bench names: bench-output/<name>.json")
    arguments = parser.parse_args(argv)
    figures = [figure for bench in arguments.benches for figure in figures_of(bench)]
    print()
    print("make bench: every figure against its target")
    print(table(figures))
    missed = [f for f in figures if f.passed is False]
    for figure in missed:
        if figure.detail:
            print(f"  MISS {figure.bench} / {figure.figure}: {figure.detail}")
    judged = [f for f in figures if f.passed is not None]
    print(f"{len(judged) - len(missed)} of {len(judged)} figures with a target passed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
