"""Bounded retries with full-jitter exponential backoff.

botocore already retries throttling inside one call; this covers what it does not: SageMaker's
"Cannot update in-progress endpoint", a busy endpoint, and a held lock. The budget bounds both the
attempts and the time spent, so an invocation defers instead of sleeping until its timeout.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shadowscale.shared.clock import Clock
from shadowscale.shared.errors import TransientAwsError

T = TypeVar("T")


@dataclass
class RetryBudget:
    max_attempts: int
    budget_seconds: float
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def delay_before(self, attempt: int) -> float:
        """Full jitter (AWS Architecture Blog): uniform in [0, min(cap, base * 2^attempt)]."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * (2**attempt))
        return self.rng.uniform(0, ceiling)

    def run(self, operation: Callable[[], T], clock: Clock, on_retry: Callable[[int, Exception], None]) -> T:
        """Run `operation`, retrying TransientAwsError within the budget; the last error propagates."""
        started = clock.now()
        attempt = 1
        while True:
            try:
                return operation()
            except TransientAwsError as exc:
                spent = (clock.now() - started).total_seconds()
                delay = self.delay_before(attempt)
                if attempt >= self.max_attempts or spent + delay > self.budget_seconds:
                    raise
                on_retry(attempt, exc)
                clock.sleep(delay)
                attempt += 1
