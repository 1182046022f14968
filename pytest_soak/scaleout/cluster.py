"""The controller's end of scale-out, in the pytest process: reach a Locust master (or start one
with N local workers), hand it one job per replay, coordinate the checkpoints, and merge what
the workers measured into one ``Run`` — the same contract as ``driver.replay.replay``, so the
analysis, reports and baselines do not know the load came from a cluster.

Nothing here imports Locust: the master and workers are other processes (``master.py``,
``worker.py``), reached over one TCP connection of JSON lines (``protocol``).

Every wait is bounded: the master must answer ``hello`` within ``CONNECT_TIMEOUT``, beat at
least every ``SILENCE_LIMIT`` seconds, and the run must end by its planned time plus pauses
plus ``grace``; local worker processes are watched by their exit status. A lost worker aborts
the run (``Run.aborted``, the verdict ``error``) with what was measured until then. Local
processes run in their own process groups, killed when the cluster closes (and, on Linux, by
the kernel when pytest dies: parent-death signal); ``stop_all_clusters`` runs at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_soak.cycles import CyclePlan
from pytest_soak.driver.records import Checkpoint, PhaseStats, Run
from pytest_soak.driver.replay import LiveState, PhasePlan, phase_stats, plan_phases
from pytest_soak.driver.targets.served import with_parent_death_signal
from pytest_soak.errors import DriverError
from pytest_soak.scaleout import protocol

#: Seconds to reach the master's control port and get its ``hello``.
CONNECT_TIMEOUT = 10.0
#: Seconds local Locust processes get to start (importing Locust takes a second or two).
START_TIMEOUT = 60.0
#: Seconds the master may wait for its workers before ``start`` fails.
WORKERS_TIMEOUT = 70.0
#: Seconds without any line from the master (it beats every second) before it counts as gone.
SILENCE_LIMIT = 15.0
#: Seconds the surviving workers get to send their figures after a stop.
STOP_TIMEOUT = 10.0
#: Poll step of every wait (short sleeps, not cancelled timeouts: see ``driver/replay.py``).
_POLL = 0.005

_LIVE: weakref.WeakSet[LocalProcesses] = weakref.WeakSet()


def stop_all_clusters() -> None:
    """Kill every local master and worker still running (pytest exit, Ctrl-C)."""
    for processes in list(_LIVE):
        processes.stop()


atexit.register(stop_all_clusters)


class LocalProcesses:
    """A master and ``workers`` workers on this machine, for a trial of scale-out."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.folder = Path(tempfile.mkdtemp(prefix="soak-locust-"))
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.control = 0
        _LIVE.add(self)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115  (closed below)
        try:
            process = subprocess.Popen(
                with_parent_death_signal([sys.executable, "-m", *args]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with its replayer
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        self.processes.append((name, process))
        return process

    async def start(self) -> tuple[str, int]:
        """Start the master, then the workers; the master's control address."""
        master = self._spawn(
            "master", "pytest_soak.scaleout.master", "--bind", "127.0.0.1", "--port", "0",
            "--control-port", "0",
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        ports: dict[str, Any] | None = None
        while ports is None:
            for line in self.output("master").splitlines():
                with contextlib.suppress(ValueError):
                    found = json.loads(line)
                    if isinstance(found, dict) and "control" in found:
                        ports = found
            if ports is None:
                if master.poll() is not None or time.monotonic() > deadline:
                    raise DriverError(
                        "the local Locust master did not start "
                        f"({self._status(master)}); its output:\n{_indent(self.output('master'))}"
                    )
                await asyncio.sleep(0.05)
        for index in range(self.workers):
            self._spawn(
                f"worker-{index}", "pytest_soak.scaleout.worker", "--master-host", "127.0.0.1",
                "--master-port", str(ports["master"]),
            )  # fmt: skip
        self.control = int(ports["control"])
        return "127.0.0.1", self.control

    def output(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.folder / f"{name}.log").read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @staticmethod
    def _status(process: subprocess.Popen[bytes]) -> str:
        code = process.poll()
        if code is None:
            return "still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def failure(self) -> str | None:
        """Why a local process is gone, if one is."""
        for name, process in self.processes:
            if process.poll() is not None:
                return (
                    f"the local Locust {name.replace('-', ' ')} (pid {process.pid}) exited "
                    f"mid-run ({self._status(process)}); its last output:\n"
                    f"{_indent(self.output(name))}"
                )
        return None

    def pids(self) -> list[int]:
        return [process.pid for _, process in self.processes]

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after 3 s. Idempotent."""
        _LIVE.discard(self)
        for _, process in self.processes:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for _, process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _, process in self.processes:
            _signal_group(process.pid, signal.SIGKILL)  # the group: replayers included
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text or "<no output>").splitlines())


class Cluster:
    """A connection to a Locust master running pytest-soak's control listener."""

    def __init__(self, address: tuple[str, int], workers: int | None, where: str) -> None:
        self.address = address
        self.workers = workers  # None: every worker connected to the master
        self.where = where  # how the user named it, for messages
        self.local: LocalProcesses | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lines: deque[dict[str, Any]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._heard = 0.0
        self._closed: str | None = None

    def describe(self) -> str:
        count = f"{self.workers} " if self.workers else ""
        return f"load from {count}Locust workers ({self.where})"

    async def connect(self) -> None:
        host, port = self.address
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise DriverError(
                f"{self.where}: no Locust master at {host}:{port} answers "
                f"({type(exc).__name__}: {exc or 'timed out'}). Start one with `python -m "
                "pytest_soak.scaleout.master --control-port PORT` (docs/scale-out.md), or use "
                "--soak-locust-workers=N for local workers"
            ) from None
        self._pump = asyncio.ensure_future(self._read())
        await self.send({"type": "hello"})
        hello = await self._expect("hello", CONNECT_TIMEOUT)
        if hello.get("protocol") != protocol.PROTOCOL:
            raise DriverError(
                f"{self.where}: the master speaks scale-out protocol {hello.get('protocol')}, "
                f"this pytest-soak {protocol.PROTOCOL}: install the same version everywhere"
            )

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    self._closed = "the master closed the control connection"
                    return
                self._heard = time.monotonic()
                with contextlib.suppress(ValueError):
                    self._lines.append(protocol.loads(line))
        except OSError as exc:
            self._closed = f"the control connection broke: {exc}"

    async def send(self, message: dict[str, Any]) -> None:
        assert self._writer is not None
        self._writer.write(protocol.dumps(message))
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next line from the master, or None after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while not self._lines:
            if self._closed is not None or time.monotonic() >= end:
                return None
            await asyncio.sleep(_POLL)
        return self._lines.popleft()

    async def _expect(self, kind: str, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            message = await self._next(end - time.monotonic())
            if message is None:
                break
            if message["type"] == kind:
                return message
            if message["type"] == "error":
                raise DriverError(f"{self.where}: {message.get('message')}")
        why = self._closed or f"no '{kind}' within {timeout:g}s"
        raise DriverError(f"{self.where}: the Locust master did not answer ({why})")

    def failure(self) -> str | None:
        if self.local is not None:
            found = self.local.failure()
            if found is not None:
                return found
        if self._closed is not None:
            return f"{self.where}: {self._closed}"
        if time.monotonic() - self._heard > SILENCE_LIMIT:
            return f"{self.where}: the Locust master sent nothing for {SILENCE_LIMIT:g}s"
        return None

    async def aclose(self) -> None:
        """Stop the workers' replay, close the connection and any local processes (closed as
        the driver's ``Client`` is, so the engine closes either one way)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self.send({"type": "stop", "why": "the soak run ended"})
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.local is not None:
            self.local.stop()

    async def replay(
        self,
        plan: CyclePlan,
        *,
        first: int,
        count: int,
        target_url: str,
        allowed_hosts: Sequence[str],
        concurrency: int,
        request_timeout: float,
        ids: str,
        on_checkpoint: Callable[[Checkpoint], None],
        live: LiveState,
        target_failure: Callable[[], str | None] = lambda: None,
        grace: float = 10.0,
    ) -> Run:
        """``count`` cycles from cycle ``first``, replayed by the workers; one merged Run."""
        phases = plan_phases(plan.timeline, range(first, first + count))
        run, by_name = _skeleton(plan, phases, count)
        checkpoints = plan.checkpoints(count, first=True)
        run.reserve_checkpoints(len(checkpoints))
        spans = plan.timeline.phase_spans()
        arrivals = list(plan.timeline.arrivals())
        workers = self.workers or 0
        if workers > plan.size:
            raise DriverError(
                f"--soak-locust-workers={workers} is more than the {plan.size} requests of a "
                "cycle: every worker needs a share; use fewer workers or raise peak_rps"
            )
        distinct, order = protocol.cycle_requests(plan.choice.exchanges)
        job = {
            "protocol": protocol.PROTOCOL,
            "target": target_url,
            "allowed_hosts": list(allowed_hosts),
            "requests": distinct,
            "order": order,
            "digest": protocol.requests_digest(distinct, order),
            "arrivals": arrivals,
            "length": plan.timeline.wall_seconds,
            "phases": [(phase.name, start, end) for phase, start, end in spans],
            "first_cycle": first,
            "cycles": count,
            "checkpoints": checkpoints,
            "profile": plan.profile,
            "peak_rps": plan.peak_rps,
            "ids": ids,
            "request_timeout": request_timeout,
            "concurrency": concurrency,  # shared: each worker takes its part (replayer.py)
        }
        live.run, live.in_flight, live.phase = run, (), by_name[phases[0].name].index
        await self.send({"type": "start", "job": job, "workers": self.workers or None})
        started = await self._expect("started", WORKERS_TIMEOUT)
        count_workers = int(started["workers"])
        loop = asyncio.get_running_loop()
        began = loop.time()
        limit = run.wall_seconds + grace + request_timeout + 30.0
        latest: dict[int, list[Any]] = {}  # worker -> its counts at its last checkpoint
        waiting: dict[int, set[int]] = {}  # checkpoint -> workers that reached it
        paused_since: float | None = None
        done: dict[int, dict[str, Any]] = {}
        aborted: str | None = None
        while len(done) < count_workers and aborted is None:
            message = await self._next(0.1)
            aborted = self.failure() or target_failure()
            if aborted is None and loop.time() - began - run.paused > limit:
                aborted = f"{self.where}: the workers had not finished {limit:.0f}s in"
            if message is None or aborted is not None:
                continue
            kind = message["type"]
            if kind == "checkpoint":
                number, worker = int(message["checkpoint"]), int(message["worker"])
                latest[worker] = message["phases"]
                reached = waiting.setdefault(number, set())
                reached.add(worker)
                if paused_since is None:
                    paused_since, live.paused = loop.time(), True
                if len(reached) == count_workers:
                    _show_counts(run, latest)
                    point = Checkpoint(
                        number=number,
                        requests=sum(p.sent for p in run.phases),
                        wall_time=loop.time() - began,
                        # the phase that just ended, as the local loop records it
                        phase=_phase_at(
                            max(0, checkpoints[number] - 1), plan, count, arrivals, by_name
                        ),
                        drained=bool(message["drained"]),
                    )
                    run.record_checkpoint(point)
                    on_checkpoint(point)
                    await self.send({"type": "release", "checkpoint": number})
                    del waiting[number]
                    run.paused += loop.time() - paused_since
                    paused_since, live.paused = None, False
                    live.phase = _phase_at(  # the phase the load goes on with
                        checkpoints[number], plan, count, arrivals, by_name
                    )
            elif kind == "done":
                done[int(message["worker"])] = message
            elif kind in ("failed", "lost"):
                aborted = str(message.get("message"))
        if aborted is not None:
            await self.send({"type": "stop", "why": aborted})
            end = loop.time() + STOP_TIMEOUT
            while len(done) < count_workers and loop.time() < end:
                message = await self._next(0.1)
                if message is not None and message["type"] == "done":
                    done[int(message["worker"])] = message
        live.paused = False
        _merge(run, by_name, done, latest, count_workers)
        run.elapsed = loop.time() - began
        reasons = [str(m["aborted"]) for m in done.values() if m.get("aborted")]
        if aborted is not None:
            run.aborted = _lost_message(aborted, done, latest, count_workers)
        elif reasons:
            run.aborted = reasons[0]
        return run


def _skeleton(
    plan: CyclePlan, phases: Sequence[PhasePlan], count: int
) -> tuple[Run, dict[str, PhaseStats]]:
    """The run's phases as the local replay makes them (``phase_stats``)."""
    by_name = phase_stats(phases)
    run = Run(
        target="",
        profile=plan.profile,
        peak_rps=plan.peak_rps,
        wall_seconds=plan.timeline.wall_seconds * count,
        planned_requests=plan.size * count,
        phases=list(by_name.values()),
    )
    return run, by_name


def _phase_at(
    requests: int,
    plan: CyclePlan,
    cycles: int,
    arrivals: Sequence[float],
    by_name: dict[str, PhaseStats],
) -> int:
    """The phase (its index) of request number ``requests`` of the replay (from 0), by the
    replay loop's own rule and arithmetic: an arrival (``k * length + t``, as
    ``CyclePlan.arrivals`` makes it) at or past a phase's end (``k * length + end``, as
    ``plan_phases``) belongs to a later phase, of the next cycle if it is past its own's."""
    spans = plan.timeline.phase_spans()
    cycle, position = divmod(requests, plan.size)
    t = cycle * plan.timeline.wall_seconds + arrivals[min(position, len(arrivals) - 1)]
    length = spans[-1][2]
    for k in range(cycle, min(cycle + 2, cycles)):
        for phase, _, end in spans:
            if t < k * length + end:
                return by_name[phase.name].index
    return by_name[spans[-1][0].name].index


def _show_counts(run: Run, latest: dict[int, list[Any]]) -> None:
    """The live view (progress line, a run cut short): the workers' counts at their last
    checkpoint, summed."""
    for index, stats in enumerate(run.phases):
        stats.sent = stats.late = stats.unsent = 0
        stats.errors.clear()
        for counts in latest.values():
            if index < len(counts):
                protocol.add_counts(stats, counts[index])


def _merge(
    run: Run,
    by_name: dict[str, PhaseStats],
    done: dict[int, dict[str, Any]],
    latest: dict[int, list[Any]],
    workers: int,
) -> None:
    """The run's phases from every worker's final figures; a worker lost before its report
    adds the counts of its last checkpoint (its latencies are lost with it)."""
    for position, stats in enumerate(run.phases):  # the live view's counts, replaced
        fresh = PhaseStats(stats.name, stats.index, stats.planned_seconds, stats.expected)
        run.phases[position] = by_name[stats.name] = fresh
    for message in done.values():
        for data in message["phases"]:
            target = by_name.get(str(data["name"]))
            if target is not None:
                protocol.merge_stats(target, data)
    for worker in range(workers):
        if worker not in done:
            for index, counts in enumerate(latest.get(worker, [])):
                if index < len(run.phases):
                    protocol.add_counts(run.phases[index], counts)


def _lost_message(
    why: str, done: dict[int, dict[str, Any]], latest: dict[int, list[Any]], workers: int
) -> str:
    missing = [w for w in range(workers) if w not in done]
    if not missing:
        return why
    parts = []
    for worker in missing:
        counts = latest.get(worker)
        sent = sum(int(c[0]) for c in counts) if counts else 0
        parts.append(f"worker {worker}: {sent:,} requests counted up to its last checkpoint")
    return (
        f"{why}; measured: the figures of {len(done)} of {workers} workers in full, "
        + "; ".join(parts)
        + " (their latencies are lost)"
    )


async def open_cluster(master: tuple[str, int] | None, workers: int | None) -> Cluster:
    """Reach the master at ``master`` (``--soak-locust``), or start one with ``workers`` local
    workers (``--soak-locust-workers``). Raises ``DriverError`` before any load when it cannot."""
    if master is not None:
        cluster = Cluster(master, None, f"--soak-locust={master[0]}:{master[1]}")
        await cluster.connect()
        return cluster
    assert workers is not None and workers >= 1
    local = LocalProcesses(workers)
    try:
        address = await local.start()
        cluster = Cluster(address, workers, f"--soak-locust-workers={workers}")
        cluster.local = local
        await cluster.connect()
    except BaseException:
        local.stop()
        raise
    return cluster
