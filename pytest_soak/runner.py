"""One soak run, end to end: target + traffic + settings -> identical load cycles with probes
-> SoakResult.

This is the only place where the driver, the probes and the analysis meet. A run is a series
of identical *cycles* (docs/leak-rule.md): each replays the same requests (``traffic.cycle``
chooses them from the recording) shaped by the same profile, compressed so that the warm-up and
the measured cycles fill the run's wall time. A floor is read at the end of every phase of
every cycle; the verdict uses the floors at cycle ends, the phase floors say where in the day
the growth happens. A verdict that narrowly misses gets a bounded number of extra cycles.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_soak.analysis import Analysis, Limits, SiteGrowth, analyze, site_growth
from pytest_soak.baselines import traffic_fingerprint
from pytest_soak.driver.clients import Client
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay, replay_closed
from pytest_soak.driver.run import Checkpoint, Run
from pytest_soak.driver.targets import ServedProcess, Target, as_target
from pytest_soak.errors import DriverError, ProfileError, SoakFailure
from pytest_soak.probes import (
    FloorTable,
    ProbeSession,
    PythonHeap,
    Sampler,
    Service,
    Site,
    settle_in_process,
)
from pytest_soak.profiles import Phase, RecordedPass, RecordedTimeline
from pytest_soak.result import SoakResult
from pytest_soak.settings import Settings
from pytest_soak.traffic.cycle import CycleChoice, choose_cycle
from pytest_soak.traffic.fresh_ids import freshen
from pytest_soak.traffic.model import Exchange, Traffic

#: Verdicts that get an attribution pass (in process: which allocation sites hold the growth);
#: ``suspicious`` passes without one (the pass costs up to a minute).
ATTRIBUTE = ("leak", "inconclusive")
#: Attribution pass: tracemalloc depth (LEAK-RULE.md: with 5 frames a real leak collapsed into
#: asyncio internals), cycles replayed after a first traced one, most requests per cycle, and
#: the pass's time limit.
ATTRIBUTION_FRAMES = 25
ATTRIBUTION_CYCLES = 2
ATTRIBUTION_MAX_REQUESTS = 2000
ATTRIBUTION_TIME_LIMIT = 60.0

#: Endpoints listed in a result (most frequent first): enough to see the traffic's mix.
MAX_ENDPOINTS_REPORTED = 50
#: Fewest requests per cycle for a verdict to mean anything.
MIN_REQUESTS_PER_CYCLE = 10


class CycleTimeline(Protocol):
    """One cycle's timing: a compressed profile (``Timeline``) or a recorded pass."""

    @property
    def wall_seconds(self) -> float: ...
    @property
    def request_count(self) -> int: ...

    def arrivals(self) -> Iterator[float]: ...
    def requests_until(self, wall_t: float) -> float: ...
    def phase_spans(self) -> Sequence[tuple[Phase, float, float]]: ...


@dataclass(frozen=True)
class CyclePlan:
    """What every cycle of a run replays, and when."""

    choice: CycleChoice
    timeline: CycleTimeline
    boundaries: tuple[int, ...]  # requests into a cycle at each phase's end (the last: size)
    profile: str
    peak_rps: float

    @property
    def size(self) -> int:
        return self.choice.size

    def checkpoints(self, cycles: int, *, first: bool) -> list[int]:
        """Request counts at which floors are read over ``cycles`` cycles: every phase end
        (and, with ``first``, before any load)."""
        points = [0] if first else []
        points.extend(k * self.size + b for k in range(cycles) for b in self.boundaries)
        return points

    def arrivals(self, cycles: int) -> Iterator[float]:
        length = self.timeline.wall_seconds
        for k in range(cycles):
            offset = k * length
            for t in self.timeline.arrivals():
                yield offset + t


class CycleLedger:
    """Which floor rows start and end which cycle, as the replays go: a cycle counts only when
    its end floor was read after exactly its planned requests (a run cut short by its
    deadline, or a service that died, leaves its last cycles incomplete and unjudged)."""

    def __init__(self, plan: CyclePlan) -> None:
        self._plan = plan
        self._rows = 0
        self._first = 0
        self._expected: list[int] = []
        self._starts: dict[int, int] = {}  # cycle -> the last floor row read before it began
        self._ends: dict[int, int] = {}  # cycle -> the floor row read at its end

    def begin(self, first: int, count: int) -> None:
        """A replay of cycles ``first`` .. ``first + count - 1`` starts (its checkpoints are
        numbered from 0, the floor before its first request)."""
        self._first = first
        self._expected = self._plan.checkpoints(count, first=True)

    def note(self, point: Checkpoint) -> None:
        row, self._rows = self._rows, self._rows + 1
        j = point.number
        if j >= len(self._expected) or point.requests != self._expected[j]:
            return  # not where the plan put it: the replay stopped early
        if j == 0:
            self._starts[self._first] = row
            return
        per_cycle = len(self._plan.boundaries)
        cycle, position = divmod(j - 1, per_cycle)
        if position == per_cycle - 1:
            self._ends[self._first + cycle] = row
            self._starts[self._first + cycle + 1] = row

    def spans(self) -> list[tuple[int, int]]:
        """(start row, end row) of each completed cycle, in order, up to the first gap."""
        out = []
        for cycle in range(len(self._ends)):
            if cycle not in self._ends or cycle not in self._starts:
                break
            out.append((self._starts[cycle], self._ends[cycle]))
        return out


