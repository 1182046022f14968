"""The open-model replay loop.

Each request is sent at its intended time (from the profile's timeline) whether or not
earlier ones have answered; latency is measured from the intended time, so a slow service
cannot hide its slowness by slowing the sender (coordinated omission). At most
``concurrency`` requests are in flight: a request that has to wait for a slot is sent late
and counted as late; requests that cannot be sent before the deadline are counted as unsent.

At each checkpoint the loop stops dispatching, waits until nothing is in flight, and calls
``on_checkpoint`` (memory floors are read there). The time spent paused is added to every
later intended time, so the profile's shape is kept and the pause is not counted as lateness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_soak.driver.clients import Client, SendFailure
from pytest_soak.driver.run import Checkpoint, PhaseStats, Run
from pytest_soak.driver.targets import Target
from pytest_soak.errors import DriverError
from pytest_soak.traffic.model import Exchange

_STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))  # not a new string per response


@dataclass(frozen=True)
class ReplayConfig:
    concurrency: int = 256
    request_timeout: float = 30.0
    late_threshold: float = 0.025
    grace: float = 10.0  # extra seconds past the planned end before the rest counts as unsent
    watch_interval: float = 0.25


@dataclass(frozen=True)
class PhasePlan:
    name: str
    start: float  # wall seconds (without pauses)
    end: float
    expected: float


class _Timeline(Protocol):
    def phase_spans(self) -> Sequence[tuple[Any, float, float]]: ...
    def requests_until(self, wall_t: float) -> float: ...


def plan_phases(timeline: _Timeline) -> list[PhasePlan]:
    """Each phase of a timeline (a profile's or a recording's) with the requests it plans."""
    return [
        PhasePlan(
            phase.name, start, end, timeline.requests_until(end) - timeline.requests_until(start)
        )
        for phase, start, end in timeline.phase_spans()
    ]


@dataclass
class LiveState:
    """Shared with the sampler thread: which phase the load is in, and whether it is paused."""

    phase: int = 0
    paused: bool = False


async def replay(
    target: Target,
    exchanges: Sequence[Exchange],
    arrivals: Iterable[float],
    *,
    planned_requests: int,
    phases: Sequence[PhasePlan],
    wall_seconds: float,
    profile: str,
    peak_rps: float,
    checkpoints: Sequence[int],
    on_checkpoint: Callable[[Checkpoint], None],
    config: ReplayConfig,
    live: LiveState,
) -> Run:
    """Replay ``exchanges`` in recorded order (looping) at ``arrivals`` against ``target``."""
    if not exchanges:
        raise DriverError("traffic is empty: there is nothing to replay (check the filters)")
    stats = [
        PhaseStats(
            name=p.name, index=i, planned_start=p.start, planned_end=p.end, expected=p.expected
        )
        for i, p in enumerate(phases)
    ]
    run = Run(
        target=target.describe(),
        profile=profile,
        peak_rps=peak_rps,
        wall_seconds=wall_seconds,
        planned_requests=planned_requests,
        phases=stats,
        late_threshold=config.late_threshold,
    )
    run.reserve_checkpoints(len(set(checkpoints)))
    client = await target.open_client(config.concurrency, config.request_timeout)
    loop_runner = _Loop(run, target, client, exchanges, config, live, on_checkpoint)
    try:
        await loop_runner.run(arrivals, sorted(set(checkpoints)))
    finally:
        await client.aclose()
    return run


async def replay_closed(
    target: Target,
    exchanges: Sequence[Exchange],
    *,
    start: int,
    count: int,
    concurrency: int,
    time_limit: float,
) -> int:
    """Send ``count`` exchanges (from index ``start``, looping) as fast as ``concurrency``
    workers allow, for an attribution pass; stops at ``time_limit`` seconds. Returns how many
    were sent, answered or not: the pass is about what requests leave behind, not answers."""
    client = await target.open_client(concurrency, time_limit)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + time_limit
    next_index = start
    end = start + count
    sent = 0

    async def worker() -> None:
        nonlocal next_index, sent
        while next_index < end and loop.time() < deadline:
            exchange = exchanges[next_index % len(exchanges)]
            next_index += 1
            with contextlib.suppress(SendFailure):
                await client.send(exchange)
            sent += 1

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        await client.aclose()
    return sent


class _Loop:
    def __init__(
        self,
        run: Run,
        target: Target,
        client: Client,
        exchanges: Sequence[Exchange],
        config: ReplayConfig,
        live: LiveState,
        on_checkpoint: Callable[[Checkpoint], None],
    ) -> None:
        self.run_ = run
        self.target = target
        self.client = client
        self.exchanges = exchanges
        self.config = config
        self.live = live
        self.on_checkpoint = on_checkpoint
        self.inflight: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(config.concurrency)
        self.idle = asyncio.Event()
        self.idle.set()
        self.loop = asyncio.get_running_loop()
        self.start = 0.0
        self.shift = 0.0  # seconds paused so far: added to every later intended time
        self.abort: str | None = None  # set by the watchdog when the target dies
        self.aborted = asyncio.Event()

    async def run(self, arrivals: Iterable[float], checkpoints: list[int]) -> None:
        run = self.run_
        phases = run.phases
        self.start = self.loop.time()
        watchdog = asyncio.ensure_future(self._watch())
        next_cp = 0
        phase = 0
        sent = 0
        n_exchanges = len(self.exchanges)
        deadline = run.wall_seconds + self.config.grace
        try:
            for index, arrival in enumerate(arrivals):
                while next_cp < len(checkpoints) and checkpoints[next_cp] <= index:
                    await self._checkpoint(run.checkpoint_count, index, phase)
                    next_cp += 1
                while phase + 1 < len(phases) and arrival >= phases[phase].planned_end:
                    self._close_phase(phase)
                    phase += 1
                    self.live.phase = phase
                stats = phases[phase]
                if stats.wall_start is None:
                    stats.wall_start = self._now()
                intended = self.start + self.shift + arrival
                delay = intended - self.loop.time()
                if delay > 0:
                    await self._sleep(delay)
                if self.abort is not None:
                    raise _Aborted(self.abort)
                if self.loop.time() - self.start - self.shift > deadline:
                    self._count_unsent(index, arrival, phase)
                    break
                await self.slots.acquire()
                if self.abort is not None:
                    self.slots.release()
                    raise _Aborted(self.abort)
                now = self.loop.time()
                lateness = now - intended
                stats.lateness.record(max(0.0, lateness))
                if lateness > self.config.late_threshold:
                    stats.late += 1
                if not stats.sent:
                    stats.first_intended, stats.first_sent_at = intended, now
                stats.last_intended, stats.last_sent_at = intended, now
                stats.sent += 1
                sent += 1
                exchange = self.exchanges[index % n_exchanges]
                self.idle.clear()
                task = asyncio.ensure_future(self._one(exchange, intended, stats))
                self.inflight.add(task)
                task.add_done_callback(self._done)
            drained = await self._drain()
            if self.abort is not None:
                raise _Aborted(self.abort)
            self._close_phase(phase)
            while next_cp < len(checkpoints):
                await self._checkpoint(run.checkpoint_count, sent, phase, drained=drained)
                next_cp += 1
        except _Aborted as exc:
            run.aborted = str(exc)
            await self._cancel_inflight()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            run.elapsed = self._now()

    def _now(self) -> float:
        return self.loop.time() - self.start

    def _close_phase(self, phase: int) -> None:
        stats = self.run_.phases[phase]
        if stats.wall_start is None:
            stats.wall_start = self._now()
        stats.wall_end = self._now()

    def _count_unsent(self, index: int, arrival: float, phase: int) -> None:
        """Everything from request ``index`` on could not be sent in time: count it per phase."""
        run = self.run_
        remaining = run.planned_requests - index
        for stats in run.phases[phase:]:
            if remaining <= 0:
                break
            share = min(remaining, max(0, round(stats.expected - stats.sent - stats.unsent)))
            if stats.index == run.phases[-1].index:
                share = remaining
            stats.unsent += share
            remaining -= share

    async def _one(self, exchange: Exchange, intended: float, stats: PhaseStats) -> None:
        try:
            status = await self.client.send(exchange)
        except SendFailure as failure:
            stats.note_error(failure.kind, failure.detail)
        except asyncio.CancelledError:
            stats.note_error("cancelled", "no answer before the run stopped waiting for it")
            raise
        else:
            stats.statuses[_STATUS_CLASSES[min(status // 100, 9)]] += 1
            if status >= 500:
                stats.note_error("5xx", f"{exchange.method} {exchange.target} -> {status}")
        finally:
            stats.latency.record(self.loop.time() - intended)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.inflight.discard(task)
        self.slots.release()
        if not self.inflight:
            self.idle.set()
        if not task.cancelled() and task.exception() is not None:
            # A bug in our own bookkeeping must stop the run loudly, not vanish into a log.
            self.abort = f"internal error in the driver: {task.exception()!r}"

    async def _drain(self) -> bool:
        """Wait until nothing is in flight; after the request timeout, cancel stragglers."""
        try:
            # The clients time requests out themselves (the fast path up to a sweep late):
            # give them a second more before cancelling what is left.
            await asyncio.wait_for(self.idle.wait(), timeout=self.config.request_timeout + 1.0)
            return True
        except asyncio.TimeoutError:
            for task in list(self.inflight):
                task.cancel()
            await self._cancel_inflight()
            return False

    async def _cancel_inflight(self) -> None:
        for task in list(self.inflight):
            task.cancel()
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)

    async def _checkpoint(
        self, number: int, requests: int, phase: int, *, drained: bool = True
    ) -> None:
        paused_at = self.loop.time()
        self.live.paused = True
        drained = await self._drain() and drained
        failure = self.abort or self.target.failure()
        if failure is not None:
            raise _Aborted(failure)
        point = Checkpoint(
            number=number,
            requests=requests,
            wall_time=self._now(),
            phase=phase,
            drained=drained,
        )
        self.run_.record_checkpoint(point)
        self.on_checkpoint(point)
        self.live.paused = False
        paused = self.loop.time() - paused_at
        self.shift += paused
        self.run_.paused += paused

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.watch_interval)
            failure = self.target.failure()
            if failure is not None:
                self.abort = failure
                self.aborted.set()
                for task in list(self.inflight):
                    task.cancel()
                return

    async def _sleep(self, delay: float) -> None:
        """Sleep until the next intended time; a long sleep (a quiet phase) wakes early when
        the target dies, so a dead service is reported at once, not at the next request."""
        if delay < 0.05:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.aborted.wait(), delay)


class _Aborted(Exception):
    pass
