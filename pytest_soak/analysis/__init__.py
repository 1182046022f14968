"""From a run's cycles and memory floors to a verdict. Pure functions: no I/O.

``analyze`` judges every metric of a run by the leak rule and gathers the judgements, the phase
and cycle summaries and the run's notes into one ``Analysis``. One concept a module:

- ``verdicts``: ``Verdict``, from best to worst, and which verdicts fail a test;
- ``rule``: the leak rule on one metric's floors (``judge_metric``; docs/leak-rule.md);
- ``summaries``: one row per phase of the profile, one per cycle;
- ``sites``: the allocation sites that kept memory from every cycle of the attribution pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_soak.analysis.rule import Limits, MetricJudgement, judge_metric
from pytest_soak.analysis.sites import SiteGrowth, site_growth
from pytest_soak.analysis.summaries import (
    CycleSummary,
    PhaseSummary,
    summarize_cycles,
    summarize_phases,
)
from pytest_soak.analysis.verdicts import FAILING_VERDICTS, VERDICT_ORDER, Verdict
from pytest_soak.driver.records import Run
from pytest_soak.probes import Metric, PhaseExtremes, metric_named
from pytest_soak.units import format_figure

__all__ = [
    "FAILING_VERDICTS",
    "VERDICT_ORDER",
    "Analysis",
    "CycleSummary",
    "Limits",
    "MetricJudgement",
    "PhaseSummary",
    "SiteGrowth",
    "Verdict",
    "analyze",
    "judge_metric",
    "site_growth",
]


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
            f"{facts.label} grew {format_figure(warm, facts.unit, signed=True)} in the warm-up, "
            f"while its requests arrived for the first time (caches filling, pools growing, "
            f"lazy imports); the "
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