def plan_cycles(traffic: Traffic, settings: Settings) -> CyclePlan:
    """Size and choose the cycle so that the warm-up and the measured cycles fill the run."""
    cycles = settings.warmup_cycles + settings.measured_cycles
    timeline: CycleTimeline
    if settings.replay == "recorded":
        whole = RecordedTimeline(
            [exchange.offset for exchange in traffic],
            speed=settings.speed,
            max_gap=settings.max_gap,
            wall_seconds=settings.duration,
        )
        size = whole.request_count // cycles
        shape, raise_hint = f"the recording at speed={settings.speed:g}", "speed or duration"
        _check_size(size, cycles, shape, settings.duration, raise_hint)
        choice = choose_cycle(traffic, size, contiguous=True)
        timeline = RecordedPass(
            _monotonic_offsets(choice, traffic), speed=settings.speed, max_gap=settings.max_gap
        )
        profile, peak = f"recorded x{settings.speed:g}", size / timeline.wall_seconds
    else:
        timeline = settings.profile.timeline(settings.peak_rps, settings.duration / cycles)
        size = timeline.request_count
        shape = f"peak_rps={settings.peak_rps:g} with profile {settings.profile.name!r}"
        _check_size(size, cycles, shape, settings.duration, "peak_rps or duration")
        choice = choose_cycle(traffic, size)
        profile, peak = settings.profile.name, settings.peak_rps
    # Requests sent before each phase's end, counted on the arrivals themselves (the driver
    # moves to the next phase by the same comparison), not estimated from the rate.
    arrivals = list(timeline.arrivals())
    ends = [bisect.bisect_left(arrivals, end) for _, _, end in timeline.phase_spans()]
    boundaries = sorted({b for b in ends[:-1] if 0 < b < size} | {size})
    return CyclePlan(choice, timeline, tuple(boundaries), profile, peak)


def _check_size(size: int, cycles: int, shape: str, duration: float, hint: str) -> None:
    if size < MIN_REQUESTS_PER_CYCLE:
        raise ProfileError(
            f"{shape} over duration={duration:g}s plans only {size} requests per load cycle "
            f"({cycles} identical cycles: the warm-up and the measured ones); a verdict needs "
            f"at least {MIN_REQUESTS_PER_CYCLE} per cycle: raise {hint}"
        )


