"""`make bench`'s one table: every figure, its target, PASS/MISS, and the exit status that follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import summary


def _write(directory: Path, bench: str, figures: object) -> None:
    (directory / f"{bench}.json").write_text(json.dumps({"figures": figures}))


@pytest.fixture
def output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(summary, "OUTPUT", tmp_path)
    return tmp_path


def test_all_figures_passing_exit_zero_and_every_figure_is_a_row(
    output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two benches whose figures all pass, one of them informative only
    _write(output, "a", [{"figure": "speedup", "value": 12.5, "unit": "x", "target": ">= 10x", "passed": True}])
    _write(
        output,
        "b",
        [
            {"figure": "peak memory", "value": 512, "unit": "MB", "target": "<= 1769 MB", "passed": True},
            {"figure": "objects", "value": 268, "unit": "", "target": "", "passed": None},
        ],
    )
    # WHEN the summary runs over both
    status = summary.main(["a", "b"])
    printed = capsys.readouterr().out
    # THEN it exits 0 and prints each figure with its value, target and result
    assert status == 0
    assert "12.5x" in printed
    assert ">= 10x" in printed
    assert "512 MB" in printed
    assert "<= 1769 MB" in printed
    assert printed.count("PASS") == 2
    assert "info" in printed
    assert "2 of 2 figures with a target passed" in printed


def test_a_missed_figure_fails_the_run_and_says_why(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a bench with one missed figure
    _write(
        output,
        "a",
        [{"figure": "cold start", "value": 1.86, "unit": "x", "target": "<= 1.5x", "passed": False, "detail": "alarm"}],
    )
    # WHEN the summary runs
    status = summary.main(["a"])
    printed = capsys.readouterr().out
    # THEN it exits 1 and names the miss
    assert status == 1
    assert "MISS a / cold start: alarm" in printed


def test_a_bench_that_wrote_nothing_is_a_miss(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN one bench wrote its figures and another wrote no file, a third a file without figures
    _write(output, "a", [{"figure": "x", "value": True, "unit": "", "target": "exact", "passed": True}])
    (output / "c.json").write_text(json.dumps({"results": []}))
    # WHEN the summary runs over all three
    status = summary.main(["a", "b", "c"])
    printed = capsys.readouterr().out
    # THEN the silent benches are misses of their own and the run fails
    assert status == 1
    assert "b.json was not written" in printed
    assert "c.json has no 'figures' list" in printed
