"""What a run's phases and cycles looked like: one row per phase of the profile (its load, and
the judged metric across it), one per cycle (its end floor and growth). Pure functions."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pytest_soak.driver.histogram import LatencyHistogram
from pytest_soak.driver.records import Run
from pytest_soak.probes import PhaseExtremes


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
    # p50/p95/p99 of the harness's own send lag (``PhaseStats.lag``), seconds
    send_lag: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CycleSummary:
    """One load cycle: its requests and the judged metric's floor at its end."""

    number: int  # 0-based; cycles below ``warmup`` are the warm-up
    kind: Literal["warm-up", "measured", "extra"]
    requests: int
    floor: float | None
    growth: float | None  # floor minus the previous cycle's floor (or the pre-load floor)


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
        latency, lateness, lag = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
        statuses: dict[str, int] = {}
        errors: dict[str, int] = {}
        samples: list[str] = []
        for stats in parts:
            latency.merge(stats.latency)
            lateness.merge(stats.lateness)
            lag.merge(stats.lag)
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
                send_lag={f"p{q:g}": lag.percentile(q) for q in (50, 95, 99)},
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
