from __future__ import annotations

import random

import pytest

from pytest_soak.driver.histogram import LatencyHistogram


def test_percentiles_within_one_percent() -> None:
    rng = random.Random(1)
    values = sorted(rng.lognormvariate(-5, 1) for _ in range(20_000))
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    for q in (50, 95, 99):
        exact = values[int(len(values) * q / 100) - 1]
        assert hist.percentile(q) == pytest.approx(exact, rel=0.02)
    assert hist.count == len(values)
    assert hist.maximum == values[-1]


def test_merge_equals_recording_everything_once() -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for n in range(1, 500):
        (a if n % 2 else b).record(n / 1000)
        both.record(n / 1000)
    a.merge(b)
    assert a.count == both.count
    assert [a.percentile(q) for q in (10, 50, 90, 99)] == [
        both.percentile(q) for q in (10, 50, 90, 99)
    ]


def test_extremes_and_empty() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(99) == 0.0
    hist.record(0.0)
    hist.record(10_000.0)  # beyond the last bucket: clamped, still counted
    assert hist.count == 2
    assert hist.percentile(100) == 10_000.0
