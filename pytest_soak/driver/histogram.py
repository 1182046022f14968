"""A fixed-size, mergeable latency histogram (log-spaced buckets, ~1% relative precision).

No per-request history is kept, so its memory is the same after ten requests or ten million.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

_LOW = 1e-5  # 10 µs: everything faster lands in the first bucket
_HIGH = 600.0  # 10 min: everything slower lands in the last bucket
_GROWTH = 1.01  # each bucket is 1% wider than the previous one
_LOG_GROWTH = math.log(_GROWTH)
_BUCKETS = math.ceil(math.log(_HIGH / _LOW) / _LOG_GROWTH) + 1


class LatencyHistogram:
    """Counts of durations (seconds) in log-spaced buckets; percentiles within about 1%."""

    __slots__ = ("_counts", "count", "maximum", "total")

    def __init__(self) -> None:
        self._counts = array("q", bytes(8 * _BUCKETS))
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0

    def record(self, seconds: float) -> None:
        if seconds <= _LOW:
            index = 0
        else:
            index = min(_BUCKETS - 1, int(math.log(seconds / _LOW) / _LOG_GROWTH) + 1)
        self._counts[index] += 1
        self.count += 1
        self.total += seconds
        if seconds > self.maximum:
            self.maximum = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for index, value in enumerate(other._counts):
            if value:
                self._counts[index] += value
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)

    def buckets(self) -> list[tuple[int, int]]:
        """The non-empty buckets as ``(index, count)``: the histogram's whole content with
        ``count``, ``total`` and ``maximum`` (what travels from a scale-out worker)."""
        return [(index, value) for index, value in enumerate(self._counts) if value]

    @classmethod
    def from_buckets(
        cls, buckets: Iterable[tuple[int, int]], total: float, maximum: float
    ) -> LatencyHistogram:
        """A histogram from ``buckets()``, ``total`` and ``maximum`` of another one (mergeable
        with any histogram of this module: the buckets are the same everywhere)."""
        histogram = cls()
        for index, value in buckets:
            if not 0 <= index < _BUCKETS or value < 0:
                raise ValueError(f"bucket ({index}, {value}) is not a bucket of this histogram")
            histogram._counts[index] += value
            histogram.count += value
        histogram.total = total
        histogram.maximum = maximum
        return histogram

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in seconds; 0.0 when empty."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for index, value in enumerate(self._counts):
            seen += value
            if seen >= rank:
                if index == _BUCKETS - 1:
                    return self.maximum  # the overflow bucket has no upper edge
                return min(_LOW * _GROWTH**index, self.maximum)
        return self.maximum  # pragma: no cover - the loop always reaches rank

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
