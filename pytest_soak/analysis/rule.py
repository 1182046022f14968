"""The leak rule: one metric's floors at cycle ends -> a verdict. Pure functions: no I/O.

**A leak is growth across repeated identical work** (SPEC §2, docs/leak-rule.md). A run is a
series of identical load cycles: each replays the same requests shaped by the same profile, and
a *floor* of each metric is read at the end of each cycle (nothing in flight, garbage
collected). The first ``warmup`` cycles are excluded: caches keyed by traffic fill, pools reach
their size, lazy imports happen. With the floors at the end of the warm-up and of each measured
cycle, and β the Theil–Sen slope of floors against cumulative requests, a metric *leaks* when

1. **trend**: Mann–Kendall (Kendall's τ of floor vs. requests), one-sided, p < 0.01;
2. **every cycle**: each measured cycle's growth is above the metric's step noise (regrtest's
   "every run leaked"; a one-off step followed by flat cycles is not a leak);
3. **size**: the growth over the measured cycles exceeds the metric's noise floor (or
   ``max_growth``);
4. **budget**: β exceeds ``max_growth_per_request`` (default 0);
5. **not flattening**: the slope of the second half is at least half of β, and the cycles'
   growth does not fall cycle after cycle (state filling towards a bound grows by less each
   cycle; a leak by the same amount). Growth that falls significantly but only a little is a
   narrow miss before the extra cycles.

Anything else that grew beyond the noise floor is *suspicious*, never a leak. When the trend
holds and only one condition misses narrowly the verdict is *inconclusive*, and the engine
(``engine.run_soak``) replays a bounded number of extra cycles before the verdict is given.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_soak.analysis.verdicts import Verdict
from pytest_soak.probes import Metric, metric_named
from pytest_soak.units import format_figure

#: The noise of a series is also judged from itself: MAD of its cycle-to-cycle growth.
MAD_FACTOR = 6.0
STEP_MAD_FACTOR = 3.0
P_LIMIT = 0.01
MIN_FLOORS = 5  # the end of the warm-up and at least four measured cycles
FLATTENING = 0.5
#: Growth that falls cycle after cycle is not a leak (``_slowing``).
SLOWING_P = 0.05
#: Growth in steps (``_lumpy``): every pair of cycles grows by more than this share of the
#: typical pair.
LUMPY_SHARE = 0.5
#: ... and only over at least this many measured cycles (quick mode's 8 plus its 4 extra).
LUMPY_MIN_CYCLES = 12
SLOWING_SHARE = 0.75
#: Before the extra cycles (fewer than ``LUMPY_MIN_CYCLES``), growth that falls significantly
#: but by less than a quarter (second half under this share of the first) is a narrow miss:
#: the extra cycles tell a bounded structure (it slows further) from a leak (it does not). A
#: per-session history of 8 entries filling over quick mode's 8 cycles grew 23.8, 23.1, 22.0,
#: 21.3, 19.5, 19.5, 19.6, 12.3 KiB (benchmarks/false_positives.py, caches-filling served 20x).
DECLINING_SHARE = 0.9


@dataclass(frozen=True)
class Limits:
    max_growth: float | None = None  # bytes over the measured part of the run
    max_growth_per_request: float | None = None  # bytes per request


@dataclass(frozen=True)
class MetricJudgement:
    metric: str
    verdict: Verdict  # ok | suspicious | inconclusive | leak
    reason: str
    slope: float  # Theil–Sen β, units per request
    growth: float  # last measured floor − the warm-up's floor: the one growth figure shown
    trend_growth: float  # β × requests measured (the size condition uses the smaller)
    threshold: float  # growth needed (noise floor or max_growth)
    step_noise: float  # growth a cycle needs to count as "grew"
    p_value: float
    second_half_slope: float
    grew_every_cycle: bool
    requests_measured: int
    floors: tuple[float, ...]  # the warm-up's last floor, then each measured cycle's

    @property
    def deltas(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in itertools.pairwise(self.floors))

    @property
    def cycles_grown(self) -> int:
        return sum(d > self.step_noise for d in self.deltas)


def judge_metric(
    metric: str | Metric,
    floors: Sequence[float],
    requests: Sequence[int],
    limits: Limits,
) -> MetricJudgement:
    """Apply the leak rule to one metric's floors: the warm-up's last floor, then one at the
    end of each measured cycle; ``requests`` is the cumulative request count at each.
    ``metric``: a ``Metric`` (its noise and unit), or the name of a built-in one."""
    from scipy import stats

    facts = metric if isinstance(metric, Metric) else metric_named(metric)
    metric = facts.name
    n = len(floors)
    measured = int(requests[-1] - requests[0]) if n else 0
    observed = float(floors[-1] - floors[0]) if n else 0.0
    if n < MIN_FLOORS or measured <= 0:
        return MetricJudgement(
            metric, "inconclusive",
            f"too few memory floors to judge ({n}; the rule needs {MIN_FLOORS}): a longer run "
            "would tell", 0.0, observed, 0.0, 0.0, 0.0, 1.0, 0.0, False, measured, tuple(floors),
        )  # fmt: skip
    xs = [float(r) for r in requests]
    ys = [float(f) for f in floors]
    slope = float(stats.theilslopes(ys, xs).slope)
    if len(set(ys)) == 1:
        p_value = 1.0
    else:
        p_value = float(stats.kendalltau(xs, ys, alternative="greater").pvalue)
        if math.isnan(p_value):
            p_value = 1.0
    half = n // 2
    second = float(stats.theilslopes(ys[half:], xs[half:]).slope) if n - half >= 3 else slope
    deltas = [b - a for a, b in itertools.pairwise(ys)]
    median_delta = statistics.median(deltas)
    mad = statistics.median(abs(d - median_delta) for d in deltas)
    noise = max(facts.noise, MAD_FACTOR * mad)
    step_noise = max(facts.step, STEP_MAD_FACTOR * mad)
    threshold = limits.max_growth if limits.max_growth is not None else noise
    budget = limits.max_growth_per_request or 0.0
    trend_growth = slope * measured
    grown = sum(d > step_noise for d in deltas)
    lumpy = grown < len(deltas) and _lumpy(deltas, facts.step)
    # Growth in steps is weaker evidence than growth in every cycle: it counts only over the
    # extra cycles' longer series; before that it is a narrow miss (more cycles are replayed).
    every = grown == len(deltas) or (lumpy and len(deltas) >= LUMPY_MIN_CYCLES)

    trend = p_value < P_LIMIT
    size = min(observed, trend_growth)
    big = size > threshold
    over_budget = slope > budget
    slowing = _slowing(deltas)
    declining = not slowing and len(deltas) < LUMPY_MIN_CYCLES and _slowing(deltas, DECLINING_SHARE)
    steady = slope > 0 and second >= FLATTENING * slope and not slowing and not declining
    label, unit = facts.label, facts.unit
    cycles = len(deltas)
    if trend and big and over_budget and steady and every:
        verdict: Verdict = "leak"
        how = (
            f"in every pair of {cycles} identical cycles (in {grown} singly: it grows in "
            "steps, as a reallocated buffer does)"
            if lumpy
            else f"in every one of {cycles} identical cycles"
        )
        reason = (
            f"{label} grew {how}, "
            f"{format_figure(observed, unit, signed=True)} over {measured:,} requests "
            f"({format_figure(slope, unit)}/request, Mann–Kendall p={p_value:.2g})"
        )
    elif (
        trend
        and over_budget
        and (
            _narrow_miss(big, steady, every, grown, cycles, size, threshold, second, slope)
            or (lumpy and big and steady and not every)
        )
    ):
        verdict = "inconclusive"
        misses = []
        if not big:
            misses.append(f"its growth is near the noise floor ({format_figure(threshold, unit)})")
        if not steady:
            misses.append(
                "it grows less cycle after cycle (a bounded structure still filling?)"
                if slowing or declining
                else "it may be flattening"
            )
        if not every:
            misses.append(
                f"it grew in {grown} of {cycles} cycles"
                + (" (in every pair of cycles: growth in steps?)" if lumpy else "")
            )
        reason = (
            f"{label} trends up ({format_figure(observed, unit, signed=True)}, "
            f"p={p_value:.2g}) but " + " and ".join(misses)
        )
    elif observed > threshold or (trend and big):
        verdict = "suspicious"
        why = []
        if not trend:
            why.append(f"no steady trend (p={p_value:.2g})")
        if not every:
            step = " (a one-off step, then flat?)" if grown <= 1 else ""
            why.append(f"grew in {grown} of {cycles} cycles{step}")
        if not steady:
            why.append(
                "growth slows cycle after cycle (a bounded structure filling?)"
                if slowing or declining
                else "growth flattens (a cache filling up?)"
            )
        if not over_budget:
            why.append(f"within max_growth_per_request={format_figure(budget, unit)}")
        reason = f"{label} grew {format_figure(observed, unit, signed=True)} but " + (
            ", ".join(why) or "below the limits"
        )
    else:
        verdict = "ok"
        reason = (
            f"{label} stable over {cycles} identical cycles: "
            f"{format_figure(observed, unit, signed=True)} over {measured:,} requests "
            f"(noise floor {format_figure(threshold, unit)})"
        )
    return MetricJudgement(
        metric, verdict, reason, slope, observed, trend_growth, threshold, step_noise, p_value,
        second, every, measured, tuple(ys),
    )  # fmt: skip


def _slowing(deltas: Sequence[float], share: float = SLOWING_SHARE) -> bool:
    """The cycles' growth falls, cycle after cycle: Mann–Kendall on the deltas (one-sided,
    decreasing, p < ``SLOWING_P``) and the second half's mean growth under ``share`` of the
    first half's. A leak grows by the same amount each cycle (its
    deltas are noise around a constant); state that fills towards a bound (a session's cart
    lines, a per-key history) grows by less each time, long before it stops."""
    from scipy import stats

    n = len(deltas)
    if n < 6 or len(set(deltas)) == 1:
        return False
    half = n // 2
    first, second = statistics.fmean(deltas[:half]), statistics.fmean(deltas[n - half :])
    if first <= 0 or second >= share * first:
        return False
    p = float(stats.kendalltau(range(n), deltas, alternative="less").pvalue)
    return not math.isnan(p) and p < SLOWING_P


def _lumpy(deltas: Sequence[float], step: float) -> bool:
    """Growth in steps: a buffer that grows by reallocation (a ``bytearray``, a list's array)
    takes its memory in steps larger than one cycle's growth, so some cycles show none and the
    next two cycles' worth. Such growth counts as "every cycle" when every pair of consecutive
    cycles (counted back from the last) grew by more than the pairs' own noise and by more than
    half the typical pair (a cycle that missed its growth must make it up in the next), no
    cycle shrank by more than the metric's step, and at least half the cycles grew alone."""
    n = len(deltas)
    if n < 6 or any(d < -step for d in deltas) or sum(d > step for d in deltas) * 2 < n:
        return False
    pairs = [deltas[i - 1] + deltas[i] for i in range(n - 1, 0, -2)]
    middle = statistics.median(pairs)
    pair_step = max(step, STEP_MAD_FACTOR * statistics.median(abs(p - middle) for p in pairs))
    return all(p > pair_step and p > LUMPY_SHARE * middle for p in pairs)


def _narrow_miss(
    big: bool,
    steady: bool,
    every: bool,
    grown: int,
    cycles: int,
    size: float,
    threshold: float,
    second: float,
    slope: float,
) -> bool:
    """Exactly one condition misses, and only just: more cycles would tell."""
    near_size = not big and size > threshold / 2 and steady and every
    near_steady = big and every and not steady and second >= slope / 4
    near_every = big and steady and not every and grown == cycles - 1 and cycles >= 4
    return near_size or near_steady or near_every
