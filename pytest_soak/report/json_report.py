"""JSON results (``--soak-json``): one document with every soak result of the session."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_soak.files import write_atomic

if TYPE_CHECKING:
    from pytest_soak.report.subject import ResultView

#: 2: identical load cycles (``cycles``, ``cycle_requests``, ``traffic.cycle``); judgements
#: carry ``grew_every_cycle``, ``step_noise`` and ``trend_growth``; ``growth_bytes`` is the one
#: growth figure (last measured floor minus the warm-up's).
SCHEMA_VERSION = 2


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
            {
                "requests": cp.requests,
                "wall_time": cp.wall_time,
                "phase": cp.phase,
                "drained": cp.drained,
                "floor": floor,
            }
            for cp, floor in zip(run.checkpoints, result.floors, strict=False)
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
        "harness": result.harness,
        "samples": [{"t": round(t, 3), **values} for t, values in result.samples],
    }


def write_json(path: str | os.PathLike[str], results: Sequence[Mapping[str, Any]]) -> Path:
    """Write result dicts atomically (``write_atomic``): a crash never leaves half a report."""
    document = {"schema": SCHEMA_VERSION, "tool": "pytest-soak", "results": list(results)}
    return write_atomic(path, json.dumps(document, indent=1, default=str) + "\n")
