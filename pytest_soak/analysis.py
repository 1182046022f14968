"""From a run's cycles and memory floors to a verdict. Pure functions: no I/O.

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
   cycle; a leak by the same amount).

Anything else that grew beyond the noise floor is *suspicious*, never a leak. When the trend
holds and only one condition misses narrowly the verdict is *inconclusive*, and the runner
replays a bounded number of extra cycles before the verdict is given.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pytest_soak.driver.histogram import LatencyHistogram
from pytest_soak.driver.run import Run
from pytest_soak.probes import Metric, PhaseExtremes, Site, metric_named

Verdict = Literal["ok", "suspicious", "inconclusive", "leak", "regression", "error"]
#: Verdicts from best to worst; ``regression`` is given by the baseline comparison.
#: ``inconclusive`` (a narrow miss of the leak rule: extra cycles are replayed) is nearer a leak
#: than ``suspicious`` (grew, but not as a leak does), so a judged metric's narrow miss is never
#: hidden behind a secondary metric's growth.
VERDICT_ORDER: tuple[Verdict, ...] = (
    "ok",
    "suspicious",
    "inconclusive",
    "leak",
    "regression",
    "error",
)
FAILING_VERDICTS: tuple[Verdict, ...] = ("leak", "regression", "error")


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


@dataclass(frozen=True)
class PhaseSummary:
    """One phase of the profile over every cycle of the run: its load, and the judged metric
    (floors at the phase's end in the first and last measured cycle, the lowest and highest
    sample in it, and the growth of the floors across it, summed over the measured cycles)."""

    name: str
    requests: int
    target_rps: float
    achieved_rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    late: int
    unsent: int
    statuses: Mapping[str, int]
    memory_metric: str
    mem_start: float | None  # floor at the phase's end in the first measured cycle
    mem_end: float | None  # floor at the phase's end in the last measured cycle
    mem_floor: float | None  # lowest sample in the phase (any cycle)
    mem_peak: float | None  # highest sample in the phase (any cycle)
    floor_growth: float  # growth of floors across the phase, summed over measured cycles
    error_kinds: Mapping[str, int] = field(default_factory=dict)  # "reset", "timeout", "5xx", ...
    error_samples: tuple[str, ...] = ()
    lateness_p99: float = 0.0  # seconds from intended to actual send
    rate_accuracy: float | None = None  # achieved / intended send rate over the phase


@dataclass(frozen=True)
class CycleSummary:
    """One load cycle: its requests and the judged metric's floor at its end."""

    number: int  # 0-based; cycles below ``warmup`` are the warm-up
    kind: Literal["warm-up", "measured", "extra"]
    requests: int
    floor: float | None
    growth: float | None  # floor minus the previous cycle's floor (or the pre-load floor)


@dataclass(frozen=True)
class SiteGrowth:
    site: Site
    growth: int  # bytes it retained per attribution cycle (the smaller of the cycles' growth)
    size: int  # bytes it held at the end of the attribution pass


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    reason: str
    metric: str
    judgements: tuple[MetricJudgement, ...]
    phases: tuple[PhaseSummary, ...]
    warmup_checkpoints: int  # checkpoints before the first measured floor (the warm-up's end)
    cycles: tuple[CycleSummary, ...] = ()
    cycle_requests: int = 0
    sites: tuple[SiteGrowth, ...] = ()
    attribution_requests: int = 0  # requests replayed per cycle of the attribution pass
    notes: tuple[str, ...] = field(default=())

    @property
    def primary(self) -> MetricJudgement | None:
        return next((j for j in self.judgements if j.metric == self.metric), None)


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
    steady = slope > 0 and second >= FLATTENING * slope and not slowing
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
            f"{_fmt(observed, unit, signed=True)} over {measured:,} requests "
            f"({_fmt(slope, unit)}/request, Mann–Kendall p={p_value:.2g})"
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
            misses.append(f"its growth is near the noise floor ({_fmt(threshold, unit)})")
        if not steady:
            misses.append(
                "it grows less cycle after cycle (a bounded structure still filling?)"
                if slowing
                else "it may be flattening"
            )
        if not every:
            misses.append(
                f"it grew in {grown} of {cycles} cycles"
                + (" (in every pair of cycles: growth in steps?)" if lumpy else "")
            )
        reason = (
            f"{label} trends up ({_fmt(observed, unit, signed=True)}, p={p_value:.2g}) but "
            + " and ".join(misses)
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
                if slowing
                else "growth flattens (a cache filling up?)"
            )
        if not over_budget:
            why.append(f"within max_growth_per_request={_fmt(budget, unit)}")
        reason = f"{label} grew {_fmt(observed, unit, signed=True)} but " + (
            ", ".join(why) or "below the limits"
        )
    else:
        verdict = "ok"
        reason = (
            f"{label} stable over {cycles} identical cycles: "
            f"{_fmt(observed, unit, signed=True)} over {measured:,} requests "
            f"(noise floor {_fmt(threshold, unit)})"
        )
    return MetricJudgement(
        metric, verdict, reason, slope, observed, trend_growth, threshold, step_noise, p_value,
        second, every, measured, tuple(ys),
    )  # fmt: skip


