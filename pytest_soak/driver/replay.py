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
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_soak.driver.clients import Client, SendFailure
from pytest_soak.driver.records import (
    LATE_THRESHOLD,
    STATUS_CLASSES,
    Checkpoint,
    PhaseStats,
    Run,
)
from pytest_soak.driver.targets import Target
from pytest_soak.errors import DriverError
from pytest_soak.traffic.model import Exchange

#: Seconds between looks at an idle flag or a dying target while waiting.
_POLL = 0.01


@dataclass(frozen=True)
class ReplayConfig:
    concurrency: int = 256
    request_timeout: float = 30.0
    late_threshold: float = LATE_THRESHOLD
    grace: float = 10.0  # extra seconds past the planned end before the rest counts as unsent
    watch_interval: float = 0.25


@dataclass(frozen=True)
class PhasePlan:
    name: str
    start: float  # wall seconds (without pauses)
    end: float
    expected: float
    cycle: int = 0  # which load cycle of the run the phase belongs to


class _Timeline(Protocol):
    def phase_spans(self) -> Sequence[tuple[Any, float, float]]: ...
    def requests_until(self, wall_t: float) -> float: ...


def plan_phases(timeline: _Timeline, cycles: Sequence[int] = (0,)) -> list[PhasePlan]:
    """Each phase of a timeline (a profile's or a recording's) with the requests it plans;
    with ``cycles``, the timeline is one cycle and its phases repeat for each cycle number,
    back to back (cycle ``cycles[k]`` starts ``k`` timeline lengths in)."""
    spans = timeline.phase_spans()
    length = spans[-1][2] if spans else 0.0
    return [
        PhasePlan(
            phase.name,
            k * length + start,
            k * length + end,
            timeline.requests_until(end) - timeline.requests_until(start),
            cycle,
        )
        for k, cycle in enumerate(cycles)
        for phase, start, end in spans
    ]


def phase_stats(phases: Sequence[PhasePlan]) -> dict[str, PhaseStats]:
    """One ``PhaseStats`` per phase name of ``phases``, numbered by first appearance, with the
    planned seconds and expected requests of all its spans (every cycle's) summed."""
    by_name: dict[str, PhaseStats] = {}
    for p in phases:
        found = by_name.get(p.name)
        if found is None:
            by_name[p.name] = PhaseStats(p.name, len(by_name), p.end - p.start, p.expected)
        else:
            found.planned_seconds += p.end - p.start
            found.expected += p.expected
    return by_name


