"""From a run's checkpoints and memory floors to a verdict. Pure functions: no I/O.

The leak rule (docs/leak-rule.md has the reasoning and the measurements):

* Floors are read at checkpoints spaced by equal numbers of requests, with nothing in flight
  (equal load: zero) after garbage collection; the first ``warmup`` segments are excluded.
* With β the Theil–Sen slope of floors against cumulative requests, a metric *leaks* when
  1. Mann–Kendall (Kendall's τ of floor vs. requests), one-sided, has p < 0.01;
  2. the growth β × requests measured exceeds the metric's noise floor (or ``max_growth``);
  3. β exceeds the budget ``max_growth_per_request`` (default 0);
  4. it is not flattening: the slope of the second half is at least half of β;
  5. it grew in every repetition: the measured floors split into four consecutive
     repetitions, each one's lowest floor above the previous one's.
* Anything else that grew beyond the noise floor is *suspicious*, never a leak. When 1 holds
  and 2 or 4 misses narrowly (within 2×) the verdict is *inconclusive*.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_soak.driver.run import Run
from pytest_soak.probes import PhaseExtremes, Site

VERDICT_ORDER = ("ok", "inconclusive", "suspicious", "leak", "error")

#: Growth below these is noise whatever the trend says (LEAK-RULE.md: RSS ≥ 1 MiB).
NOISE_FLOORS: dict[str, float] = {
    "heap": 64 * 1024,
    "blocks": 1000,
    "rss": 1024 * 1024,
    "uss": 1024 * 1024,
}
MAD_FACTOR = 6.0
P_LIMIT = 0.01
REPETITIONS = 4
MIN_FLOORS = 8  # LEAK-RULE.md: K >= 8 floors after the warm-up
FLATTENING = 0.5

UNITS = {"heap": "bytes", "rss": "bytes", "uss": "bytes", "blocks": "blocks"}
LABELS = {
    "heap": "Python heap (tracemalloc)",
    "rss": "RSS",
    "uss": "USS",
    "blocks": "allocated blocks",
}


@dataclass(frozen=True)
class Limits:
    max_growth: float | None = None  # bytes over the measured part of the run
    max_growth_per_request: float | None = None  # bytes per request


@dataclass(frozen=True)
class MetricJudgement:
    metric: str
    verdict: str  # ok | suspicious | inconclusive | leak
    reason: str
    slope: float  # Theil–Sen β, units per request
    growth: float  # β × requests measured
    observed_growth: float  # last measured floor − first measured floor
    threshold: float  # growth needed (noise floor or max_growth)
    p_value: float
    second_half_slope: float
    grew_every_repetition: bool
    requests_measured: int
    floors: tuple[float, ...]


@dataclass(frozen=True)
class PhaseSummary:
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
    mem_start: float | None
    mem_end: float | None
    mem_floor: float | None
    mem_peak: float | None
    floor_growth: float  # growth of checkpoint floors of the judged metric attributed here
    error_kinds: Mapping[str, int] = field(default_factory=dict)  # "reset", "timeout", "5xx", ...
    error_samples: tuple[str, ...] = ()
    lateness_p99: float = 0.0  # seconds from intended to actual send
    rate_accuracy: float | None = None  # achieved / intended send rate over the phase


@dataclass(frozen=True)
class SiteGrowth:
    site: Site
    growth: int
    size: int


@dataclass(frozen=True)
class Analysis:
    verdict: str
    reason: str
    metric: str
    judgements: tuple[MetricJudgement, ...]
    phases: tuple[PhaseSummary, ...]
    warmup_checkpoints: int
    sites: tuple[SiteGrowth, ...] = ()
    attribution_requests: int = 0  # requests replayed by the attribution pass
    notes: tuple[str, ...] = field(default=())

    @property
    def primary(self) -> MetricJudgement | None:
        return next((j for j in self.judgements if j.metric == self.metric), None)


def judge_metric(
    metric: str,
    floors: Sequence[float],
    requests: Sequence[int],
    limits: Limits,
) -> MetricJudgement:
    """Apply the leak rule to measured floors (warm-up already removed) of one metric."""
    from scipy import stats

    n = len(floors)
    measured = int(requests[-1] - requests[0]) if n else 0
    observed = float(floors[-1] - floors[0]) if n else 0.0
    if n < MIN_FLOORS or measured <= 0:
        return MetricJudgement(
            metric, "inconclusive",
            f"too few memory floors to judge ({n}; the rule needs {MIN_FLOORS}): a longer run "
            "would tell", 0.0, 0.0, observed, 0.0, 1.0, 0.0, False, measured, tuple(floors),
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
    noise = max(NOISE_FLOORS.get(metric, 0.0), MAD_FACTOR * mad)
    threshold = limits.max_growth if limits.max_growth is not None else noise
    budget = limits.max_growth_per_request or 0.0
    growth = slope * measured
    grew_each = _grew_every_repetition(ys)

    trend = p_value < P_LIMIT
    big = growth > threshold
    over_budget = slope > budget
    steady = slope > 0 and second >= FLATTENING * slope
    unit = UNITS.get(metric, "")
    if trend and big and over_budget and steady and grew_each:
        verdict = "leak"
        reason = (
            f"{LABELS.get(metric, metric)} floors rose in every repetition, "
            f"+{_fmt(growth, unit)} over {measured:,} requests "
            f"({_fmt(slope, unit)}/request, Mann–Kendall p={p_value:.2g})"
        )
    elif (
        trend
        and over_budget
        and ((not big and growth > threshold / 2) or (big and not steady and second >= slope / 4))
    ):
        verdict = "inconclusive"
        reason = (
            f"{LABELS.get(metric, metric)} trends up (p={p_value:.2g}) but "
            + ("its growth is near the noise floor" if not big else "it may be flattening")
            + "; a longer run would tell"
        )
    elif observed > threshold or (trend and big):
        verdict = "suspicious"
        why = []
        if not trend:
            why.append(f"no steady trend (p={p_value:.2g})")
        if not steady:
            why.append("growth flattens (a cache filling up?)")
        if not grew_each:
            why.append("not in every repetition")
        if not over_budget:
            why.append(f"within max_growth_per_request={_fmt(budget, unit)}")
        reason = f"{LABELS.get(metric, metric)} grew {_fmt(observed, unit, signed=True)} but " + (
            ", ".join(why) or "below the limits"
        )
    else:
        verdict = "ok"
        reason = (
            f"{LABELS.get(metric, metric)} stable: {_fmt(observed, unit, signed=True)} "
            f"over {measured:,} requests (noise floor {_fmt(threshold, unit)})"
        )
    return MetricJudgement(
        metric, verdict, reason, slope, growth, observed, threshold, p_value, second, grew_each,
        measured, tuple(ys),
    )  # fmt: skip


def _grew_every_repetition(floors: Sequence[float]) -> bool:
    """Split the floors into REPETITIONS consecutive groups (sizes differing by at most one,
    every floor in one); each group's lowest floor must be above the previous group's lowest
    (regrtest's "every run leaked", robust to one noisy read)."""
    n = len(floors)
    bounds = [round(i * n / REPETITIONS) for i in range(REPETITIONS + 1)]
    lows = [min(floors[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    return len(lows) > 1 and all(b > a for a, b in itertools.pairwise(lows))


def summarize_phases(
    run: Run,
    extremes: Mapping[int, PhaseExtremes],
    memory_metric: str,
    floors: Sequence[Mapping[str, float]],
    warmup: int,
) -> tuple[PhaseSummary, ...]:
    growth_by_phase = _growth_by_phase(run, memory_metric, floors, warmup)
    rows = []
    for stats in run.phases:
        ext = extremes.get(stats.index)

        def pick(values: Mapping[str, float] | None) -> float | None:
            return None if values is None else values.get(memory_metric)

        rows.append(
            PhaseSummary(
                name=stats.name,
                requests=stats.sent,
                target_rps=stats.target_rps,
                achieved_rps=stats.achieved_rps,
                p50=stats.latency.percentile(50),
                p95=stats.latency.percentile(95),
                p99=stats.latency.percentile(99),
                errors=stats.error_count,
                late=stats.late,
                unsent=stats.unsent,
                statuses=dict(stats.statuses),
                memory_metric=memory_metric,
                mem_start=pick(ext.start if ext else None),
                mem_end=pick(ext.end if ext else None),
                mem_floor=pick(ext.low if ext else None),
                mem_peak=pick(ext.high if ext else None),
                floor_growth=growth_by_phase.get(stats.index, 0.0),
                error_kinds=dict(stats.errors.most_common()),
                error_samples=tuple(stats.error_samples),
                lateness_p99=stats.lateness.percentile(99),
                rate_accuracy=stats.rate_accuracy,
            )
        )
    return tuple(rows)


def _growth_by_phase(
    run: Run, metric: str, floors: Sequence[Mapping[str, float]], warmup: int
) -> dict[int, float]:
    """Spread each measured segment's floor growth over the phases it covered, in proportion
    to the requests sent in each (segments are equal in requests, not aligned to phases)."""
    bounds = []  # (first request, end request) of each phase
    first = 0
    for stats in run.phases:
        bounds.append((first, first + stats.sent))
        first += stats.sent
    growth: dict[int, float] = {}
    points = run.checkpoints
    for i in range(warmup + 1, min(len(points), len(floors))):
        before, after = floors[i - 1].get(metric), floors[i].get(metric)
        low, high = points[i - 1].requests, points[i].requests
        if before is None or after is None or high <= low:
            continue
        for index, (start, end) in enumerate(bounds):
            overlap = min(high, end) - max(low, start)
            if overlap > 0:
                growth[index] = growth.get(index, 0.0) + (after - before) * overlap / (high - low)
    return growth


def site_growth(
    before: Mapping[Site, int], after: Mapping[Site, int], top: int = 5
) -> tuple[SiteGrowth, ...]:
    """The allocation sites whose retained size grew most between two snapshots."""
    grown = [
        SiteGrowth(site, size - before.get(site, 0), size)
        for site, size in after.items()
        if size - before.get(site, 0) > 0
    ]
    grown.sort(key=lambda g: g.growth, reverse=True)
    return tuple(grown[:top])


def analyze(
    run: Run,
    floors: Sequence[Mapping[str, float]],
    *,
    warmup: int,
    metrics: Sequence[str],
    limits: Limits,
    extremes: Mapping[int, PhaseExtremes],
    sample_metric: str,
    sites: tuple[SiteGrowth, ...] = (),
    secondary: Sequence[str] = (),
    secondary_reason: str = "a secondary metric",
) -> Analysis:
    """Judge ``metrics`` (any leak fails) and ``secondary`` metrics (at most suspicious, with
    ``secondary_reason`` saying why they are not judged)."""
    requests = [cp.requests for cp in run.checkpoints]
    judgements: list[MetricJudgement] = []
    notes: list[str] = []
    for metric in [*metrics, *secondary]:
        series = [f.get(metric) for f in floors[warmup:]]
        if any(v is None for v in series):
            continue
        judgement = judge_metric(
            metric, [v for v in series if v is not None], requests[warmup:], limits
        )
        if metric in secondary and judgement.verdict == "leak":
            judgement = MetricJudgement(
                metric, "suspicious",
                f"{judgement.reason}; not judged as a leak: {secondary_reason}",
                judgement.slope, judgement.growth, judgement.observed_growth, judgement.threshold,
                judgement.p_value, judgement.second_half_slope, judgement.grew_every_repetition,
                judgement.requests_measured, judgement.floors,
            )  # fmt: skip
        judgements.append(judgement)
    primary_metric = metrics[0] if metrics else sample_metric
    if run.aborted is not None:
        verdict, reason = "error", f"the run stopped early: {run.aborted}"
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
    if run.late or run.unsent:
        notes.append(
            f"{run.late:,} requests were sent late (> {run.late_threshold * 1000:.0f} ms) and "
            f"{run.unsent:,} could not be sent: the load was lighter than the profile asked"
        )
    phases = summarize_phases(run, extremes, sample_metric, floors, warmup)
    return Analysis(
        verdict=verdict,
        reason=reason,
        metric=primary_metric,
        judgements=tuple(judgements),
        phases=phases,
        warmup_checkpoints=warmup,
        sites=sites,
        notes=tuple(notes),
    )


def _fmt(value: float, unit: str, *, signed: bool = False) -> str:
    from pytest_soak.units import format_bytes

    if unit == "bytes":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.1f} {unit}" if abs(value) < 100 else f"{sign}{value:,.0f} {unit}"
