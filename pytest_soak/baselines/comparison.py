"""The judgement of a result against its baseline (``compare``): over, within, or much
better, by the marker's ``Tolerance`` (parsed with the other settings, ``units.Tolerance``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_soak.analysis import PhaseSummary
from pytest_soak.baselines.record import LATENCY_PERCENTILES, Baseline
from pytest_soak.thresholds import LatencyTolerance
from pytest_soak.units import DEFAULT_TOLERANCE, Tolerance, format_bytes, format_ms

__all__ = [
    "DEFAULT_TOLERANCE",
    "Comparison",
    "LatencyComparison",
    "Tolerance",
    "compare",
    "compare_latency",
]

#: Percentiles compared with the baseline, phase by phase.
#: A phase with fewer requests than this (in the run or the baseline) is not compared at all.
MIN_LATENCY_REQUESTS = 20
#: A percentile is compared only where at least this many of the phase's requests (in the run
#: and in the baseline) lie above it: p95 from 100 requests, p99 from 500. Below that it is the
#: slowest request or two, and one request caught by a stall of the machine would move it.
MIN_REQUESTS_ABOVE = 5


def comparable(percentile: str, requests: int) -> bool:
    """Whether ``percentile`` (``"p95"``) of ``requests`` rests on enough requests above it."""
    share_above = 1.0 - float(percentile.removeprefix("p")) / 100.0
    return requests >= MIN_LATENCY_REQUESTS and requests * share_above >= MIN_REQUESTS_ABOVE


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``; figures in the judged metric's unit, ``message`` one line."""

    status: str  # within | over | better
    expected: float
    allowed: float
    observed: float
    message: str


def compare(
    baseline: Baseline,
    *,
    observed_growth: float,
    requests_measured: int,
    tolerance: Tolerance,
    path: str,
) -> Comparison:
    """Judge ``observed_growth`` against the baseline scaled to this run's length.

    The baseline's growth *per request* times the requests this run measured is what is
    expected, so a quick run can be compared with a baseline from a longer one.
    ``allowed = max(0, expected) × (1 + relative) + absolute``; over that is ``over``. A baseline
    that shrank (negative growth) allows what a flat one does: noise must not fail a flat run.
    ``better`` needs an improvement bigger than the tolerance and a baseline that grew by more
    than the absolute tolerance: smaller differences are noise, not news."""
    metric = baseline.metric
    expected = baseline.growth_per_request * requests_measured
    allowed = max(0.0, expected) * (1 + tolerance.relative) + tolerance.absolute
    margin = abs(expected) * tolerance.relative + tolerance.absolute
    if observed_growth > allowed:
        status = "over"
    elif observed_growth < expected - margin and expected > tolerance.absolute:
        status = "better"
    else:
        status = "within"

    rate = observed_growth / requests_measured if requests_measured else 0.0
    seen = (
        f"{_amount(observed_growth, metric, signed=True)} observed over "
        f"{requests_measured:,} requests ({_per_request(rate, metric)})"
    )
    tol = [f"{tolerance.relative * 100:g}%"] if tolerance.relative else []
    if tolerance.absolute:
        tol.append(_amount(tolerance.absolute, metric))
    base = (
        f"baseline {_per_request(baseline.growth_per_request, metric)} "
        f"({_amount(expected, metric)} expected)"
    )
    where = f"({path}, {baseline.environment.key})"
    if status == "better":
        message = (
            f"{seen} is much better than the {base}, beyond its tolerance of "
            f"{' + '.join(tol) or '0'}: run --soak-update-baselines to record it {where}"
        )
    else:
        sign = ">" if status == "over" else "<="
        tail = f" + {' + '.join(tol)} tolerance" if tol else ""
        message = f"{seen} {sign} {_amount(allowed, metric)} allowed: {base}{tail} {where}"
    return Comparison(status, expected, allowed, observed_growth, message)


def _amount(value: float, metric: str, *, signed: bool = False) -> str:
    if metric != "blocks":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.0f} blocks"


def _per_request(value: float, metric: str) -> str:
    """One decimal below 100 (``5.0 B/request``): per-request growth is often a few bytes."""
    unit = "blocks" if metric == "blocks" else "B"
    if abs(value) < 100:
        return f"{value:.1f} {unit}/request"
    return f"{_amount(value, metric)}/request"