def _slowing(deltas: Sequence[float]) -> bool:
    """The cycles' growth falls, cycle after cycle: Mann–Kendall on the deltas (one-sided,
    decreasing, p < ``SLOWING_P``) and the second half's mean growth under
    ``SLOWING_SHARE`` of the first half's. A leak grows by the same amount each cycle (its
    deltas are noise around a constant); state that fills towards a bound (a session's cart
    lines, a per-key history) grows by less each time, long before it stops."""
    from scipy import stats

    n = len(deltas)
    if n < 6 or len(set(deltas)) == 1:
        return False
    half = n // 2
    first, second = statistics.fmean(deltas[:half]), statistics.fmean(deltas[n - half :])
    if first <= 0 or second >= SLOWING_SHARE * first:
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


def summarize_phases(
    run: Run,
    extremes: Mapping[int, PhaseExtremes],
    memory_metric: str,
    floors: Sequence[Mapping[str, float]],
    measured_from: int,
) -> tuple[PhaseSummary, ...]:
    """One row per phase of the profile (in profile order), over all cycles of the run;
    ``extremes`` are the sampler's, by the phase's position in the profile."""
    growth, first_end, last_end = _phase_floors(run, memory_metric, floors, measured_from)
    rows = []
    for position, phase in enumerate(run.phases):
        name, parts = phase.name, [phase]
        latency, lateness = LatencyHistogram(), LatencyHistogram()
        statuses: dict[str, int] = {}
        errors: dict[str, int] = {}
        samples: list[str] = []
        for stats in parts:
            latency.merge(stats.latency)
            lateness.merge(stats.lateness)
            for key, count in stats.statuses.items():
                if count:
                    statuses[key] = statuses.get(key, 0) + count
            for key, count in stats.errors.items():
                errors[key] = errors.get(key, 0) + count
            samples.extend(stats.error_samples[: max(0, 5 - len(samples))])
        planned = sum(stats.planned_duration for stats in parts)
        sent = sum(stats.sent for stats in parts)
        extreme = extremes.get(position)
        low = extreme.low.get(memory_metric) if extreme else None
        high = extreme.high.get(memory_metric) if extreme else None
        accuracies = [a for stats in parts if (a := stats.rate_accuracy) is not None]
        rows.append(
            PhaseSummary(
                name=name,
                requests=sent,
                target_rps=sum(stats.expected for stats in parts) / planned if planned else 0.0,
                achieved_rps=sent / planned if planned else 0.0,
                p50=latency.percentile(50),
                p95=latency.percentile(95),
                p99=latency.percentile(99),
                errors=sum(errors.values()),
                late=sum(stats.late for stats in parts),
                unsent=sum(stats.unsent for stats in parts),
                statuses=statuses,
                memory_metric=memory_metric,
                mem_start=first_end.get(name),
                mem_end=last_end.get(name),
                mem_floor=low,
                mem_peak=high,
                floor_growth=growth.get(name, 0.0),
                error_kinds=dict(sorted(errors.items(), key=lambda kv: -kv[1])),
                error_samples=tuple(samples),
                lateness_p99=lateness.percentile(99),
                rate_accuracy=statistics.median(accuracies) if accuracies else None,
            )
        )
    return tuple(rows)


