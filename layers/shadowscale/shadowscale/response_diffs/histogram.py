"""A constant-memory, mergeable histogram of non-negative differences, bucketed on a log scale.

Each power of two is split into SUB_BUCKETS linear sub-buckets, so a quantile read from the buckets is
within 1/SUB_BUCKETS (about 3 %) of a value that was added. Values below MIN_VALUE share the lowest
bucket and values above MAX_VALUE the highest, so at most (MAX_EXPONENT - MIN_EXPONENT) * SUB_BUCKETS
buckets ever exist, whatever the number of values. Zeros (exact matches) are counted apart, and the
exact count, sum, minimum and maximum are kept beside the buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from math import frexp

SUB_BUCKETS = 16
# frexp(v) = (m, e) puts v in [2**(e-1), 2**e): exponent e owns buckets e*SUB_BUCKETS .. e*SUB_BUCKETS + 15.
MIN_EXPONENT = -40  # 2**-41 ~ 4.5e-13: below any tolerance anyone configures
MAX_EXPONENT = 64  # up to 2**63 ~ 9.2e18
MIN_VALUE = 2.0 ** (MIN_EXPONENT - 1)
MAX_VALUE = 2.0 ** (MAX_EXPONENT - 1)
LOWEST_BUCKET = MIN_EXPONENT * SUB_BUCKETS
HIGHEST_BUCKET = MAX_EXPONENT * SUB_BUCKETS - 1


def bucket_of(value: float) -> int:
    """The bucket of a positive, finite value."""
    if value <= MIN_VALUE:
        return LOWEST_BUCKET
    if value >= MAX_VALUE:
        return HIGHEST_BUCKET
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return exponent * SUB_BUCKETS + int((mantissa - 0.5) * 2 * SUB_BUCKETS)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    exponent, sub = divmod(bucket, SUB_BUCKETS)
    low = math.ldexp(0.5 + sub / (2 * SUB_BUCKETS), exponent)
    high = math.ldexp(0.5 + (sub + 1) / (2 * SUB_BUCKETS), exponent)
    return low, high


class LogHistogram:
    """Mutable on purpose: `add` runs once per compared pair, so it must cost next to nothing.

    Zeros are only counted (`zeros`, `count`), so a caller may bump those two directly on its hot path.
    """

    __slots__ = ("buckets", "count", "largest", "smallest", "total", "zeros")

    def __init__(
        self,
        *,
        count: int = 0,
        zeros: int = 0,
        total: float = 0.0,
        smallest: float | None = None,
        largest: float | None = None,
        buckets: Mapping[int, int] | None = None,
    ) -> None:
        self.count = count
        self.zeros = zeros
        self.total = total
        self.smallest = smallest  # of the positive values
        self.largest = largest
        self.buckets: dict[int, int] = dict(buckets or {})

    def add(self, value: float) -> None:
        """Add one non-negative, finite value (callers skip NaN and infinities: they have no place on the scale)."""
        self.count += 1
        if value == 0.0:
            self.zeros += 1
            return
        self.total += value
        smallest = self.smallest
        if smallest is None or value < smallest:
            self.smallest = value
        largest = self.largest
        if largest is None or value > largest:
            self.largest = value
        if MIN_VALUE < value < MAX_VALUE:
            mantissa, exponent = frexp(value)  # bucket_of(), inlined
            bucket = exponent * SUB_BUCKETS + int((mantissa - 0.5) * 2 * SUB_BUCKETS)
        else:
            bucket = bucket_of(value)
        buckets = self.buckets
        buckets[bucket] = buckets.get(bucket, 0) + 1

    def merge(self, other: LogHistogram) -> None:
        self.count += other.count
        self.zeros += other.zeros
        self.total += other.total
        if other.smallest is not None and (self.smallest is None or other.smallest < self.smallest):
            self.smallest = other.smallest
        if other.largest is not None and (self.largest is None or other.largest > self.largest):
            self.largest = other.largest
        for bucket, count in other.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + count

    @property
    def minimum(self) -> float | None:
        return 0.0 if self.zeros else self.smallest

    @property
    def maximum(self) -> float | None:
        if self.largest is not None:
            return self.largest
        return 0.0 if self.zeros else None

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The value at quantile q (nearest rank), to within one bucket, clamped to the exact extremes."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                low, high = bucket_bounds(bucket)
                assert self.smallest is not None
                assert self.largest is not None
                return min(max((low + high) / 2, self.smallest), self.largest)
        return self.maximum