@dataclass(frozen=True)
class LatencyComparison:
    """Each phase's p50/p95/p99 against the baseline's: ``over`` (a figure over its allowed
    even after the harness's own send lag is taken off), ``late`` (figures over only by as much
    as the harness sent late: not judged), ``within``, or ``missing`` (the baseline has no
    latency, or no phase could be compared)."""

    status: str
    compared: int  # figures compared
    over: tuple[dict[str, Any], ...] = field(
        default=()
    )  # phase, percentile, expected, allowed, observed, lag
    message: str = ""
    excused: tuple[dict[str, Any], ...] = ()  # over, but by no more than the harness's lag


def compare_latency(
    baseline: Baseline,
    phases: Sequence[PhaseSummary],
    *,
    tolerance: LatencyTolerance,
    path: str,
) -> LatencyComparison:
    """Phase by phase (by name), each of p50/p95/p99 against ``baseline × (1 + relative) +
    absolute``; a percentile is left out where either side has too few requests above it
    (``comparable``).

    Latency runs from each request's intended send time, so a harness that could not send on
    time (a busy machine, a stalled process) adds its lag to every figure. A figure is a
    regression only when it is still over its allowance with the phase's send lag at the same
    percentile taken off; one over by no more than that lag is ``excused``: not judged, and
    said. A slow service does not raise the lag: waiting for a free concurrency slot is not
    counted in it."""
    recorded = {p.name: p for p in baseline.phases}
    over: list[dict[str, Any]] = []
    excused: list[dict[str, Any]] = []
    compared = 0
    for phase in phases:
        before = recorded.get(phase.name)
        if before is None:
            continue
        for name in LATENCY_PERCENTILES:
            expected = getattr(before, name)
            if expected is None or not comparable(name, min(before.requests, phase.requests)):
                continue
            compared += 1
            observed = float(getattr(phase, name))
            allowed = tolerance.allowed(expected)
            if observed <= allowed:
                continue
            lag = float(phase.send_lag.get(name, 0.0))
            figure = {
                "phase": phase.name,
                "percentile": name,
                "expected": expected,
                "allowed": allowed,
                "observed": observed,
                "lag": lag,
            }
            (over if observed - lag > allowed else excused).append(figure)
    where = f"({path}, {baseline.environment.key})"
    if not compared:
        return LatencyComparison(
            "missing",
            0,
            message=f"latency not compared: no phase has both a latency in the baseline and "
            f"{MIN_LATENCY_REQUESTS} requests or more on each side (a baseline recorded before "
            f"latency was: re-record it with --soak-update-baselines) {where}",
        )
    if over:
        shown = ", ".join(
            f"{_over(o)} (baseline {format_ms(o['expected'])}"
            + (f"; {format_ms(o['lag'])} of it the harness's send lag" if _lag_shown(o) else "")
            + ")"
            for o in over
        )
        return LatencyComparison(
            "over",
            compared,
            tuple(over),
            f"latency over the baseline + {tolerance} tolerance: {shown} {where}",
            tuple(excused),
        )
    if excused:
        shown = ", ".join(
            f"{_over(o)}, but the harness sent {format_ms(o['lag'])} late at that percentile"
            for o in excused
        )
        return LatencyComparison(
            "late",
            compared,
            message=f"latency not judged in {len(excused)} of {compared} percentiles: {shown}; "
            f"the harness could not send on time (a busy machine or a stalled process), so "
            f"those figures measure it, not the service: rerun on a quieter machine {where}",
            excused=tuple(excused),
        )
    return LatencyComparison(
        "within",
        compared,
        message=f"latency within the baseline + {tolerance} in all {compared} percentiles "
        f"compared {where}",
    )


def _over(figure: dict[str, Any]) -> str:
    """``spike p99 45.3ms > 27.8ms allowed``."""
    return (
        f"{figure['phase']} {figure['percentile']} {format_ms(figure['observed'])} > "
        f"{format_ms(figure['allowed'])} allowed"
    )


def _lag_shown(figure: dict[str, Any]) -> bool:
    """The send lag is said beside a regression when it is half its excess or more: a timer's
    millisecond of wake-up jitter is not worth a word."""
    return bool(figure["lag"] >= (figure["observed"] - figure["allowed"]) / 2)
