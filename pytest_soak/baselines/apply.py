"""A fresh result against its committed baseline: what the comparison means for the verdict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_soak.baselines.comparison import (
    DEFAULT_TOLERANCE,
    Tolerance,
    compare,
    compare_latency,
)
from pytest_soak.baselines.environment import Environment
from pytest_soak.baselines.record import Baseline
from pytest_soak.baselines.store import BaselineFile, baseline_path
from pytest_soak.probes import metric_named
from pytest_soak.result import SoakResult
from pytest_soak.settings import Settings


@dataclass(frozen=True)
class BaselineContext:
    """Where this test's baseline lives and what the session asked for."""

    test_file: Path
    test_name: str
    label: str = ""
    update: bool = False
    strict: bool = False

    @property
    def path(self) -> Path:
        return baseline_path(self.test_file)

    def display_path(self) -> str:
        try:
            return str(self.path.relative_to(Path.cwd()))
        except ValueError:
            return str(self.path)


def tolerance_for(settings: Settings, metric: str) -> Tolerance:
    """The marker's tolerance (default 25%), its absolute part never below the metric's noise
    floor: ``tolerance="20%"`` over a flat baseline must not make noise a regression."""
    given = DEFAULT_TOLERANCE if settings.tolerance is None else settings.tolerance
    return dataclasses.replace(given, absolute=max(given.absolute, metric_named(metric).noise))


def apply_baseline(result: SoakResult, settings: Settings, context: BaselineContext) -> None:
    """Compare ``result`` with its baseline and adjust its verdict:

    * over baseline + tolerance: ``regression`` (or stays ``leak``), with both numbers;
    * within it: a ``leak`` the baseline already accepted becomes ``ok`` (said in the reason);
    * much better: noted, prompting an update;
    * no baseline for this environment: noted; an ``error`` under ``--soak-strict``.

    With ``--soak-update-baselines`` the result *is* the new baseline (written by the
    controller at the end of the session), so it is within it by definition."""
    environment = Environment.current(context.label)
    primary = result.analysis.primary
    info: dict[str, Any] = {
        "path": str(context.path),
        "test": context.test_name,
        "environment": dataclasses.asdict(environment),
    }
    result.baseline = info
    if not settings.baseline or primary is None or result.verdict == "error":
        info["status"] = "skipped"
        return
    if context.update:
        # What the leak rule said is recorded, not the "ok" of having recorded it. The
        # controller writes the file from this record (it only sees what workers send).
        record = Baseline.from_result(context.test_name, result, settings, environment)
        info.update(status="recorded", rule_verdict=result.verdict, record=record.to_json())
        if result.verdict == "leak":
            result.verdict = "ok"
            result.reason = f"recorded as the new baseline ({result.reason})"
        return
    store = BaselineFile.load(context.path)
    baseline = store.get(context.test_name, environment.key)
    if baseline is None:
        others = store.environments(context.test_name)
        if others:
            nearest = store.get(context.test_name, others[0])
            differs = environment.differences(nearest.environment) if nearest else []
            note = (
                f"no baseline for this environment ({environment.key}) in "
                f"{context.display_path()}; it has: {', '.join(others)}"
                + (f" ({'; '.join(differs)})" if differs else "")
                + " — compare skipped, not guessed"
            )
        else:
            note = "no baseline yet: run with --soak-update-baselines to record one"
        info.update(status="missing", note=note)
        if context.strict:
            result.verdict = "error"
            result.reason = f"--soak-strict: {note}"
        return
    if baseline.metric != primary.metric:
        note = (
            f"the baseline measured {baseline.metric}, this run {primary.metric}: compare "
            "skipped; re-record it with --soak-update-baselines"
        )
        info.update(status="missing", note=note)
        if context.strict:
            result.verdict = "error"
            result.reason = f"--soak-strict: {note}"
        return
    comparison = compare(
        baseline,
        observed_growth=primary.growth,
        requests_measured=primary.requests_measured,
        tolerance=tolerance_for(settings, primary.metric),
        path=context.display_path(),
    )
    info.update(
        status=comparison.status,
        expected=comparison.expected,
        allowed=comparison.allowed,
        observed=comparison.observed,
        message=comparison.message,
    )
    if comparison.status == "over":
        if result.verdict != "leak":
            result.verdict = "regression"
            result.reason = f"memory growth over the baseline: {comparison.message}"
    elif result.verdict == "leak" and baseline.verdict == "leak":
        # The recorded run leaked the same way and someone accepted it (--soak-update-baselines).
        # A baseline that did not leak never licenses a leak, whatever the tolerance.
        result.verdict = "ok"
        result.reason = f"grows, but within its accepted baseline: {comparison.message}"
    if comparison.status == "better":
        info["note"] = comparison.message
    _apply_latency(result, settings, baseline, info, context)


def _apply_latency(
    result: SoakResult,
    settings: Settings,
    baseline: Baseline,
    info: dict[str, Any],
    context: BaselineContext,
) -> None:
    """With ``latency_tolerance`` set, each phase's p50/p95/p99 against the same baseline (the
    same environment key): over baseline + ``latency_tolerance`` is a ``regression`` too (a
    ``leak`` stays a leak; the reason then says both). Figures over only by the harness's own
    send lag (status ``late``) fail nothing and are said in the baseline's note."""
    tolerance = settings.latency_tolerance
    if tolerance is None:
        return  # latency not asked for: neither recorded nor compared
    latency = compare_latency(
        baseline, result.analysis.phases, tolerance=tolerance, path=context.display_path()
    )
    info["latency"] = {
        "status": latency.status,
        "tolerance": str(tolerance),
        "compared": latency.compared,
        "over": [dict(o) for o in latency.over],
        "excused": [dict(o) for o in latency.excused],
        "message": latency.message,
    }
    if latency.status == "late":
        # Not a regression and not a pass to keep quiet about: said wherever notes are.
        info["note"] = "; ".join(filter(None, (info.get("note"), latency.message)))
    if latency.status != "over":
        return
    if result.verdict in ("ok", "suspicious", "inconclusive"):
        result.verdict = "regression"
        result.reason = latency.message
    else:
        result.reason = f"{result.reason}; and {latency.message}"
