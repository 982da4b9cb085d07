"""The complexity gate: every function and method of the layer's package, the local cloud and the functions
ranks C or better in radon's cyclomatic complexity (CC <= 20), closures included.

A function that may stay above it is listed in EXCEPTIONS as "module:qualname" with one sentence saying why;
the list is meant to stay empty, and an entry that is no longer needed fails the gate too, so it cannot
outlive its reason. Each area is its own case, so a failure names the folder that owns it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from radon.complexity import cc_rank
from radon.visitors import ComplexityVisitor, Function

from tests.static.deployed_template import REPO

PACKAGE = REPO / "layers" / "shadowscale" / "shadowscale"
LOCAL_CLOUD = REPO / "localcloud" / "shadowscale_localcloud"
FUNCTIONS = REPO / "functions"
WORST_RANK = "C"  # radon: A 1-5, B 6-10, C 11-20, D 21-30, E 31-40, F 41+

EXCEPTIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Block:
    name: str  # module:qualname
    complexity: int

    @property
    def rank(self) -> str:
        return str(cc_rank(self.complexity))


def areas() -> dict[str, list[Path]]:
    """Each capability (and shared, cli) of the package, its top-level modules, the local cloud, the functions."""
    found = {
        f"shadowscale/{folder.name}": sorted(folder.rglob("*.py"))
        for folder in sorted(PACKAGE.iterdir())
        if (folder / "__init__.py").is_file()
    }
    found["shadowscale/*.py"] = sorted(PACKAGE.glob("*.py"))
    found["localcloud"] = sorted(LOCAL_CLOUD.rglob("*.py"))
    found["functions"] = sorted(FUNCTIONS.glob("*/app.py"))
    return found


def module_name(path: Path) -> str:
    if path.is_relative_to(PACKAGE.parent):
        relative = path.relative_to(PACKAGE.parent)
    elif path.is_relative_to(LOCAL_CLOUD.parent):
        relative = path.relative_to(LOCAL_CLOUD.parent)
    else:
        relative = path.relative_to(REPO)
    return ".".join(relative.with_suffix("").parts)


def _function_blocks(function: Function, prefix: str) -> Iterator[tuple[str, int]]:
    qualname = f"{prefix}{function.name}"
    yield qualname, function.complexity
    for closure in function.closures:
        yield from _function_blocks(closure, f"{qualname}.<locals>.")


def blocks(path: Path) -> Iterator[Block]:
    module = module_name(path)
    visitor = ComplexityVisitor.from_code(path.read_text())
    pending = [(cls, "") for cls in visitor.classes]
    named = [pair for function in visitor.functions for pair in _function_blocks(function, "")]
    while pending:
        cls, prefix = pending.pop()
        qualname = f"{prefix}{cls.name}"
        named += [pair for method in cls.methods for pair in _function_blocks(method, f"{qualname}.")]
        pending += [(inner, f"{qualname}.") for inner in cls.inner_classes]
    for qualname, complexity in named:
        yield Block(f"{module}:{qualname}", complexity)


def too_complex(files: list[Path]) -> list[Block]:
    return [block for path in files for block in blocks(path) if block.rank > WORST_RANK]


@pytest.mark.parametrize("area", sorted(areas()))
def test_every_function_ranks_c_or_better(area: str) -> None:
    offenders = [block for block in too_complex(areas()[area]) if block.name not in EXCEPTIONS]
    assert not offenders, f"above rank {WORST_RANK} (CC > 20) in {area}; split them:\n" + "\n".join(
        f"  {block.name}: {block.rank} ({block.complexity})" for block in sorted(offenders, key=lambda b: b.name)
    )


def test_every_exception_is_still_needed_and_says_why() -> None:
    every = {block.name: block for files in areas().values() for path in files for block in blocks(path)}
    stale = []
    for name, reason in EXCEPTIONS.items():
        block = every.get(name)
        if block is None:
            stale.append(f"  {name}: no such function (renamed or gone)")
        elif block.rank <= WORST_RANK:
            stale.append(f"  {name}: now {block.rank} ({block.complexity}), the exception can go")
        if not reason.strip().endswith(".") or reason.count(". ") > 0:
            stale.append(f"  {name}: the justification must be one sentence")
    assert not stale, "EXCEPTIONS out of date:\n" + "\n".join(stale)


def test_the_gate_sees_what_it_guards() -> None:
    # A walk that found nothing would pass everything: methods, closures and handlers must be in it.
    names = {block.name for files in areas().values() for path in files for block in blocks(path)}
    assert "shadowscale.capacity.alarm_breach:measure_breach" in names
    assert "shadowscale.capacity.autopilot:Autopilot._attempt" in names
    assert "shadowscale.capacity.autopilot:Autopilot.on_schedule_tick.<locals>.decide" in names
    assert "functions.alarm_scaler.app:lambda_handler" in names
    assert "shadowscale_localcloud.platform:LocalCloud._deliver" in names
