"""JSON results (``--soak-json``): one document with every soak result of the session."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_soak.analysis.thresholds import ThresholdOutcome, verdict_line
from pytest_soak.files import write_atomic
from pytest_soak.probes import metric_named
from pytest_soak.traffic.redaction import redact_text

if TYPE_CHECKING:
    from pytest_soak.report.subject import ResultView

#: 2: identical load cycles (``cycles``, ``cycle_requests``, ``traffic.cycle``); judgements
#: carry ``grew_every_cycle``, ``step_noise`` and ``trend_growth``; ``growth_bytes`` is the one
#: growth figure (last measured floor minus the warm-up's).
#: 3: run metadata at the top (``version``, ``started``, ``environment``, ``git_commit`` when the
#: rootdir is a git checkout, ``interrupted``); figures rounded (bytes to whole numbers, other
#: metrics to 4 significant digits unless whole, seconds to ms, rates to 0.01, p-values to 3
#: significant digits); secret values in any text (``token=***``) masked. docs/json.md
#: describes every field and ``schema/results.schema.json`` checks them.
SCHEMA_VERSION = 3


def result_to_dict(result: ResultView) -> dict[str, Any]:
    run = result.run
    return {
        "test_id": result.test_id,
        "verdict": result.verdict,
        "reason": result.reason,
        "mode": result.mode,
        "settings": result.settings,
        "traffic": result.traffic,
        "metric": result.analysis.metric,
        "growth_bytes": result.growth,
        "growth_per_request_bytes": result.growth_per_request,
        "judgements": [
            {k: v for k, v in dataclasses.asdict(j).items()} for j in result.analysis.judgements
        ],
        "run": {
            "target": run.target,
            "profile": run.profile,
            "peak_rps": run.peak_rps,
            "wall_seconds": run.wall_seconds,
            "elapsed_seconds": run.elapsed,
            "paused_seconds": run.paused,
            "planned_requests": run.planned_requests,
            "sent": run.sent,
            "errors": run.errors,
            "late": run.late,
            "capped": run.capped,
            "unsent": run.unsent,
            "aborted": run.aborted,
        },
        "phases": [dataclasses.asdict(p) for p in result.analysis.phases],
        "checkpoints": [
            cp.row(floor) for cp, floor in zip(run.checkpoints, result.floors, strict=False)
        ],
        "warmup_checkpoints": result.analysis.warmup_checkpoints,
        "cycle_requests": result.analysis.cycle_requests,
        "cycles": [dataclasses.asdict(c) for c in result.analysis.cycles],
        "sites": [
            {
                "site": str(s.site),
                "file": s.site.filename,
                "line": s.site.lineno,
                "function": s.site.function,
                "growth_bytes": s.growth,
                "size_bytes": s.size,
            }
            for s in result.analysis.sites
        ],
        "notes": list(result.analysis.notes),
        "baseline": result.baseline,
        "isolation": result.isolation,
        "mocks": result.mocks,
        "thresholds": [threshold_entry(outcome) for outcome in result.thresholds],
        "harness": result.harness,
        "samples": sample_rows(result.samples),
    }


def sample_rows(samples: Iterable[tuple[float, Mapping[str, float]]]) -> list[dict[str, Any]]:
    """Memory samples as the reports keep them: ``t`` (s, to the ms) and metric -> reading."""
    return [{"t": round(t, 3), **values} for t, values in samples]


def threshold_entry(outcome: ThresholdOutcome) -> dict[str, Any]:
    """One judged threshold as the JSON has it (docs/json.md ``thresholds``)."""
    return {
        "name": outcome.name,
        "figure": outcome.figure,
        "phase": outcome.phase,
        "kind": outcome.kind,
        "comparison": outcome.comparison,
        "limit": outcome.limit,
        "observed": outcome.observed,
        "passed": outcome.passed,
        "requests": outcome.requests,
        "text": outcome.describe(),
    }


def threshold_parts(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """A JSON threshold entry as the renderers lay it out: its mark, its name, and the rest of
    its text (``("✓", "p99", "4.12ms <= 250ms")``)."""
    mark, _, rest = str(entry.get("text", "")).partition(" ")
    return mark, str(entry.get("name", "?")), rest


def thresholds_crossed(result: Mapping[str, Any]) -> int:
    """How many of a result dict's thresholds were crossed."""
    return sum(1 for entry in result.get("thresholds") or () if not entry.get("passed"))


def verdict_text(result: Mapping[str, Any]) -> str:
    """A result dict's verdict as the reports show it: ``LEAK``; with thresholds
    ``OK (memory), 1 threshold crossed`` or ``OK (memory), all 3 thresholds kept``."""
    count = len(result.get("thresholds") or ())
    return verdict_line(str(result.get("verdict", "?")), count, thresholds_crossed(result))