def _phase_floors(
    run: Run, metric: str, floors: Sequence[Mapping[str, float]], measured_from: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per phase name: the floors' growth across it summed over the measured cycles (a floor is
    read at the end of every phase), and its end floor in the first and last measured cycle."""
    names = {stats.index: stats.name for stats in run.phases}
    growth: dict[str, float] = {}
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    points = run.checkpoints
    for i in range(measured_from + 1, min(len(points), len(floors))):
        before, after = floors[i - 1].get(metric), floors[i].get(metric)
        name = names.get(points[i].phase)
        if before is None or after is None or name is None:
            continue
        if points[i].requests > points[i - 1].requests:
            growth[name] = growth.get(name, 0.0) + (after - before)
        first.setdefault(name, after)
        last[name] = after
    return growth, first, last


def summarize_cycles(
    floors: Sequence[Mapping[str, float]],
    spans: Sequence[tuple[int, int]],
    cycle_requests: int,
    metric: str,
    warmup: int,
    measured: int,
) -> tuple[CycleSummary, ...]:
    """Each cycle with its end floor and growth; ``spans[c]`` are the floor rows at cycle
    ``c``'s start and end."""
    out = []
    for c, (start, end) in enumerate(spans):
        before, after = floors[start].get(metric), floors[end].get(metric)
        kind: Literal["warm-up", "measured", "extra"] = (
            "warm-up" if c < warmup else "measured" if c < warmup + measured else "extra"
        )
        growth = None if before is None or after is None else after - before
        out.append(CycleSummary(c, kind, cycle_requests, after, growth))
    return tuple(out)


def _cycle_series(
    floors: Sequence[Mapping[str, float]], spans: Sequence[tuple[int, int]], metric: str
) -> list[float] | None:
    """The metric at the start of the first span, then after each span: the start plus the
    growth of every span so far (a span's growth is measured within it, so bookkeeping
    allocated between spans is not counted)."""
    if not spans:
        return None
    start = floors[spans[0][0]].get(metric)
    if start is None:
        return None
    series = [start]
    for begin, end in spans:
        before, after = floors[begin].get(metric), floors[end].get(metric)
        if before is None or after is None:
            return None
        series.append(series[-1] + after - before)
    return series


def site_growth(snapshots: Sequence[Mapping[Site, int]], top: int = 5) -> tuple[SiteGrowth, ...]:
    """The allocation sites that retained more in every interval between ``snapshots`` (taken
    after identical cycles), ranked by the smallest of those growths: what a site keeps from
    every cycle, not what it took once (an import, a cache filling)."""
    if len(snapshots) < 2:
        return ()
    last = snapshots[-1]
    grown = []
    for site, size in last.items():
        steps = [
            after.get(site, 0) - before.get(site, 0)
            for before, after in itertools.pairwise(snapshots)
        ]
        retained = min(steps)
        if retained > 0:
            grown.append(SiteGrowth(site, retained, size))
    grown.sort(key=lambda g: g.growth, reverse=True)
    return tuple(grown[:top])


