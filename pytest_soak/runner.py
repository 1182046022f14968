"""One soak run, end to end: target + traffic + settings -> replay with probes -> SoakResult.

This is the only place where the driver, the probes and the analysis meet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

import psutil

from pytest_soak.analysis import Analysis, Limits, SiteGrowth, analyze, site_growth
from pytest_soak.baselines import traffic_fingerprint
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay, replay_closed
from pytest_soak.driver.run import Checkpoint, Run
from pytest_soak.driver.targets import ServedProcess, Target, as_target
from pytest_soak.errors import DriverError, ProfileError, SoakFailure
from pytest_soak.probes import (
    FloorTable,
    ProcessTree,
    PythonHeap,
    Sampler,
    read_floor,
    settle_in_process,
)
from pytest_soak.profiles import RecordedTimeline, Timeline
from pytest_soak.result import SoakResult
from pytest_soak.settings import Settings
from pytest_soak.traffic.model import Traffic

#: Checkpoint 0 is before any load; checkpoint 1 ends the warm-up: floors from it on are judged.
WARMUP_CHECKPOINT = 1
#: Verdicts that get an attribution pass (in process: which allocation sites hold the growth).
ATTRIBUTE = ("leak", "suspicious", "inconclusive")
#: Attribution pass: tracemalloc depth (LEAK-RULE.md: with 5 frames a real leak collapsed into
#: asyncio internals), most requests, and its time limit.
ATTRIBUTION_FRAMES = 25
ATTRIBUTION_MAX_REQUESTS = 2000
ATTRIBUTION_TIME_LIMIT = 60.0

#: Endpoints listed in a result (most frequent first): enough to see the traffic's mix.
MAX_ENDPOINTS_REPORTED = 50
#: Fewest requests per segment between floors for a verdict to mean anything.
MIN_REQUESTS_PER_SEGMENT = 10

#: Share of the planned requests that is always warm-up (excluded from the verdict) ...
WARMUP_SHARE = 0.12
#: ... extended to one full pass over the traffic file, but never beyond this share.
WARMUP_MAX_SHARE = 0.4


def plan_checkpoints(planned: int, traffic_length: int, measured_segments: int) -> list[int]:
    """Request counts at which to pause for a floor: before any load, at the end of the
    warm-up, then ``measured_segments`` equal segments to the end."""
    if planned <= 0:
        return [0]
    warmup = max(planned * WARMUP_SHARE, min(float(traffic_length), planned * WARMUP_MAX_SHARE))
    warmup = min(warmup, planned * WARMUP_MAX_SHARE)
    step = (planned - warmup) / measured_segments
    points = [0, round(warmup)]
    points.extend(round(warmup + step * k) for k in range(1, measured_segments + 1))
    return sorted(set(points))


def run_soak(
    target: object,
    traffic: Traffic,
    settings: Settings,
    *,
    test_id: str = "",
    check: bool = True,
) -> SoakResult:
    """Replay ``traffic`` against ``target`` shaped by ``settings``; judge memory."""
    resolved = as_target(target, allowed_hosts=settings.allowed_hosts)
    if not len(traffic):
        raise DriverError(f"{traffic.path}: no exchanges to replay (after filters)")
    if not resolved.pids():
        raise DriverError(
            f"{resolved.describe()}: no process to measure; pass pid= to soak.url(...)"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise DriverError(
            "soak.run() was called inside a running event loop (an async test?); "
            "call it from a plain (sync) test function: it runs its own loop"
        )
    timeline: Timeline | RecordedTimeline
    if settings.replay == "recorded":
        timeline = RecordedTimeline(
            [exchange.offset for exchange in traffic],
            speed=settings.speed,
            max_gap=settings.max_gap,
            wall_seconds=settings.duration,
        )
        shape, raise_hint = f"the recording at speed={settings.speed:g}", "speed or duration"
        profile_name, peak_rps = f"recorded x{settings.speed:g}", timeline.peak_rps
    else:
        timeline = settings.profile.timeline(settings.peak_rps, settings.duration)
        shape = f"peak_rps={settings.peak_rps:g} with profile {settings.profile.name!r}"
        raise_hint = "peak_rps or duration"
        profile_name, peak_rps = settings.profile.name, settings.peak_rps
    minimum = MIN_REQUESTS_PER_SEGMENT * (settings.measured_segments + 1)
    if timeline.request_count < minimum:
        raise ProfileError(
            f"{shape} over duration={settings.duration:g}s plans only "
            f"{timeline.request_count} requests; a verdict needs at least {minimum} "
            f"({MIN_REQUESTS_PER_SEGMENT} per measured segment): raise {raise_hint}"
        )
    checkpoints = plan_checkpoints(timeline.request_count, len(traffic), settings.measured_segments)
    phases = plan_phases(timeline)
    session = _ProbeSession(resolved, settings)
    live = LiveState()
    sampler = Sampler(
        session.sample, lambda: live.phase, settings.sample_interval, paused=lambda: live.paused
    )
    floors = FloorTable(len(checkpoints))

    def on_checkpoint(point: Checkpoint) -> None:
        floors.store(session.floor())

    async def drive() -> tuple[Run, Analysis]:
        await resolved.before_run()
        try:
            run = await replay(
                resolved,
                traffic,
                timeline.arrivals(),
                planned_requests=timeline.request_count,
                phases=phases,
                wall_seconds=settings.duration,
                profile=profile_name,
                peak_rps=peak_rps,
                checkpoints=checkpoints,
                on_checkpoint=on_checkpoint,
                config=ReplayConfig(concurrency=settings.concurrency),
                live=live,
            )
            sampler.stop()
            analysis = judge(run, floors.rows())
            if session.heap is not None and analysis.verdict in ATTRIBUTE and not run.aborted:
                segment = (checkpoints[-1] - checkpoints[1]) // settings.measured_segments
                sites, replayed = await attribute(
                    resolved, traffic, session.heap, start=run.sent, count=segment
                )
                analysis = dataclasses.replace(analysis, sites=sites, attribution_requests=replayed)
            return run, analysis
        finally:
            await resolved.after_run()

    def judge(run: Run, rows: list[dict[str, float]]) -> Analysis:
        return analyze(
            run,
            rows,
            warmup=min(WARMUP_CHECKPOINT, max(0, len(rows) - 1)),
            metrics=session.judged_metrics,
            secondary=session.secondary_metrics,
            secondary_reason=session.secondary_reason,
            limits=Limits(settings.max_growth, settings.max_growth_per_request),
            extremes=sampler.phases,
            sample_metric=session.sample_metric,
        )

    session.start()
    sampler.start()
    try:
        run, analysis = asyncio.run(drive())
    finally:
        sampler.stop()
        session.stop()
    result = SoakResult(
        test_id=test_id,
        verdict=analysis.verdict,
        reason=analysis.reason,
        mode=settings.mode,
        settings=_settings_summary(settings),
        run=run,
        analysis=analysis,
        floors=floors.rows(),
        samples=list(sampler.series.points),
        harness=session.harness,
        traffic={
            "path": traffic.path,
            "format": traffic.format,
            "exchanges": len(traffic),
            "skipped": len(traffic.skipped),
            "fingerprint": traffic_fingerprint((e.method, e.target, e.body) for e in traffic),
            "endpoints": dict(list(traffic.endpoints().items())[:MAX_ENDPOINTS_REPORTED]),
        },
        service_output=resolved.output_tail() if isinstance(resolved, ServedProcess) else "",
    )
    if check and result.failed:
        raise SoakFailure(result.explain())
    return result


async def attribute(
    target: Target, traffic: Traffic, heap: PythonHeap, *, start: int, count: int
) -> tuple[tuple[SiteGrowth, ...], int]:
    """The attribution pass: restart tracemalloc with deep tracebacks, replay ``count`` more
    requests, collect garbage, and report which sites hold what those requests left behind.

    Tracing from scratch means the snapshot holds only what survived the pass, so it is small
    and cheap even on a big heap; deep tracing costs 5-12x, which is why the measured run
    does not pay it (LEAK-RULE.md)."""
    heap.restart(ATTRIBUTION_FRAMES)
    try:
        settle_in_process()
        before, _ = heap.sites()
        replayed = await replay_closed(
            target,
            traffic,
            start=start,
            count=max(50, min(count, ATTRIBUTION_MAX_REQUESTS)),
            concurrency=4,
            time_limit=ATTRIBUTION_TIME_LIMIT,
        )
        settle_in_process()
        after, _ = heap.sites()
    finally:
        heap.restart(heap.frames)
    return site_growth(before, after), replayed


class _ProbeSession:
    """Which probes a target gets: in process the Python heap (tracemalloc) and this process's
    RSS; out of process the RSS/USS of the target's process tree."""

    def __init__(self, target: Target, settings: Settings) -> None:
        self.target = target
        self.in_process = target.in_process
        self.heap = (
            PythonHeap(settings.tracemalloc_frames, service_dirs=target.source_dirs())
            if self.in_process
            else None
        )
        pids = target.pids()
        self.tree = ProcessTree(pids, children=not self.in_process) if pids else None
        self.me = psutil.Process(os.getpid())
        self.harness: dict[str, float] = {}
        if self.in_process:
            self.judged_metrics: list[str] = ["heap"]
            self.secondary_metrics: list[str] = ["rss"]
            self.secondary_reason = "in process, RSS includes the harness"
            self.sample_metric = "heap"
        else:
            self.secondary_reason = "RSS counts pages shared with other processes; USS is judged"
            self.judged_metrics = ["uss"] if self.tree is not None else []
            self.secondary_metrics = ["rss"] if self.tree is not None else []
            self.sample_metric = "rss"

    def start(self) -> None:
        if self.heap is not None:
            self.heap.start()
        self.harness["rss_start"] = float(self.me.memory_info().rss)

    def stop(self) -> None:
        self.harness["rss_end"] = float(self.me.memory_info().rss)
        if self.heap is not None:
            self.heap.stop()

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self.tree is not None:
            values.update(self.tree.read())
        if self.heap is not None:
            values.update(self.heap.read())
        return values

    def floor(self) -> dict[str, float]:
        if self.heap is not None:
            settle_in_process()
            reads = [self.heap.read]
            if self.tree is not None:
                reads.append(self.tree.read)
            return read_floor(reads)
        if self.tree is None:
            return {}
        tree = self.tree
        return read_floor([lambda: tree.read(uss=True)])


def _settings_summary(settings: Settings) -> dict[str, Any]:
    return {
        "profile": settings.profile.name,
        "peak_rps": settings.peak_rps,
        "duration": settings.duration,
        "mode": settings.mode,
        "concurrency": settings.concurrency,
        "max_growth": settings.max_growth,
        "max_growth_per_request": settings.max_growth_per_request,
        "seed": settings.seed,
        "replay": settings.replay,
        **(
            {"speed": settings.speed, "max_gap": settings.max_gap}
            if settings.replay == "recorded"
            else {}
        ),
    }
