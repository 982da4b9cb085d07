"""Prints the fault matrix's size at the end of a run: cases tried, cases that held, by kind.

A plugin (registered from tests/conftest.py): under xdist only the controller prints, and it collects
nothing, so a conftest next to the matrix would never be loaded there. Each case's report carries the
`fault_matrix_case` property (record_property), which xdist sends back to the controller.
"""

from __future__ import annotations

from collections import Counter

import pytest


def kind_of(case_id: str) -> str:
    """The case's kind from its id (cases.MatrixCase.case_id): a fault kind, stall/rollback, abort, ..."""
    _, _, rest = case_id.partition("-")
    if "abort@" in rest:
        return "abort"
    if "@" in rest:
        return (
            "-".join(rest.rsplit("-", 2)[-2:])
            if rest.endswith(("-5m", "-90m", "-6h", "-3h"))
            else rest.rsplit("-", 1)[-1]
        )
    return rest


class FaultMatrixSummary:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = dict(report.user_properties).get("fault_matrix_case")
        if case is None:
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[str(case)] = report.outcome

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.outcomes:
            return
        held = sum(outcome == "passed" for outcome in self.outcomes.values())
        kinds: Counter[str] = Counter()
        kinds_held: Counter[str] = Counter()
        for case, outcome in self.outcomes.items():
            kind = kind_of(case)
            kinds[kind] += 1
            kinds_held[kind] += outcome == "passed"
        terminalreporter.section("fault matrix")
        terminalreporter.write_line(f"fault matrix: {len(self.outcomes)} cases tried, {held} held")
        for kind in sorted(kinds):
            terminalreporter.write_line(f"  {kind:<28} {kinds_held[kind]:>4} / {kinds[kind]:<4} held")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FaultMatrixSummary(), "fault-matrix-summary")
