"""The fidelity ledger (docs/local-cloud-fidelity.md) stays honest: every imitated behaviour cites its AWS
source or is marked undocumented and tested both ways, every test it names exists, and every gap-fill
module of the local cloud is in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEDGER = REPO / "docs" / "local-cloud-fidelity.md"
LOCAL_CLOUD = REPO / "localcloud" / "shadowscale_localcloud"
# Not gap-fill: the demo scripts, the server entry point, shared names.
NOT_IMITATIONS = {"__init__", "demo", "demo_shadow", "demo_together", "server", "resources", "lambda_runtime"}


def _rows() -> list[list[str]]:
    rows = []
    for line in LEDGER.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("Behaviour", "---"):
            rows.append(cells)
    return rows


def _test_names() -> set[str]:
    return {
        match.group(1)
        for path in (REPO / "tests").rglob("test_*.py")
        for match in re.finditer(r"^\s*def (test_\w+)", path.read_text(), re.MULTILINE)
    }


def test_every_behaviour_cites_aws_or_says_it_is_undocumented_and_tested_both_ways() -> None:
    rows = _rows()
    assert len(rows) >= 20
    for behaviour, _module, source, _tests in rows:
        cited = "docs.aws.amazon.com" in source or "botocore" in source
        undocumented = "Undocumented: both behaviours tested" in source
        assert cited or undocumented, f"{behaviour!r} names no AWS source"


def test_every_test_the_ledger_names_exists() -> None:
    known = _test_names()
    for behaviour, _module, _source, tests in _rows():
        named = [name.strip() for name in tests.split(",") if name.strip()]
        assert named, f"{behaviour!r} names no test"
        missing = [name for name in named if name not in known]
        assert not missing, f"{behaviour!r}: no such test {missing}"


def test_every_gap_fill_module_of_the_local_cloud_is_in_the_ledger() -> None:
    # GIVEN the ledger's modules and the local cloud's own (a moved or empty folder must fail, not pass)
    listed = {module.strip() for row in _rows() for module in row[1].split(",")}
    assert (LOCAL_CLOUD / "__init__.py").is_file(), f"no local cloud package at {LOCAL_CLOUD}"
    # WHEN the gap-fill modules are those that are not demo, entry point or shared names
    modules = {path.stem for path in LOCAL_CLOUD.glob("*.py")} - NOT_IMITATIONS
    assert len(modules) >= 10, f"too few gap-fill modules found in {LOCAL_CLOUD}: {sorted(modules)}"
    # THEN each is in the ledger, and the ledger names no module that does not exist
    assert modules - listed == set(), f"gap-fill modules missing from the ledger: {sorted(modules - listed)}"
    assert listed - modules == set(), f"the ledger names modules that do not exist: {sorted(listed - modules)}"