@dataclass
class LiveState:
    """Shared with the sampler thread and the progress ticker: which phase the load is in,
    whether it is paused, and the run being replayed with what it has in flight."""

    phase: int = 0
    paused: bool = False
    run: Run | None = None
    in_flight: Sized = ()


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
    cycle_exchanges: Callable[[int], Sequence[Exchange]] | None = None,
    client: Client | None = None,
) -> Run:
    """Replay ``exchanges`` in order (looping) at ``arrivals`` against ``target``.

    ``phases`` are timed spans (a profile's phases, once per cycle); their counts go to one
    ``PhaseStats`` per phase name, numbered by first appearance. With ``cycle_exchanges``,
    request ``k`` belongs to cycle ``k // len(exchanges)`` (counted from the first phase's
    cycle) and each cycle's requests come from ``cycle_exchanges(cycle)`` (fresh ids per
    cycle), fetched as the cycle starts. A ``client`` given is used and left open (a run
    continued by more cycles keeps its client, and what the client built for each request)."""
    if not exchanges:
        raise DriverError("traffic is empty: there is nothing to replay (check the filters)")
    by_name = phase_stats(phases)
    stats = list(by_name.values())
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
    own = client is None
    if client is None:
        client = await target.open_client(config.concurrency, config.request_timeout)
    spans = [(p.end, by_name[p.name]) for p in phases]
    loop_runner = _Loop(run, spans, target, client, exchanges, config, live, on_checkpoint)
    live.run, live.in_flight = run, loop_runner.inflight
    if cycle_exchanges is not None:
        first_cycle = phases[0].cycle if phases else 0
        loop_runner.next_cycle = lambda k: cycle_exchanges(first_cycle + k)
    try:
        await loop_runner.run(arrivals, sorted(set(checkpoints)))
    finally:
        if own:
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
        spans: Sequence[tuple[float, PhaseStats]],
        target: Target,
        client: Client,
        exchanges: Sequence[Exchange],
        config: ReplayConfig,
        live: LiveState,
        on_checkpoint: Callable[[Checkpoint], None],
    ) -> None:
        self.run_ = run
        self.spans = spans  # (planned end, its stats) of each timed phase, in order
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
        self.slot_freed = 0.0  # loop time the last wait for a concurrency slot ended
        self.abort: str | None = None  # set by the watchdog when the target dies
        self.next_cycle: Callable[[int], Sequence[Exchange]] | None = None

    async def run(self, arrivals: Iterable[float], checkpoints: list[int]) -> None:
        run = self.run_
        spans = self.spans
        self.start = self.loop.time()
        watchdog = asyncio.ensure_future(self._watch())
        next_cp = 0
        phase = 0
        sent = 0
        n_exchanges = len(self.exchanges)
        deadline = run.wall_seconds + self.config.grace
        if spans:
            self.live.phase = spans[0][1].index
        try:
            for index, arrival in enumerate(arrivals):
                while next_cp < len(checkpoints) and checkpoints[next_cp] <= index:
                    await self._checkpoint(run.checkpoint_count, index, phase)
                    next_cp += 1
                while phase + 1 < len(spans) and arrival >= spans[phase][0]:
                    self._close_phase(phase)
                    phase += 1
                    self.live.phase = spans[phase][1].index
                stats = spans[phase][1]
                if stats.wall_start is None:
                    stats.wall_start = self._now()
                intended = self.start + self.shift + arrival
                delay = intended - self.loop.time()
                if delay > 0:
                    await self._sleep(delay)
                if self.abort is not None:
                    raise _Aborted(self.abort)
                woke = self.loop.time()
                if woke - self.start - self.shift > deadline:
                    self._count_unsent(index, arrival, phase)
                    break
                if self.slots.locked():
                    stats.capped += 1  # every slot taken: it waits for an answer to free one
                    await self.slots.acquire()
                    now = self.slot_freed = self.loop.time()
                else:
                    await self.slots.acquire()  # a free slot: taken without waiting
                    now = woke
                # The harness's own lag: how late it got round to the request, counted from
                # its intended time or from the end of the last wait for a slot, if later (the
                # requests queued behind a wait are late because of the service, not of it).
                stats.lag.record(max(0.0, woke - max(intended, self.slot_freed)))
                if self.abort is not None:
                    self.slots.release()
                    raise _Aborted(self.abort)
                lateness = now - intended
                stats.lateness.record(max(0.0, lateness))
                if lateness > self.config.late_threshold:
                    stats.late += 1
                if not stats.sent:
                    stats.first_intended, stats.first_sent_at = intended, now
                stats.last_intended, stats.last_sent_at = intended, now
                stats.sent += 1
                sent += 1
                position = index % n_exchanges
                if position == 0 and self.next_cycle is not None:
                    self.exchanges = self.next_cycle(index // n_exchanges)
                exchange = self.exchanges[position]
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
        stats = self.spans[phase][1]
        if stats.wall_start is None:
            stats.wall_start = self._now()
        stats.wall_end = self._now()

    def _count_unsent(self, index: int, arrival: float, phase: int) -> None:
        """Everything from request ``index`` on could not be sent in time: count it per phase."""
        remaining = self.run_.planned_requests - index
        for stats in {id(s): s for _, s in self.spans[phase:]}.values():
            if remaining <= 0:
                break
            share = min(remaining, max(0, round(stats.expected - stats.sent - stats.unsent)))
            stats.unsent += share
            remaining -= share
        if remaining > 0:
            self.spans[-1][1].unsent += remaining

    async def _one(self, exchange: Exchange, intended: float, stats: PhaseStats) -> None:
        try:
            status = await self.client.send(exchange)
        except SendFailure as failure:
            stats.note_error(failure.kind, failure.detail)
        except asyncio.CancelledError:
            stats.note_error("cancelled", "no answer before the run stopped waiting for it")
            raise
        else:
            stats.statuses[STATUS_CLASSES[min(status // 100, 9)]] += 1
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
        """Wait until nothing is in flight; after the request timeout, cancel stragglers.

        Polled with short sleeps rather than ``wait_for``: a cancelled timeout stays in the
        event loop's timer heap until its time comes, so one per checkpoint would be
        bookkeeping that grows with the cycles and, in process, reads as the service's."""
        # The clients time requests out themselves (the fast path up to a sweep late):
        # give them a second more before cancelling what is left.
        deadline = self.loop.time() + self.config.request_timeout + 1.0
        while not self.idle.is_set():
            if self.loop.time() >= deadline:
                for task in list(self.inflight):
                    task.cancel()
                await self._cancel_inflight()
                return False
            await asyncio.sleep(_POLL)
        return True

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
            phase=self.spans[phase][1].index if self.spans else phase,
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
                for task in list(self.inflight):
                    task.cancel()
                return

    async def _sleep(self, delay: float) -> None:
        """Sleep until the next intended time; a long sleep (a quiet phase) is taken in short
        steps and ends early when the target dies, so a dead service is reported at once, not
        at the next request (steps, not a cancelled ``wait_for``: see ``_drain``)."""
        end = self.loop.time() + delay
        while self.abort is None:
            left = end - self.loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, _POLL * 5))


class _Aborted(Exception):
    pass
