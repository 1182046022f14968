"""Judging a run's thresholds (``pytest_soak.thresholds``): each one once, on the run's merged
per-phase data. A pure function of the phases' counts and latency histograms.

A phase's figures are over every cycle of the run (its ``PhaseStats`` already holds them all);
the whole run's latency percentiles come from the phases' histograms merged, never from their
percentiles averaged. ``errors``: requests without a good answer over requests sent; ``late``:
requests sent late or not at all over requests planned and reached (``late + unsent`` over
``sent + unsent``); ``rps``: the pace of the requests sent (intended over actual span between
the first and last send) times the share of them that could be sent at all.

A threshold with nothing to judge (no request in its phase) fails and says so: a limit that
was never checked must not read as kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_soak.driver.records import PhaseStats, merged_latency
from pytest_soak.thresholds import FIGURES, Threshold, format_value

PASS_MARK = "✓"
FAIL_MARK = "✗"


@dataclass(frozen=True)
class ThresholdOutcome:
    """One threshold, judged: ``observed`` in the limit's unit (seconds, a share 0..1 or a
    ratio), None when there was nothing to judge (then ``passed`` is False)."""

    name: str  # "p95[spike]"
    figure: str  # "p95"
    phase: str | None  # None: the whole run
    comparison: str  # "<=", "<", ">=", ">"
    limit: float
    observed: float | None
    passed: bool
    requests: int  # requests the figure was taken over

    @property
    def kind(self) -> str:
        return FIGURES[self.figure].kind

    @property
    def mark(self) -> str:
        return PASS_MARK if self.passed else FAIL_MARK

    def observed_text(self) -> str:
        if self.observed is None:
            return "no requests" + (f" in phase {self.phase!r}" if self.phase else "")
        return format_value(self.kind, self.observed)

    def limit_text(self) -> str:
        return f"{self.comparison} {format_value(self.kind, self.limit)}"

    def describe(self) -> str:
        """``✓ 212ms <= 250ms``, ``✗ 412ms, limit <= 250ms``: observed against the limit."""
        if self.passed:
            return f"{self.mark} {self.observed_text()} {self.limit_text()}"
        return f"{self.mark} {self.observed_text()}, limit {self.limit_text()}"


def judge_thresholds(
    thresholds: Sequence[Threshold], phases: Sequence[PhaseStats]
) -> tuple[ThresholdOutcome, ...]:
    """Every threshold against ``phases`` (a run's, merged over its cycles), in given order."""
    return tuple(_judge(threshold, phases) for threshold in thresholds)


def crossed(outcomes: Sequence[ThresholdOutcome]) -> list[ThresholdOutcome]:
    """The thresholds that were not kept."""
    return [outcome for outcome in outcomes if not outcome.passed]


def verdict_suffix(count: int, failed: int) -> str:
    """What ``count`` thresholds of which ``failed`` were crossed add to the verdict: ``""``
    (none), ``"1 threshold crossed"``, ``"all 3 thresholds kept"``."""
    if not count:
        return ""
    if failed:
        return f"{failed} threshold{'s' if failed != 1 else ''} crossed"
    return f"{'the threshold' if count == 1 else f'all {count} thresholds'} kept"


def verdict_line(verdict: str, count: int, failed: int) -> str:
    """The verdict as every report shows it: ``LEAK``; with thresholds ``OK (memory), 1
    threshold crossed`` or ``OK (memory), all 3 thresholds kept``."""
    suffix = verdict_suffix(count, failed)
    return f"{verdict.upper()} (memory), {suffix}" if suffix else verdict.upper()


def _judge(threshold: Threshold, phases: Sequence[PhaseStats]) -> ThresholdOutcome:
    chosen = [p for p in phases if threshold.phase is None or p.name == threshold.phase]
    observed, requests = observe(threshold.figure, chosen)
    return ThresholdOutcome(
        name=threshold.key,
        figure=threshold.figure,
        phase=threshold.phase,
        comparison=threshold.comparison,
        limit=threshold.limit,
        observed=observed,
        passed=observed is not None and threshold.holds(observed),
        requests=requests,
    )


def observe(figure: str, phases: Sequence[PhaseStats]) -> tuple[float | None, int]:
    """The figure over ``phases`` together, and the requests it was taken over."""
    sent = sum(p.sent for p in phases)
    unsent = sum(p.unsent for p in phases)
    spec = FIGURES[figure]
    if spec.kind == "latency":
        merged = merged_latency(phases)
        assert spec.percentile is not None
        return (merged.percentile(spec.percentile) if merged.count else None), merged.count
    if figure == "errors":
        return (sum(p.error_count for p in phases) / sent if sent else None), sent
    if figure == "late":
        reached = sent + unsent
        late = sum(p.late for p in phases) + unsent
        return (late / reached if reached else None), reached
    return _rate_ratio(phases, sent, unsent), sent + unsent


def _rate_ratio(phases: Sequence[PhaseStats], sent: int, unsent: int) -> float | None:
    """Achieved over intended send rate: the pace between the first and the last send (of
    any of ``phases``), times the share of requests sent at all."""
    active = [p for p in phases if p.sent]
    if sent < 2 or not active:
        return None
    intended = max(p.last_intended for p in active) - min(p.first_intended for p in active)
    actual = max(p.last_sent_at for p in active) - min(p.first_sent_at for p in active)
    if intended <= 0:
        return None
    pace = intended / actual if actual > 0 else math.inf
    return min(pace, 1e9) * sent / (sent + unsent)
