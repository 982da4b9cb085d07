"""The vendored uPlot is the npm release it claims to be: each file's sha256 is the one recorded when it was
copied from `npm pack uplot@1.6.32`, VERSION says the same, and the script's header names the version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from shadowscale.shadow_tests import report_charts

VENDOR = Path(report_charts.__file__).parent / "vendor" / "uplot"
VERSION = "1.6.32"
# From the npm tarball uplot-1.6.32.tgz (integrity sha512-KIMVnG68...xpiQIw==), copied unchanged.
SHA256 = {
    "LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}
INTEGRITY = "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="


@pytest.mark.parametrize("name", sorted(SHA256))
def test_each_vendored_file_has_the_recorded_sha256(name: str) -> None:
    assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == SHA256[name]


def test_version_file_records_the_release_its_integrity_and_the_same_hashes() -> None:
    recorded = dict(line.split("=", 1) for line in (VENDOR / "VERSION").read_text().splitlines() if line)

    assert recorded.pop("version") == VERSION
    assert recorded.pop("integrity") == INTEGRITY
    assert recorded == {f"sha256 {name}": digest for name, digest in SHA256.items()}


def test_the_script_header_names_the_version_and_the_licence_is_mit() -> None:
    script = (VENDOR / "uPlot.iife.min.js").read_text()

    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{VERSION}) */")
    assert (VENDOR / "LICENSE").read_text().startswith("The MIT License (MIT)")


def test_the_page_inlines_exactly_the_vendored_files() -> None:
    script, stylesheet = report_charts.uplot_assets()

    assert script == (VENDOR / "uPlot.iife.min.js").read_text()
    assert stylesheet == (VENDOR / "uPlot.min.css").read_text()
    assert {path.name for path in VENDOR.iterdir()} == {*SHA256, "VERSION", "README.md"}
