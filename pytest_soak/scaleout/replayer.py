"""A worker's share of the timeline, replayed by pytest-soak's own open-model loop.

Run as ``python -m pytest_soak.scaleout.replayer`` by a Locust worker (``scaleout/worker.py``):
a plain interpreter, so the replay runs on the standard asyncio loop with the fast HTTP/1.1
client (``driver/http1.py``), away from the gevent monkey-patching that importing Locust does.

It reads one job (``protocol``) on stdin, then replays request ``p`` of every cycle for
``p ≡ index (mod workers)`` at its intended time, latency measured from that time. At each of
the controller's checkpoints it drains (nothing in flight), writes a ``checkpoint`` report on
stdout and waits for the matching ``release`` line on stdin; the wait is part of the pause that
``replay`` adds to every later intended time, so all workers resume together and no pause is
counted as lateness. At the end it writes ``done`` with its full figures. ``stop`` on stdin (or
stdin closing: the worker is gone) ends the replay early; the figures so far are still sent.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import IO, Any

from pytest_soak.driver.records import Checkpoint, Run
from pytest_soak.driver.replay import LiveState, PhasePlan, ReplayConfig, replay
from pytest_soak.driver.targets import UrlTarget, check_host_allowed
from pytest_soak.errors import DriverError, SoakError
from pytest_soak.scaleout import protocol
from pytest_soak.scaleout.protocol import Share
from pytest_soak.traffic.fresh_ids import freshen
from pytest_soak.traffic.model import Exchange

#: Longest wait for the controller to release a checkpoint before the worker gives up.
RELEASE_TIMEOUT = 120.0


class Stopped(Exception):
    """The controller (or the worker's end of the pipe) asked this replay to stop."""


class _Commands:
    """Lines from stdin, read by a thread: ``release`` lines queue up for the checkpoints,
    ``stop`` (or end of input) is remembered and ends the replay."""

    def __init__(self, stream: IO[str]) -> None:
        self.releases: queue.Queue[int | None] = queue.Queue()
        self.stopped: str | None = None
        self._stream = stream
        threading.Thread(target=self._read, name="soak-replayer-commands", daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            try:
                message = protocol.loads(line)
            except ValueError:
                continue
            if message["type"] == "release":
                self.releases.put(int(message["checkpoint"]))
            elif message["type"] == "stop":
                self.stopped = str(message.get("why") or "the controller stopped the run")
                self.releases.put(None)
        if self.stopped is None:
            self.stopped = "the Locust worker's pipe closed"
        self.releases.put(None)

    def wait_release(self, checkpoint: int) -> None:
        while True:
            try:
                got = self.releases.get(timeout=RELEASE_TIMEOUT)
            except queue.Empty:
                raise Stopped(
                    f"checkpoint {checkpoint} was not released within {RELEASE_TIMEOUT:g}s"
                ) from None
            if got is None:
                raise Stopped(self.stopped or "stopped")
            if got == checkpoint:
                return


class _StoppableTarget(UrlTarget):
    """The job's URL; ``failure`` says the run was stopped, so the replay loop's watchdog ends
    it within its poll interval (as it does for a service that died)."""

    def __init__(self, url: str, commands: _Commands) -> None:
        super().__init__(url)
        self._commands = commands

    def failure(self) -> str | None:
        return self._commands.stopped


def _phase_plans(
    job: dict[str, Any], share: Share, first: int, count: int
) -> tuple[list[PhasePlan], list[float]]:
    """This worker's phase plans over the job's cycles (expected: its own requests) and the
    arrivals of its share of one cycle."""
    arrivals = [float(t) for t in job["arrivals"]]
    mine = [arrivals[p] for p in share.positions]
    spans = [(str(n), float(s), float(e)) for n, s, e in job["phases"]]
    counts = [0] * len(spans)
    for t in mine:  # the replay loop's own rule: an arrival at or past a span's end is later
        phase = 0
        while phase + 1 < len(spans) and t >= spans[phase][2]:
            phase += 1
        counts[phase] += 1
    length = float(job["length"])
    plans = [
        PhasePlan(name, k * length + start, k * length + end, counts[i], first + k)
        for k in range(count)
        for i, (name, start, end) in enumerate(spans)
    ]
    return plans, mine


def _arrivals(mine: Sequence[float], length: float, count: int) -> Iterator[float]:
    for k in range(count):
        offset = k * length
        for t in mine:
            yield offset + t


async def run_job(job: dict[str, Any], commands: _Commands, out: IO[str]) -> None:
    index, workers = int(job["index"]), int(job["workers"])

    def write(message: dict[str, Any]) -> None:
        out.write(protocol.dumps({"worker": index, **message}).decode())
        out.flush()

    if int(job.get("protocol", 0)) != protocol.PROTOCOL:
        raise DriverError(
            f"the controller speaks scale-out protocol {job.get('protocol')}, this worker "
            f"{protocol.PROTOCOL}: install the same pytest-soak version on every machine"
        )
    check_host_allowed(str(job["target"]), tuple(job["allowed_hosts"]))
    requests, order = job["requests"], [int(i) for i in job["order"]]
    if protocol.requests_digest(requests, order) != job["digest"]:
        raise DriverError("the job's requests do not match their SHA-256: refusing to replay them")
    distinct = [protocol.exchange_from_json(r) for r in requests]
    cycle = [distinct[i] for i in order]
    first, count = int(job["first_cycle"]), int(job["cycles"])
    share = Share(index, workers, len(cycle))
    plans, mine = _phase_plans(job, share, first, count)
    fresh = job.get("ids") == "fresh"

    def exchanges_of(number: int) -> Sequence[Exchange]:
        whole = freshen(cycle, number) if fresh else cycle
        return [whole[p] for p in share.positions]

    # The controller's checkpoints in this worker's own requests; several may fall on one.
    groups: dict[int, list[int]] = {}
    for number, requests_done in enumerate(job["checkpoints"]):
        groups.setdefault(share.local_checkpoint(int(requests_done)), []).append(number)
    by_local = list(groups.values())
    live = LiveState()

    def on_checkpoint(point: Checkpoint) -> None:
        run = live.run
        assert run is not None
        counts = [protocol.counts_to_json(p) for p in run.phases]
        for number in by_local[point.number]:
            write(
                {
                    "type": "checkpoint",
                    "checkpoint": number,
                    "sent": run.sent,
                    "drained": point.drained,
                    "phases": counts,
                }
            )
            commands.wait_release(number)

    target = _StoppableTarget(str(job["target"]), commands)
    loop = asyncio.get_running_loop()
    origin = loop.time()
    run: Run | None = None
    stopped: str | None = None
    try:
        run = await replay(
            target,
            exchanges_of(first),
            _arrivals(mine, float(job["length"]), count),
            planned_requests=len(mine) * count,
            phases=plans,
            wall_seconds=float(job["length"]) * count,
            profile=str(job["profile"]),
            peak_rps=float(job["peak_rps"]),
            checkpoints=list(groups),
            on_checkpoint=on_checkpoint,
            config=ReplayConfig(
                concurrency=-(-int(job["concurrency"]) // workers),  # its part of the run's
                request_timeout=float(job["request_timeout"]),
            ),
            live=live,
            cycle_exchanges=exchanges_of if fresh else None,
        )
    except Stopped as exc:
        stopped = str(exc)
        run = live.run
    if run is None:
        raise DriverError(f"the replay stopped before it began: {stopped}")
    write(
        {
            "type": "done",
            "sent": run.sent,
            "aborted": stopped or run.aborted,
            "elapsed": run.elapsed,
            "phases": [protocol.stats_to_json(p, origin) for p in run.phases],
        }
    )


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        return 2
    job = protocol.loads(line)
    index = job.get("index", -1)
    commands = _Commands(sys.stdin)
    try:
        asyncio.run(run_job(job, commands, sys.stdout))
    except SoakError as exc:
        message = {"worker": index, "type": "failed", "message": str(exc)}
        sys.stdout.write(protocol.dumps(message).decode())
        return 1
    except Exception as exc:  # reported, not swallowed: the controller fails the test with it
        detail = "".join(traceback.format_exception_only(exc)).strip()
        message = {"worker": index, "type": "failed", "message": f"replayer crashed: {detail}"}
        sys.stdout.write(protocol.dumps(message).decode())
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
