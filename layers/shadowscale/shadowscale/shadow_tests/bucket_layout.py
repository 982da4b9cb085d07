"""Where a shadow test's objects sit in the stack's data bucket."""

from __future__ import annotations

from shadowscale.shared.diff_contract import diffs_prefix


def report_prefix(endpoint: str, test_id: str) -> str:
    return f"reports/{endpoint}/{test_id}"


def report_key(prefix: str, suffix: str = "") -> str:
    """The report's key without its extension: `.json` and `.html` sit side by side."""
    return f"{prefix}/report{suffix}"


def notified_key(prefix: str) -> str:
    """Written once the outcome was published, so a recovery does not publish it again."""
    return f"{prefix}/notified.json"


def diff_summary_key(test_id: str) -> str:
    """Where the response-diff pipeline keeps the test's running summary."""
    return f"{diffs_prefix(test_id)}summary.json"