def json_document(
    results: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
    *,
    cut_short: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``--soak-json`` document: the run's ``metadata`` (``version``, ``started``,
    ``environment``, ``git_commit``, ``interrupted``: the plugin knows them), the results and,
    after Ctrl-C, what the run cut short had measured; rounded and with secrets masked
    (docs/json.md)."""
    document: dict[str, Any] = {"schema": SCHEMA_VERSION, "tool": "pytest-soak"}
    document.update(redact_values(dict(metadata or {})))
    document.setdefault("interrupted", False)
    document["results"] = [public_result(r) for r in results]
    if cut_short:
        document["cut_short"] = [public_result(m) for m in cut_short]
    return document


def public_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A result as every report shows it (JSON, OpenMetrics, JUnit, HTML): its figures
    rounded for reading, secret values masked."""
    public: dict[str, Any] = redact_values(rounded_result(result))
    return public


def primary_judgement(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The judgement of the metric that gave the verdict (``result["metric"]``), if any."""
    metric = result.get("metric")
    for judgement in result.get("judgements") or ():
        if judgement.get("metric") == metric:
            found: Mapping[str, Any] = judgement
            return found
    return None


def write_json(
    path: str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
    *,
    cut_short: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the document atomically (``write_atomic``): a crash never leaves half a report."""
    document = json_document(results, metadata, cut_short=cut_short)
    return write_atomic(path, json.dumps(document, indent=1, default=str) + "\n")


def schema_path() -> Path:
    """The JSON Schema of the ``--soak-json`` document (shipped with the package)."""
    return Path(__file__).with_name("schema") / "results.schema.json"


# -- secrets ------------------------------------------------------------------------------------


def redact_values(value: Any) -> Any:
    """``value`` with every string (dict keys included) passed through ``redact_text``."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_text(str(k)): redact_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_values(v) for v in value]
    return value


# -- rounding -----------------------------------------------------------------------------------

_SECONDS = frozenset(
    {"wall_seconds", "elapsed_seconds", "paused_seconds", "wall_time", "t", "p50", "p95", "p99"}
    | {"lateness_p99", "seconds", "planned_seconds", "cycle_seconds"}  # isolation's trials
)
_RATES = frozenset({"peak_rps", "target_rps", "achieved_rps", "rate_accuracy", "share", "passes"})
_P_VALUES = frozenset({"p_value"})
#: Figures of the judged metric (bytes for the built-in memory metrics).
_FIGURES = frozenset(
    {"growth_bytes", "growth_per_request_bytes", "growth_per_request", "slope", "growth"}
    | {"growth_per_request_with"}  # isolation: the whole traffic's, as growth_per_request_bytes
    | {"trend_growth", "threshold", "step_noise", "second_half_slope", "floors", "floor"}
    | {"mem_start", "mem_end", "mem_floor", "mem_peak", "floor_growth", "size_bytes"}
)
#: Dicts of readings, one value per metric (each rounded by its own metric's unit).
_READINGS = frozenset({"floor"})


def rounded_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A result dict with its figures rounded for reading: bytes to whole numbers (other
    metrics to 4 significant digits unless whole), seconds to ms, rates to 0.01, p-values to 3
    significant digits. Results stay exact in memory (baselines are recorded from them)."""
    rounded: dict[str, Any] = _rounded(result, str(result.get("metric", "")))
    thresholds = result.get("thresholds")
    if isinstance(thresholds, list):  # seconds, shares and ratios: 4 significant digits
        rounded["thresholds"] = [
            {
                k: _significant(v, 4) if k in ("limit", "observed") and isinstance(v, float) else v
                for k, v in entry.items()
            }
            for entry in thresholds
            if isinstance(entry, Mapping)
        ]
    harness = result.get("harness")
    if isinstance(harness, Mapping):  # the harness's own RSS: bytes
        rounded["harness"] = {k: _round_bytes(v) for k, v in harness.items()}
    return rounded


def _rounded(value: Any, metric: str, key: str = "") -> Any:
    if isinstance(value, Mapping):
        metric = str(value.get("metric") or value.get("memory_metric") or metric)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in _READINGS and isinstance(v, Mapping):
                out[k] = _readings(v)
            elif k == "samples" and isinstance(v, list):
                out[k] = [_readings(s) if isinstance(s, Mapping) else s for s in v]
            else:
                out[k] = _rounded(v, metric, str(k))
        return out
    if isinstance(value, (list, tuple)):
        return [_rounded(v, metric, key) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return _round_number(value, metric, key)


def _round_number(value: float, metric: str, key: str) -> float:
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    if key in _SECONDS:
        return round(value, 3)
    if key in _RATES:
        return round(value, 2)
    if key in _P_VALUES:
        return _significant(value, 3)
    if key in _FIGURES:
        return _round_figure(value, metric)
    return value


def _readings(readings: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in readings.items():
        if name == "t" or isinstance(value, bool) or not isinstance(value, (int, float)):
            out[name] = round(value, 3) if name == "t" and isinstance(value, float) else value
        else:
            out[name] = _round_figure(float(value), name)
    return out


def _round_figure(value: float, metric: str) -> float:
    if not math.isfinite(value):
        return value
    if metric_named(metric).unit == "bytes" or value.is_integer():
        return round(value)  # counts (blocks, collections) stay exact too
    return _significant(value, 4)


def _round_bytes(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return value


def _significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}") if value else 0.0
