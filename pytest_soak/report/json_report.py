"""JSON results (``--soak-json``): one document with every soak result of the session."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult

SCHEMA_VERSION = 1


def result_to_dict(result: SoakResult) -> dict[str, Any]:
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
    """Write result dicts atomically (temp file + rename): a crash never leaves half a report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"schema": SCHEMA_VERSION, "tool": "pytest-soak", "results": list(results)}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, default=str)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
