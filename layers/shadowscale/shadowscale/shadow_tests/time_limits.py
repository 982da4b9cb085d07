"""How long a shadow test's holds last and how long its waits may take: the steps, the recovery and the
history budget (which counts the polls of those waits) read the same numbers."""

from __future__ import annotations

from datetime import datetime, timedelta

# How long past the planned end the lease still holds: waits for InService, approval, clean-up.
LEASE_MARGIN_SECONDS = 6 * 3600
# How long a restore waits for SageMaker to finish (or roll back) an update before it gives up.
RESTORE_PATIENCE = timedelta(hours=6)
# How long the lease stays with a test whose recovery runs: the recovery machine's own timeout.
RECOVERY_LEASE_SECONDS = 36 * 3600
# The longest a test may run (durationMinutes, and a budget's maxDurationMinutes): with the longest
# InService waits, approval and restore it still ends before the state machine's own 100-day timeout.
MAX_TEST_MINUTES = 60 * 24 * 90


def seconds_until(now: datetime, end: datetime, period: int) -> int:
    """Seconds to wait before the next look: until `end`, at most one evaluation `period`, at least 1."""
    return max(1, min(period, int((end - now).total_seconds() + 0.999)))
