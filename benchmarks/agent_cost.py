"""What does the agent cost a served Python service? Throughput with the agent on (and read as
a soak run reads it) vs off, on the same small uvicorn service, in the same run.

    python benchmarks/agent_cost.py [--rounds 4] [--seconds 10] [--concurrency 32]
        [--out docs/agent-cost.txt]

Each round serves the service twice, once with the agent on and once with ``agent=False``, in
alternating order (on/off, off/on, on/off, ...) so that drift of the machine cancels. With the
agent on, an ``AgentProbe`` is started and a thread reads it 10 times a second (the sampler)
and every 5 s settles (gc.collect + malloc_trim) and reads again (a checkpoint): what a soak run
does outside its attribution pass. With it off, nothing is read. Each leg loads the service with
our driver's keep-alive HTTP/1.1 client at its maximum closed-loop rate (``--concurrency``
workers, as ``replay_closed`` does) for ``--seconds`` after a 1 s warm-up; req/s counts answered
2xx requests over the measured wall time.

Then, on an idle agent-on service: the round trip of one ``read`` and of one ``settle`` in ms.
Nothing here asserts: it prints req/s per leg, the on/off ratio per round and its spread.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import textwrap
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

from transcript import Transcript, spread  # noqa: E402

from pytest_soak.driver.clients import SendFailure  # noqa: E402
from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.engine import service_of  # noqa: E402
from pytest_soak.probes.agent import AgentProbe  # noqa: E402
from pytest_soak.traffic import Exchange  # noqa: E402

SERVICE = textwrap.dedent(
    """
    import json

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        parts = scope["path"].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "item" and parts[1].isdigit():
            item = int(parts[1])
            body = {"id": item, "name": f"item {item}", "price": round(item * 0.37, 2),
                    "tags": ["a", "b", str(item % 7)], "in_stock": item % 3 != 0}
            status = 200
        else:
            body, status = {"error": "not found"}, 404
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
    """
)
SAMPLE_EVERY = 0.1
CHECKPOINT_EVERY = 5.0


class Reader:
    """A soak run's reads of the agent: the sampler's, ten a second, of which the probe session
    passes on one every ``sample_gap``; plus settle + read every 5 s (in a run the load pauses
    for those)."""

    def __init__(self, probe: AgentProbe) -> None:
        self.probe = probe
        self.stop = threading.Event()
        self.reads: list[float] = []
        self.settles: list[float] = []
        self.own = 0.0
        self.empty = 0
        self.sampled = -float("inf")
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        checkpoint = time.monotonic() + CHECKPOINT_EVERY
        while not self.stop.wait(SAMPLE_EVERY):
            if time.monotonic() - self.sampled >= self.probe.sample_gap:
                self.sampled = time.monotonic()
                self.read()
            if time.monotonic() >= checkpoint:
                began = time.perf_counter()
                self.probe.settle()
                self.settles.append(time.perf_counter() - began)
                self.read()
                checkpoint = time.monotonic() + CHECKPOINT_EVERY

    def read(self) -> None:
        began = time.perf_counter()
        figures = self.probe.read()
        self.reads.append(time.perf_counter() - began)
        if not figures:
            self.empty += 1
        self.own = max(self.own, figures.get("agent_own", 0.0))


async def load(served: ServedProcess, seconds: float, concurrency: int) -> tuple[int, int, float]:
    """(answered 2xx, failed, wall seconds): ``concurrency`` closed-loop workers, as
    ``replay_closed`` runs them, for ``seconds``."""
    exchanges = [Exchange(0.0, "GET", f"/item/{i}") for i in range(1, 1001)]
    client = await served.open_client(concurrency, 10.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counts = {"ok": 0, "failed": 0, "next": 0}

    async def worker() -> None:
        while loop.time() < deadline:
            exchange = exchanges[counts["next"] % len(exchanges)]
            counts["next"] += 1
            try:
                status = await client.send(exchange)
            except SendFailure:
                counts["failed"] += 1
                continue
            counts["ok" if status < 300 else "failed"] += 1

    began = loop.time()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return counts["ok"], counts["failed"], loop.time() - began


def serve(agent: bool) -> ServedProcess:
    return ServedProcess(
        [sys.executable, "-m", "uvicorn", "_agent_cost_service:app", "--port", "{port}",
         "--log-level", "warning"],
        ready="/item/1", cwd=HERE, agent=agent,
    )  # fmt: skip


def started_probe(served: ServedProcess) -> AgentProbe:
    probe = AgentProbe()
    probe.start(service_of(served))
    return probe


def leg(agent: bool, seconds: float, concurrency: int) -> dict[str, float]:
    served = serve(agent)
    reader = None
    try:
        if agent:
            reader = Reader(started_probe(served))
            reader.thread.start()
        asyncio.run(load(served, 1.0, concurrency))  # warm-up
        ok, failed, wall = asyncio.run(load(served, seconds, concurrency))
        out = {"rps": ok / wall, "failed": failed}
        if reader is not None:
            reader.stop.set()
            reader.thread.join()
            out.update(
                reads=len(reader.reads),
                read_ms=1000 * statistics.mean(reader.reads),
                settle_ms=1000 * statistics.mean(reader.settles) if reader.settles else 0.0,
                own=reader.own,
                empty=reader.empty,
            )
        return out
    finally:
        if reader is not None:
            reader.stop.set()
        served.stop()


def idle_costs(samples: int) -> tuple[list[float], list[float]]:
    """Round trips (s) of ``read`` and of ``settle`` on an idle, agent-on service."""
    served = serve(True)
    try:
        probe = started_probe(served)
        reads, settles = [], []
        for i in range(samples):
            began = time.perf_counter()
            probe.read()
            reads.append(time.perf_counter() - began)
            if i % 5 == 0:
                began = time.perf_counter()
                probe.settle()
                settles.append(time.perf_counter() - began)
        return reads, settles
    finally:
        served.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    script = HERE / "_agent_cost_service.py"
    script.write_text(SERVICE)
    transcript = Transcript()
    say = transcript.say

    stamp = time.strftime("%Y-%m-%d %H:%M")
    say(f"# agent_cost.py {' '.join(sys.argv[1:])}  ({stamp})")
    say(f"{'round':<7}{'agent':<7}{'req/s':>9}{'failed':>8}{'reads':>7}{'read ms':>9}"
        f"{'settle ms':>11}{'agent_own':>11}")  # fmt: skip
    ratios: list[float] = []
    try:
        for number in range(args.rounds):
            order = (True, False) if number % 2 == 0 else (False, True)
            rps: dict[bool, float] = {}
            for agent in order:
                out = leg(agent, args.seconds, args.concurrency)
                rps[agent] = out["rps"]
                extra = (
                    f"{out['reads']:>7.0f}{out['read_ms']:>9.2f}{out['settle_ms']:>11.1f}"
                    f"{out['own']:>9.0f} B"
                    if agent
                    else ""
                )
                say(f"{number + 1:<7}{'on' if agent else 'off':<7}{out['rps']:>9.0f}"
                    f"{out['failed']:>8.0f}{extra}")  # fmt: skip
            ratios.append(rps[True] / rps[False])
            say(f"{'':<7}on/off {ratios[-1]:.3f}")
        say()
        say(f"ratio on/off over {len(ratios)} rounds: {spread(ratios)}"
            + (f", stdev {statistics.stdev(ratios):.3f}" if len(ratios) > 1 else ""))  # fmt: skip
        say(f"cost (1 - ratio): {100 * (1 - statistics.mean(ratios)):.1f} %")
        reads, settles = idle_costs(100)
        say(
            f"idle service: read {spread([1000 * r for r in reads])} ms over {len(reads)}, "
            f"settle {spread([1000 * s for s in settles])} ms over {len(settles)}"
        )
    finally:
        script.unlink(missing_ok=True)
    transcript.write(args.out, keep_old=True)


if __name__ == "__main__":
    main()
