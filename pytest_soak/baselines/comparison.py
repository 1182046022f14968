"""The judgement of a result against its baseline (``compare``): over, within, or much
better, by the marker's ``Tolerance`` (parsed with the other settings, ``units.Tolerance``)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_soak.baselines.record import Baseline
from pytest_soak.units import DEFAULT_TOLERANCE, Tolerance, format_bytes

__all__ = ["DEFAULT_TOLERANCE", "Comparison", "Tolerance", "compare"]


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
