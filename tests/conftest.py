"""Test-wide switches: every one is an environment variable the code already honours."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
# Prints the fault matrix's size at the end of a run (the xdist controller loads only this conftest).
pytest_plugins = ("tests.integration.fault_matrix.summary",)

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ShadowscaleTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "shadowscale")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def load_event(name: str) -> dict[str, Any]:
    """The sample events in events/ are the ones `sam local invoke` uses: tests share them."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


@pytest.fixture(autouse=True)
def _fresh_metrics() -> None:
    from shadowscale.shared.observability import metrics

    metrics.clear_metrics()