def analyze(
    run: Run,
    floors: Sequence[Mapping[str, float]],
    *,
    cycle_spans: Sequence[tuple[int, int]],
    cycle_requests: int,
    warmup_cycles: int,
    measured_cycles: int,
    metrics: Sequence[str],
    limits: Limits,
    extremes: Mapping[int, PhaseExtremes],
    sample_metric: str,
    sites: tuple[SiteGrowth, ...] = (),
    secondary: Mapping[str, str] | None = None,
    metric_table: Mapping[str, Metric] | None = None,
) -> Analysis:
    """Judge ``metrics`` (any leak fails) and ``secondary`` metrics (at most suspicious; each
    with why it is not judged) on the floors at cycle ends: ``cycle_spans`` are the floor rows
    that start and end each completed cycle (a cycle's growth is measured within it, so
    bookkeeping allocated between two replays is not). ``metric_table``: the metrics read,
    by name (their noise and units; a built-in metric needs no entry)."""
    secondary = secondary or {}
    table = metric_table or {}
    points = run.checkpoints[: len(floors)]
    measured_spans = cycle_spans[warmup_cycles:]
    requests = [points[measured_spans[0][0]].requests] if measured_spans else []
    requests += [points[end].requests for _, end in measured_spans]
    judgements: list[MetricJudgement] = []
    notes: list[str] = []
    for metric in [*metrics, *secondary]:
        series = _cycle_series(floors, measured_spans, metric)
        if series is None:
            continue
        judgement = judge_metric(table.get(metric) or metric, series, requests, limits)
        if metric in secondary and judgement.verdict in ("leak", "inconclusive"):
            judgement = _demoted(judgement, secondary[metric])
        judgements.append(judgement)
    primary_metric = metrics[0] if metrics else sample_metric
    if run.aborted is not None:
        verdict: Verdict = "error"
        reason = f"the run stopped early: {run.aborted}"
    elif not judgements:
        verdict, reason = "ok", "no memory floors to judge"
    else:
        worst = max(judgements, key=lambda j: VERDICT_ORDER.index(j.verdict))
        verdict, reason = worst.verdict, worst.reason
        if worst.verdict != "ok":
            primary_metric = worst.metric
        heap = next((j for j in judgements if j.metric == "heap"), None)
        rss = next((j for j in judgements if j.metric in ("rss", "uss")), None)
        if heap and rss and heap.verdict == "ok" and rss.verdict in ("suspicious", "leak"):
            notes.append(
                "RSS grew while the traced Python heap stayed flat: a native (C-level) leak, "
                "or allocator fragmentation"
            )
    warm = _warmup_growth(floors, cycle_spans[:warmup_cycles], primary_metric)
    primary = next((j for j in judgements if j.metric == primary_metric), None)
    if warm is not None and primary is not None and warm > primary.threshold:
        facts = table.get(primary_metric) or metric_named(primary_metric)
        notes.append(
            f"{facts.label} grew "
            f"{_fmt(warm, facts.unit, signed=True)} in the warm-up, while its requests arrived for "
            f"the first time (caches filling, pools growing, lazy imports); the "
            f"{len(measured_spans)} identical cycles after it are what is judged"
        )
    if run.late or run.unsent:
        notes.append(
            f"{run.late:,} requests were sent late (> {run.late_threshold * 1000:.0f} ms) and "
            f"{run.unsent:,} could not be sent: the load was lighter than the profile asked"
        )
    measured_from = measured_spans[0][0] if measured_spans else len(floors)
    phases = summarize_phases(run, extremes, sample_metric, floors, measured_from)
    return Analysis(
        verdict=verdict,
        reason=reason,
        metric=primary_metric,
        judgements=tuple(judgements),
        phases=phases,
        warmup_checkpoints=measured_from,
        cycles=summarize_cycles(
            floors, cycle_spans, cycle_requests, primary_metric, warmup_cycles, measured_cycles
        ),
        cycle_requests=cycle_requests,
        sites=sites,
        notes=tuple(notes),
    )


def _demoted(judgement: MetricJudgement, why: str) -> MetricJudgement:
    from dataclasses import replace

    return replace(
        judgement, verdict="suspicious", reason=f"{judgement.reason}; not judged as a leak: {why}"
    )


def _warmup_growth(
    floors: Sequence[Mapping[str, float]], spans: Sequence[tuple[int, int]], metric: str
) -> float | None:
    series = _cycle_series(floors, spans, metric)
    return None if series is None else series[-1] - series[0]


def _fmt(value: float, unit: str, *, signed: bool = False) -> str:
    from pytest_soak.units import format_bytes

    if unit == "bytes":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.1f} {unit}" if abs(value) < 100 else f"{sign}{value:,.0f} {unit}"
