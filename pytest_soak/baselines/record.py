"""The baseline of one test in one environment, made from a ``SoakResult``.

``Baseline.from_result`` reads the typed result (the run, the analysis, the floors) on whichever
process ran the test. The pytest-xdist controller, which writes the files, only sees what the
workers send: ``to_json``/``from_json`` carry a baseline there unchanged (not yet rounded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pytest_soak.baselines.environment import Environment

if TYPE_CHECKING:
    from pytest_soak.analysis import PhaseSummary
    from pytest_soak.result import SoakResult
    from pytest_soak.settings import Settings


@dataclass(frozen=True)
class PhaseRecord:
    """One load phase: its requests, how much the judged metric's floors grew in it, its floor;
    and its latency percentiles (seconds) and error rate (None in a file recorded before
    they were: latency is then not compared)."""

    name: str
    requests: int
    floor_growth: float
    floor: float | None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    error_rate: float | None = None


#: The latency percentiles a phase records and compares (seconds), and with its error rate
#: the optional latency keys of a phase in a baseline file.
LATENCY_PERCENTILES = ("p50", "p95", "p99")
PHASE_LATENCY_KEYS = (*LATENCY_PERCENTILES, "error_rate")


@dataclass(frozen=True)
class Baseline:
    """One test in one environment. Figures are in the judged metric's unit (bytes, or blocks
    for ``metric="blocks"``); the settings and traffic fingerprint say what the figures are of,
    so a reviewer can tell a real change from a changed test."""

    test: str
    environment: Environment
    metric: str
    growth_per_request: float
    growth: float
    requests_measured: int
    requests: int
    profile: str
    peak_rps: float
    duration: float
    mode: str
    traffic_path: str
    traffic_fingerprint: str
    verdict: str
    phases: tuple[PhaseRecord, ...]
    plugin_version: str

    @classmethod
    def from_result(
        cls, test: str, result: SoakResult, settings: Settings, environment: Environment
    ) -> Baseline:
        """What ``result`` (run with ``settings``) recorded; its verdict is the leak rule's."""
        analysis = result.analysis
        primary = analysis.primary
        return cls(
            test=test,
            environment=environment,
            metric=analysis.metric,
            growth_per_request=float(result.growth_per_request),
            growth=float(result.growth),
            requests_measured=primary.requests_measured if primary is not None else 0,
            requests=result.run.sent,
            profile=settings.profile.name,
            peak_rps=float(settings.peak_rps),
            duration=float(settings.duration),
            mode=settings.mode,
            traffic_path=str(result.traffic.get("path", "")),
            traffic_fingerprint=str(result.traffic.get("fingerprint", "")),
            verdict=result.verdict,
            phases=tuple(
                PhaseRecord(
                    name=phase.name,
                    requests=phase.requests,
                    floor_growth=float(phase.floor_growth),
                    floor=_phase_floor(result, index, analysis.metric),
                    **(_latency(phase) if settings.latency_tolerance is not None else {}),
                )
                for index, phase in enumerate(analysis.phases)
            ),
            plugin_version=_plugin_version(),
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able and exact: ``from_json(to_json())`` gives this baseline back."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(
            **{
                **data,
                "environment": Environment(**data["environment"]),
                "phases": tuple(PhaseRecord(**phase) for phase in data["phases"]),
            }
        )


def _latency(phase: PhaseSummary) -> dict[str, float | None]:
    """A phase's latency percentiles and error rate (recorded when the test compares latency:
    ``latency_tolerance``); none for a phase without requests."""
    if not phase.requests:
        return {}
    latency: dict[str, float | None] = {
        name: float(getattr(phase, name)) for name in LATENCY_PERCENTILES
    }
    latency["error_rate"] = phase.errors / phase.requests
    return latency


def _phase_floor(result: SoakResult, phase: int, metric: str) -> float | None:
    """Memory retained at the phase's last measured checkpoint *above the warm-up's floor*
    (collected and quiesced). Relative, because an absolute floor carries the process's
    history (lazy imports, allocator high-water marks of whatever ran before) and would
    differ between two runs of the same test; ``None`` for a phase that ended in the warm-up."""
    checkpoints = list(zip(result.run.checkpoints, result.floors, strict=False))
    warmup = result.analysis.warmup_checkpoints
    if warmup >= len(checkpoints):
        return None
    base = checkpoints[warmup][1].get(metric)
    floors = [
        floor[metric]
        for checkpoint, floor in checkpoints[warmup:]
        if checkpoint.phase == phase and metric in floor
    ]
    if base is None or not floors:
        return None
    return float(floors[-1]) - float(base)


def _plugin_version() -> str:
    from pytest_soak import __version__

    return __version__


def traffic_fingerprint(exchanges: Iterable[tuple[str, str, bytes]]) -> str:
    """``sha256:<16 hex>`` of the requests in order: a baseline recorded with other traffic
    shows up in review as a changed fingerprint. Each field is length-prefixed, so no two
    different sequences share an encoding."""
    digest = hashlib.sha256()
    for method, target, body in exchanges:
        for field in (method.encode("utf-8"), target.encode("utf-8"), bytes(body)):
            digest.update(len(field).to_bytes(8, "big"))
            digest.update(field)
    return f"sha256:{digest.hexdigest()[:16]}"
