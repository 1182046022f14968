"""The engine: one soak, end to end — target + traffic + settings -> ``SoakResult``.

It only composes: plan the cycles (``cycles``), replay them (``driver.replay``) with the probes
beside (``probes``), judge (``analysis``), attribute (``attribution``), and gather it all into a
``SoakResult``. This is the only place where the driver, the probes and the analysis meet. A
verdict that narrowly misses (``inconclusive``) gets a bounded number of extra cycles before it
is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_soak.analysis import Analysis, Limits, analyze
from pytest_soak.analysis.thresholds import judge_thresholds
from pytest_soak.attribution import ATTRIBUTE, attribute
from pytest_soak.baselines import traffic_fingerprint
from pytest_soak.cycles import CycleLedger, plan_cycles
from pytest_soak.driver.clients import Client
from pytest_soak.driver.records import Checkpoint, Run
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay
from pytest_soak.driver.targets import ServedProcess, Target, as_target
from pytest_soak.errors import DriverError, SoakFailure
from pytest_soak.probes import FloorTable, ProbeSession, Sampler, Service
from pytest_soak.report.json_report import sample_rows
from pytest_soak.report.progress import Progress
from pytest_soak.result import RunCutShort, SoakResult
from pytest_soak.scaleout.cluster import Cluster, open_cluster
from pytest_soak.scaleout.serving import ScaledOutTarget
from pytest_soak.settings import Settings
from pytest_soak.traffic.fresh_ids import freshen
from pytest_soak.traffic.model import Exchange, Traffic

#: Endpoints listed in a result (most frequent first): enough to see the traffic's mix.
MAX_ENDPOINTS_REPORTED = 50
#: Seconds between two reports of a run's progress.
PROGRESS_TICK = 1.0


def run_soak(
    target: object,
    traffic: Traffic,
    settings: Settings,
    *,
    test_id: str = "",
    check: bool = True,
    attribution: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> SoakResult:
    """Replay cycles of ``traffic`` against ``target`` shaped by ``settings``; judge memory.
    ``attribution=False`` skips the attribution pass (isolation trials: only the verdict
    counts). ``progress`` is told how the run goes about once a second (in the run's event
    loop), and once more with ``done=True`` at its end."""
    resolved = as_target(target, allowed_hosts=settings.allowed_hosts)
    scaled = settings.scaled_out
    if scaled:
        resolved = ScaledOutTarget(resolved, _load_description(settings))
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
    began = time.monotonic()
    replaying = [0, planned]  # the first cycle and the cycles of the replay going on

    def snapshot(achieved: float, done: bool = False) -> Progress:
        run = live.run
        sent = run.sent if run is not None else 0
        phases = run.phases if run is not None else []
        phase = phases[live.phase] if 0 <= live.phase < len(phases) else None
        first, count = replaying
        metric = session.metric_table.get(session.sample_metric)
        return Progress(
            cycle=min(first + sent // max(1, plan.size), first + count - 1),
            cycles=first + count,
            phase=phase.name if phase is not None else "",
            elapsed=time.monotonic() - began,
            planned=plan.timeline.wall_seconds * (first + count),
            target_rps=phase.expected / phase.planned_seconds
            if phase is not None and phase.planned_seconds
            else 0.0,
            achieved_rps=achieved,
            in_flight=len(live.in_flight),
            sent=sent,
            late=run.late if run is not None else 0,
            errors=run.errors if run is not None else 0,
            metric=metric.label if metric is not None else session.sample_metric,
            unit=metric.unit if metric is not None else "",
            now=sampler.latest.get(session.sample_metric),
            floor=floors.last(session.sample_metric),
            done=done,
        )

    async def tell_progress() -> None:
        """Half a second in, then about once a second, how the run goes (the rate: requests
        sent over the last tick's time, checkpoint pauses left out)."""
        assert progress is not None
        last_sent, last_at, last_paused = 0, time.monotonic(), 0.0
        await asyncio.sleep(PROGRESS_TICK / 2)
        while True:
            run = live.run
            sent, now = (run.sent if run is not None else 0), time.monotonic()
            paused = run.paused if run is not None else 0.0
            if run is not None and sent < last_sent:  # the extra cycles: a new run
                last_sent, last_paused = 0, 0.0
            active = max(1e-9, now - last_at - max(0.0, paused - last_paused))
            progress(snapshot(max(0, sent - last_sent) / active))
            last_sent, last_at, last_paused = sent, now, paused
            await asyncio.sleep(PROGRESS_TICK)

    def on_checkpoint(point: Checkpoint) -> None:
        floors.store(session.floor())
        cycles.note(point)

    async def replay_cycles(first: int, count: int, client: Client | Cluster) -> Run:
        cycles.begin(first, count)
        replaying[:] = [first, count]
        if isinstance(client, Cluster):
            assert isinstance(resolved, ScaledOutTarget)
            run = await client.replay(
                plan,
                first=first,
                count=count,
                target_url=resolved.url,
                allowed_hosts=settings.allowed_hosts,
                concurrency=settings.concurrency,
                request_timeout=ReplayConfig().request_timeout,
                ids=settings.ids,
                on_checkpoint=on_checkpoint,
                live=live,
                target_failure=resolved.failure,
            )
            run.target = resolved.describe()
            return run
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

    async def drive() -> tuple[Run, Analysis, list[str]]:
        ticker = asyncio.ensure_future(tell_progress()) if progress is not None else None
        try:
            return await drive_cycles()
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            if progress is not None:
                progress(snapshot(0.0, done=True))

    async def drive_cycles() -> tuple[Run, Analysis, list[str]]:
        # Scale-out: the cluster is reached (or started) before anything else, so a master
        # that cannot be reached is an error before any load.
        cluster = (
            await open_cluster(settings.locust_master, settings.locust_workers) if scaled else None
        )
        try:
            await resolved.before_run()
        except BaseException:
            if cluster is not None:
                await cluster.aclose()
            raise
        config = ReplayConfig(concurrency=settings.concurrency)
        client: Client | Cluster
        if cluster is not None:
            client = cluster
        else:
            client = await resolved.open_client(config.concurrency, config.request_timeout)
        try:
            run = await replay_cycles(0, planned, client)
            analysis = judge(run, settings.measured_cycles)
            said: list[str] = []
            more = settings.extra_cycles and not run.aborted and not run.unsent
            if analysis.verdict == "inconclusive" and more:
                started = time.monotonic()
                live.paused = False
                run.absorb(await replay_cycles(planned, settings.extra_cycles, client))
                analysis = judge(run, settings.measured_cycles)
                said.append(
                    f"inconclusive after {settings.measured_cycles} measured cycles: "
                    f"{settings.extra_cycles} extra cycles replayed "
                    f"(+{time.monotonic() - started:.1f}s), then judged on all "
                    f"{settings.measured_cycles + settings.extra_cycles}"
                )
            sampler.stop()
            wanted = attribution and analysis.verdict in ATTRIBUTE
            source = session.attribution()
            if source is not None and wanted and not run.aborted:
                sites, replayed = await attribute(
                    resolved,
                    [exchanges_of(planned + settings.extra_cycles + k) for k in range(3)],
                    source,
                )
                analysis = dataclasses.replace(analysis, sites=sites, attribution_requests=replayed)
                if source.engine:
                    said.append(f"the attribution pass was traced by {source.engine}")
            return run, analysis, said
        finally:
            await client.aclose()
            await resolved.after_run()

    import scipy.stats  # noqa: F401  (the verdict's statistics: loaded before any sample)

    def cut_short() -> dict[str, Any]:
        """Ctrl-C: what the run had measured, shaped like a result's dict, not judged."""
        now = snapshot(0.0)
        run = live.run
        points = run.checkpoints if run is not None else []
        return {
            "test_id": test_id,
            "mode": settings.mode,
            "settings": _settings_summary(settings),
            "traffic": {"path": traffic.path, "format": traffic.format, "exchanges": len(traffic)},
            "metric": session.sample_metric,
            "metrics": list(session.judged_metrics),
            "elapsed_seconds": now.elapsed,
            "planned_seconds": now.planned,
            "cycle_reached": now.cycle,  # 0: the warm-up
            "cycles_planned": now.cycles,
            "phase_reached": now.phase,
            "sent": now.sent,
            "errors": now.errors,
            "late": now.late,
            "phases": [{"name": p.name} for p in run.phases] if run is not None else [],
            "checkpoints": [
                cp.row(floor) for cp, floor in zip(points, floors.rows(), strict=False)
            ],
            "harness": session.harness,
            "samples": sample_rows(sampler.series.points),
        }

    session.start()
    sampler.start()
    try:
        try:
            run, analysis, said = asyncio.run(drive())
        finally:
            sampler.stop()
            session.stop()
    except KeyboardInterrupt:
        raise RunCutShort(cut_short()) from None
    if traffic.missing:
        said.append(
            f"the traffic ({traffic.format}) does not record {', '.join(traffic.missing)}: the "
            "replay sent what it has, so a leak that needs the rest cannot show"
        )
    if session.notes or said:
        analysis = dataclasses.replace(analysis, notes=(*analysis.notes, *session.notes, *said))
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
            "missing": list(traffic.missing),
            "fingerprint": traffic_fingerprint((e.method, e.target, e.body) for e in traffic),
            "endpoints": dict(plan.choice.endpoint_counts[:MAX_ENDPOINTS_REPORTED]),
            "cycle": {
                **plan.choice.to_dict(),
                "summary": plan.choice.describe(),
                "wall_seconds": plan.timeline.wall_seconds,
                "ids": settings.ids,
            },
        },
        service_output=resolved.output_tail() if isinstance(resolved, ServedProcess) else "",
        thresholds=list(judge_thresholds(settings.thresholds, run.phases)),
    )
    if check and result.failed:
        raise SoakFailure(result.explain())
    return result


def probe_session(target: Target, settings: Settings) -> ProbeSession:
    """The probes of a run against ``target``: the built-in ones that apply, then the test
    suite's own (``settings.probes``: the marker's or ``soak.run``'s ``probes=``, then the
    ``pytest_soak_probes`` hook's)."""
    return ProbeSession(service_of(target, settings.tracemalloc_frames), settings.probes)


def service_of(target: Target, tracemalloc_frames: int = 1) -> Service:
    """What a probe is told of ``target`` when a run starts: where it runs, its processes, its
    code's folders (in process), its ports and its agents."""
    return Service(
        in_process=target.in_process,
        pids=tuple(target.pids()),
        source_dirs=tuple(target.source_dirs()) if target.in_process else (),
        tracemalloc_frames=tracemalloc_frames,
        ports=target.port_table(),
        agent=target.agent_hub(),
    )


def _load_description(settings: Settings) -> str:
    if settings.locust_master is not None:
        host, port = settings.locust_master
        return f"load from the Locust workers of the master at {host}:{port}"
    return f"load from {settings.locust_workers} local Locust workers"


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
        **({"load": _load_description(settings)} if settings.scaled_out else {}),
    }