def _monotonic_offsets(choice: CycleChoice, traffic: Traffic) -> list[float]:
    """Recorded offsets of the cycle's requests; a recording repeated to fill the cycle keeps
    counting forwards, one mean gap between passes."""
    first = traffic[0].offset
    span = traffic[-1].offset - first
    length = span + (span / (len(traffic) - 1) if len(traffic) > 1 else 1.0)
    return [
        (k // len(traffic)) * length + traffic[i].offset - first
        for k, i in enumerate(choice.indices)
    ]


def run_soak(
    target: object,
    traffic: Traffic,
    settings: Settings,
    *,
    test_id: str = "",
    check: bool = True,
    attribution: bool = True,
) -> SoakResult:
    """Replay cycles of ``traffic`` against ``target`` shaped by ``settings``; judge memory.
    ``attribution=False`` skips the attribution pass (isolation trials: only the verdict
    counts)."""
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
    plan = plan_cycles(traffic, settings)
    planned = settings.warmup_cycles + settings.measured_cycles
    session = probe_session(resolved, settings)
    live = LiveState()
    sampler = Sampler(  # extremes by the phase's position in a cycle: none made after cycle 1
        session.sample,
        lambda: live.phase,
        settings.sample_interval,
        paused=lambda: live.paused,
    )
    floors = FloorTable(1 + len(plan.boundaries) * (planned + settings.extra_cycles))
    fresh = settings.ids == "fresh"

    def exchanges_of(cycle: int) -> Sequence[Exchange]:
        return freshen(plan.choice.exchanges, cycle) if fresh else plan.choice.exchanges

    cycles = CycleLedger(plan)

    def on_checkpoint(point: Checkpoint) -> None:
        floors.store(session.floor())
        cycles.note(point)

    async def replay_cycles(first: int, count: int, client: Client) -> Run:
        cycles.begin(first, count)
        return await replay(
            resolved,
            exchanges_of(first),
            plan.arrivals(count),
            planned_requests=plan.size * count,
            phases=plan_phases(plan.timeline, range(first, first + count)),
            wall_seconds=plan.timeline.wall_seconds * count,
            profile=plan.profile,
            peak_rps=plan.peak_rps,
            checkpoints=plan.checkpoints(count, first=True),
            on_checkpoint=on_checkpoint,
            config=ReplayConfig(concurrency=settings.concurrency),
            live=live,
            cycle_exchanges=exchanges_of if fresh else None,
            client=client,
        )

    def judge(run: Run, measured: int) -> Analysis:
        live.paused = True  # judging allocates: not the service's memory
        return analyze(
            run,
            floors.rows(),
            cycle_spans=cycles.spans(),
            cycle_requests=plan.size,
            warmup_cycles=settings.warmup_cycles,
            measured_cycles=measured,
            metrics=session.judged_metrics,
            secondary=session.secondary_metrics,
            metric_table=session.metric_table,
            limits=Limits(settings.max_growth, settings.max_growth_per_request),
            extremes=sampler.phases,
            sample_metric=session.sample_metric,
        )

    async def drive() -> tuple[Run, Analysis, str]:
        await resolved.before_run()
        config = ReplayConfig(concurrency=settings.concurrency)
        client = await resolved.open_client(config.concurrency, config.request_timeout)
        try:
            run = await replay_cycles(0, planned, client)
            analysis = judge(run, settings.measured_cycles)
            extra = ""
            more = settings.extra_cycles and not run.aborted and not run.unsent
            if analysis.verdict == "inconclusive" and more:
                started = time.monotonic()
                live.paused = False
                run.absorb(await replay_cycles(planned, settings.extra_cycles, client))
                analysis = judge(run, settings.measured_cycles)
                extra = (
                    f"inconclusive after {settings.measured_cycles} measured cycles: "
                    f"{settings.extra_cycles} extra cycles replayed "
                    f"(+{time.monotonic() - started:.1f}s), then judged on all "
                    f"{settings.measured_cycles + settings.extra_cycles}"
                )
            sampler.stop()
            wanted = attribution and analysis.verdict in ATTRIBUTE
            if session.heap is not None and wanted and not run.aborted:
                sites, replayed = await attribute(
                    resolved,
                    [exchanges_of(planned + settings.extra_cycles + k) for k in range(3)],
                    session.heap,
                )
                analysis = dataclasses.replace(analysis, sites=sites, attribution_requests=replayed)
            return run, analysis, extra
        finally:
            await client.aclose()
            await resolved.after_run()

    import scipy.stats  # noqa: F401  (the verdict's statistics: loaded before any sample)

    session.start()
    sampler.start()
    try:
        run, analysis, extra = asyncio.run(drive())
    finally:
        sampler.stop()
        session.stop()
    if extra:
        analysis = dataclasses.replace(analysis, notes=(*analysis.notes, extra))
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
            "cycle": {
                **plan.choice.to_dict(),
                "summary": plan.choice.describe(),
                "wall_seconds": plan.timeline.wall_seconds,
                "ids": settings.ids,
            },
        },
        service_output=resolved.output_tail() if isinstance(resolved, ServedProcess) else "",
    )
    if check and result.failed:
        raise SoakFailure(result.explain())
    return result


async def attribute(
    target: Target, cycles: Sequence[Sequence[Exchange]], heap: PythonHeap
) -> tuple[tuple[SiteGrowth, ...], int]:
    """The attribution pass: restart tracemalloc with deep tracebacks, replay the cycle once
    (what it allocates once: imports, caches of its own keys), then ``ATTRIBUTION_CYCLES``
    more, with a snapshot after each; a site is reported by what it retained from *every*
    cycle (the smallest of its growths), so one-off allocations rank nowhere.

    Tracing from scratch means the snapshots hold only what survived the pass, so they are
    small and cheap even on a big heap; deep tracing costs 5-12x, which is why the measured
    run does not pay it (LEAK-RULE.md)."""
    heap.restart(ATTRIBUTION_FRAMES)
    deadline = time.monotonic() + ATTRIBUTION_TIME_LIMIT
    snapshots: list[dict[Site, int]] = []
    replayed = 0
    try:
        for exchanges in cycles[: ATTRIBUTION_CYCLES + 1]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            replayed = await replay_closed(
                target,
                exchanges,
                start=0,
                count=min(len(exchanges), ATTRIBUTION_MAX_REQUESTS),
                concurrency=4,
                time_limit=left,
            )
            settle_in_process()
            snapshots.append(heap.sites()[0])
    finally:
        heap.restart(heap.frames)
    return site_growth(snapshots), replayed


def probe_session(target: Target, settings: Settings) -> ProbeSession:
    """The probes of a run against ``target``: the built-in ones that apply, then the test
    suite's own (``settings.probes``, from the ``pytest_soak_probes`` hook)."""
    service = Service(
        in_process=target.in_process,
        pids=tuple(target.pids()),
        source_dirs=tuple(target.source_dirs()) if target.in_process else (),
        tracemalloc_frames=settings.tracemalloc_frames,
    )
    return ProbeSession(service, settings.probes)


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
        "ids": settings.ids,
        "warmup_cycles": settings.warmup_cycles,
        "measured_cycles": settings.measured_cycles,
        "extra_cycles": settings.extra_cycles,
        **(
            {"speed": settings.speed, "max_gap": settings.max_gap}
            if settings.replay == "recorded"
            else {}
        ),
    }
