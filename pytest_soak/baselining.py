"""Baselines applied to results: compare a fresh result with its committed baseline, and (on
the controller only) write or prune baseline files from result dicts.

``baselines.py`` is the store (pure data and files); this module decides what a comparison
means for a verdict.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_soak.analysis import NOISE_FLOORS
from pytest_soak.baselines import (
    BASELINE_DIR,
    DEFAULT_TOLERANCE,
    Baseline,
    BaselineFile,
    Environment,
    Tolerance,
    baseline_path,
    compare,
)
from pytest_soak.errors import SoakError
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
    given = DEFAULT_TOLERANCE if settings.tolerance is None else Tolerance.parse(settings.tolerance)
    return dataclasses.replace(given, absolute=max(given.absolute, NOISE_FLOORS.get(metric, 0.0)))


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
        info.update(status="recorded", rule_verdict=result.verdict)
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


def write_baselines(results: Iterable[Mapping[str, Any]]) -> tuple[list[str], bool]:
    """Write the results recorded under --soak-update-baselines, one file per test module.

    Only tests that passed are recorded (a run whose test then failed its own assertions is no
    baseline). Each file stands alone: a broken one is reported and the others are written.
    Returns the notes for the summary and whether everything that should be written was."""
    by_file: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    notes: list[str] = []
    for result in results:
        info = result.get("baseline") or {}
        if info.get("status") != "recorded":
            continue
        if result.get("outcome") != "passed":
            notes.append(f"soak baseline not recorded for {result['test_id']}: the test failed")
            continue
        target = Path(str(info.get("path", "")))
        if target.parent.name != BASELINE_DIR or target.suffix != ".json":
            notes.append(f"soak baseline not recorded for {result['test_id']}: bad path {target}")
            continue
        by_file[str(target)].append(result)
    complete = True
    for path in sorted(by_file):
        try:
            changed = _write_file(path, by_file[path])
        except (SoakError, KeyError, TypeError, ValueError) as exc:
            complete = False
            notes.append(f"soak baselines NOT written to {path}: {exc}")
            continue
        state = f"written: {path} ({', '.join(changed)})" if changed else f"unchanged: {path}"
        notes.append(f"soak baselines {state}")
    return notes, complete


def _write_file(path: str, results: list[Mapping[str, Any]]) -> list[str]:
    store = BaselineFile.load(path)
    changed = []
    for result in sorted(results, key=lambda r: str(r["baseline"]["test"])):
        info = result["baseline"]
        # The file records what the leak rule said, not the "ok" of having recorded it.
        as_judged = {**result, "verdict": info.get("rule_verdict", result["verdict"])}
        baseline = Baseline.from_result(
            str(info["test"]), as_judged, Environment(**info["environment"])
        )
        if store.put(baseline):
            changed.append(baseline.test)
    if changed:
        store.save()
    return changed


def prune_baselines(collected: Mapping[str, set[str]]) -> list[str]:
    """Remove baselines of tests that no longer exist in the modules this session collected
    (``collected`` holds every test, deselected ones too, so their baselines stay)."""
    notes = []
    for module in sorted(collected):
        path = baseline_path(module)
        if not path.is_file():
            continue
        store = BaselineFile.load(path)
        # "test_x#2" is the second soak.run of test_x: it lives and goes with test_x.
        gone = [test for test in store.tests() if test.split("#")[0] not in collected[module]]
        if gone:
            store.remove(gone)
            store.save()
            notes.append(f"soak baselines pruned from {path}: {', '.join(sorted(gone))}")
    return notes
