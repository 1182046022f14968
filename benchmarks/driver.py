"""Is the driver ever the bottleneck? Our driver vs Locust FastHttpUser (and wrk) on one server.

    pip install -e '.[bench]'            # locust, uvloop (wrk: apt-get install wrk, optional)
    python benchmarks/driver.py [--seconds 10] [--memory-minutes 0] [--out docs/driver-bench.txt]

One run, one loopback server, the same machine:

1. **Throughput per core.** A minimal HTTP/1.1 server (uvloop when installed) is pinned to CPU 1;
   each client in turn is pinned to CPU 0 and sends ``GET /`` as fast as it can over keep-alive
   connections for ``--seconds``. Req/s per core = answered requests / the client's CPU seconds
   (user + system, from ``getrusage`` of the finished child), so a client that cannot fill its
   core is not flattered. Ours runs the real open-model replay loop (scheduler, histograms,
   counters) at a rate above what it can send, with the default asyncio loop and with uvloop.
2. **Schedule accuracy.** Our driver replays a profile at a peak of 1,000 req/s against the same
   server: per phase, the rate achieved over the phase's measured wall time vs the profile's
   rate, and the p99 of send lateness (actual send time - intended time).
3. **Driver memory** (``--memory-minutes 10``): RSS of the driver process sampled every 10 s
   during a constant 1,000 req/s replay; growth after the first minute.

Nothing here asserts: it prints the numbers and ratios (and writes them to ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from transcript import Transcript

HERE = Path(__file__).resolve().parent
SERVER_CPU = 1
CLIENT_CPU = 0

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


# --- the server ---------------------------------------------------------------------------


class _Answer(asyncio.Protocol):
    """Answers every request head with a fixed 200 (GET only: no bodies to read)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        data = self.pending + data
        count = data.count(b"\r\n\r\n")
        self.pending = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data
        if count:
            self.transport.write(RESPONSE * count)


def serve(port: int) -> None:
    loop_factory = _uvloop_factory()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        loop = runner.get_loop()

        async def main() -> None:
            server = await loop.create_server(_Answer, "127.0.0.1", port, backlog=1024)
            async with server:
                await server.serve_forever()

        runner.run(main())


def _uvloop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# --- our driver, in a child process ---------------------------------------------------------


def ours(args: argparse.Namespace) -> None:
    import psutil

    from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay
    from pytest_soak.driver.targets import UrlTarget
    from pytest_soak.profiles import get_profile
    from pytest_soak.traffic import Exchange

    target = UrlTarget(f"http://127.0.0.1:{args.port}", [args.server_pid])
    exchanges = [Exchange(0.0, "GET", "/", (("User-Agent", "bench"), ("Accept", "*/*")))]
    timeline = get_profile(args.profile).timeline(args.rate, args.seconds)
    phases = plan_phases(timeline)
    me = psutil.Process()
    rss: list[tuple[float, int]] = []

    async def sample() -> None:
        start = time.monotonic()
        while True:
            rss.append((time.monotonic() - start, me.memory_info().rss))
            await asyncio.sleep(args.sample_every)

    async def main() -> Any:
        sampler = asyncio.ensure_future(sample()) if args.sample_every else None
        run = await replay(
            target,
            exchanges,
            timeline.arrivals(),
            planned_requests=timeline.request_count,
            phases=phases,
            wall_seconds=args.seconds,
            profile=args.profile,
            peak_rps=args.rate,
            checkpoints=[0],
            on_checkpoint=lambda point: None,
            config=ReplayConfig(concurrency=args.concurrency, grace=args.grace),
            live=LiveState(),
        )
        if sampler is not None:
            sampler.cancel()
        return run

    factory = _uvloop_factory() if args.loop == "uvloop" else None
    started = time.monotonic()
    with asyncio.Runner(loop_factory=factory) as runner:
        run = runner.run(main())
    elapsed = time.monotonic() - started
    answered = sum(sum(p.statuses.values()) for p in run.phases)
    print(
        json.dumps(
            {
                "answered": answered,
                "sent": run.sent,
                "errors": run.errors,
                "unsent": run.unsent,
                "elapsed": elapsed,
                "phases": [
                    {
                        "name": p.name,
                        "sent": p.sent,
                        "late": p.late,
                        "target_rps": p.target_rps,
                        "wall": p.duration,
                        "rate_accuracy": p.rate_accuracy,
                        "lateness_p99": p.lateness.percentile(99),
                        "latency_p99": p.latency.percentile(99),
                    }
                    for p in run.phases
                ],
                "rss": rss,
            }
        )
    )


# --- measuring children ---------------------------------------------------------------------


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") else argv


def measure(argv: list[str], timeout: float) -> tuple[str, float, float]:
    """Run ``argv`` pinned to the client CPU; its stdout, wall seconds, CPU seconds."""
    before = _child_cpu()
    started = time.monotonic()
    done = subprocess.run(
        _pinned(CLIENT_CPU, argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, wall, _child_cpu() - before


def run_ours(
    port: int,
    server_pid: int,
    seconds: float,
    *,
    loop: str,
    rate: float,
    profile: str,
    concurrency: int,
    sample_every: float = 0.0,
    grace: float = 10.0,
) -> tuple[dict[str, Any], float]:
    argv = [
        sys.executable,
        __file__,
        "_ours",
        "--port",
        str(port),
        "--server-pid",
        str(server_pid),
        "--seconds",
        str(seconds),
        "--loop",
        loop,
        "--rate",
        str(rate),
        "--profile",
        profile,
        "--concurrency",
        str(concurrency),
        "--sample-every",
        str(sample_every),
        "--grace",
        str(grace),
    ]
    out, _, cpu = measure(argv, timeout=seconds * 3 + 120)
    return json.loads(out.strip().splitlines()[-1]), cpu


LOCUSTFILE = textwrap.dedent(
    """
    from locust import constant
    from locust.contrib.fasthttp import FastHttpUser
    from locust import task

    class Bench(FastHttpUser):
        wait_time = constant(0)

        @task
        def root(self):
            self.client.get("/", headers={"User-Agent": "bench", "Accept": "*/*"})
    """
)


def run_locust(port: int, seconds: float, users: int) -> tuple[int, float] | None:
    locust = shutil.which("locust")
    if locust is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp, "locustfile.py")
        locustfile.write_text(LOCUSTFILE)
        argv = [
            locust,
            "-f",
            str(locustfile),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{int(seconds)}s",
            "-H",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(Path(tmp, "out")),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        _, _, cpu = measure(argv, timeout=seconds * 3 + 120)
        rows = Path(tmp, "out_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    for row in rows[1:]:
        fields = row.split(",")
        if "Aggregated" in fields:
            values = dict(zip(header, fields, strict=False))
            return int(values["Request Count"]) - int(values["Failure Count"]), cpu
    raise RuntimeError("locust wrote no Aggregated row")


def aiohttp_client(port: int, seconds: float, connections: int) -> None:
    """The alternative we measured before choosing httptools: aiohttp's client, closed loop."""
    import aiohttp

    async def main() -> int:
        answered = 0
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal answered
                while time.monotonic() < deadline:
                    async with session.get(f"http://127.0.0.1:{port}/") as response:
                        await response.read()
                        answered += response.status == 200

            await asyncio.gather(*(worker() for _ in range(connections)))
        return answered

    print(asyncio.run(main()))


def run_aiohttp(port: int, seconds: float, connections: int) -> tuple[int, float] | None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    argv = [sys.executable, __file__, "_aiohttp", str(port), str(seconds), str(connections)]
    out, _, cpu = measure(argv, timeout=seconds * 3 + 60)
    return int(out.strip().splitlines()[-1]), cpu


def run_wrk(port: int, seconds: float, connections: int) -> tuple[int, float] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "-H",
        "User-Agent: bench",
        f"http://127.0.0.1:{port}/",
    ]
    out, _, cpu = measure(argv, timeout=seconds * 3 + 60)
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    return int(match.group(1)), cpu


# --- the report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput client")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    parser.add_argument("--schedule-seconds", type=float, default=60.0)
    parser.add_argument("--memory-minutes", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    port = _free_port()
    server = subprocess.Popen(_pinned(SERVER_CPU, [sys.executable, __file__, "_serve", str(port)]))
    transcript = Transcript()
    say = transcript.say

    try:
        _wait_port(port)
        say(
            f"# benchmarks/driver.py — {time.strftime('%Y-%m-%d')}, {platform.python_version()}, "
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
        )
        say(
            f"server: raw asyncio{' + uvloop' if _uvloop_factory() else ''} on CPU {SERVER_CPU}; "
            f"clients on CPU {CLIENT_CPU}; {args.concurrency} connections; {args.seconds:g}s each"
        )
        say()
        say("## 1. throughput: answered req/s per client CPU-second")
        results: dict[str, float] = {}
        for loop in ("asyncio", "uvloop") if _uvloop_factory() else ("asyncio",):
            data, cpu = run_ours(
                port,
                server.pid,
                args.seconds,
                loop=loop,
                rate=200_000,
                profile="constant",
                concurrency=args.concurrency,
                grace=0.0,  # stop at --seconds: what was not sent by then is not the point
            )
            per_core = data["answered"] / cpu
            results[f"pytest-soak ({loop})"] = per_core
            say(
                f"pytest-soak ({loop:7}) {data['answered']:>8} answered, "
                f"{data['answered'] / data['elapsed']:>8.0f} req/s wall, cpu {cpu:5.1f}s "
                f"-> {per_core:>8.0f} req/s per core"
            )
        peers = (
            ("locust FastHttpUser", run_locust, "locust: not installed (pip install locust)"),
            ("aiohttp client", run_aiohttp, "aiohttp: not installed (pip install aiohttp)"),
            ("wrk (C, 1 thread)", run_wrk, "wrk: not installed (apt-get install wrk)"),
        )
        for name, measure_peer, missing in peers:
            outcome = measure_peer(port, args.seconds, args.concurrency)
            if outcome is None:
                say(f"{missing}, skipped")
                continue
            count, cpu = outcome
            results[name] = count / cpu
            say(
                f"{name:<21} {count:>8} answered, cpu {cpu:5.1f}s -> {count / cpu:>8.0f} req/s per core"
            )
        if "locust FastHttpUser" in results:
            peer = results["locust FastHttpUser"]
            for name, value in results.items():
                if name.startswith("pytest-soak"):
                    say(f"ratio {name} / locust FastHttpUser = {value / peer:.2f}")
        if "wrk (C, 1 thread)" in results:
            for name, value in results.items():
                if name.startswith("pytest-soak"):
                    say(f"ratio {name} / wrk = {value / results['wrk (C, 1 thread)']:.2f}")
        say()
        for profile in ("constant", "spike-at-8am"):
            say(
                f"## 2. schedule accuracy: {profile}, peak 1000 req/s, "
                f"{args.schedule_seconds:g}s, default asyncio loop"
            )
            data, cpu = run_ours(
                port,
                server.pid,
                args.schedule_seconds,
                loop="asyncio",
                rate=1000.0,
                profile=profile,
                concurrency=args.concurrency,
            )
            say("achieved/intended: the send rate over the phase's own requests, first to last")
            say(
                f"{'phase':<18}{'sent':>7}{'target/s':>10}{'achieved/s':>11}{'ratio':>7}"
                f"{'late':>6}{'p99 lateness':>14}"
            )
            for phase in data["phases"]:
                ratio = phase["rate_accuracy"] or 0.0
                achieved = phase["target_rps"] * ratio
                say(
                    f"{phase['name']:<18}{phase['sent']:>7}{phase['target_rps']:>10.1f}"
                    f"{achieved:>11.1f}{ratio:>7.3f}{phase['late']:>6}"
                    f"{phase['lateness_p99'] * 1000:>12.2f}ms"
                )
            say(
                f"driver CPU {cpu:.1f}s over {data['elapsed']:.1f}s; errors {data['errors']}, "
                f"unsent {data['unsent']}"
            )
            say()
        if args.memory_minutes > 0:
            seconds = args.memory_minutes * 60
            say(f"## 3. driver RSS: constant 1000 req/s for {seconds:g}s (sampled every 10 s)")
            data, _ = run_ours(
                port,
                server.pid,
                seconds,
                loop="asyncio",
                rate=1000.0,
                profile="constant",
                concurrency=args.concurrency,
                sample_every=10.0,
            )
            rss = data["rss"]
            after_first = [value for t, value in rss if t >= 60]
            say("t(s)  RSS(MB): " + "  ".join(f"{t:.0f}:{v / 1e6:.2f}" for t, v in rss))
            if after_first:
                growth = (after_first[-1] - after_first[0]) / 1e6
                say(
                    f"growth from 60 s to the end: {growth:+.3f} MB "
                    f"(max-min {(max(after_first) - min(after_first)) / 1e6:.3f} MB); "
                    f"sent {data['sent']}, errors {data['errors']}"
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    transcript.write(args.out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("benchmark server did not start")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_aiohttp":
        aiohttp_client(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_ours":
        sub = argparse.ArgumentParser()
        for name, kind in (
            ("--port", int),
            ("--server-pid", int),
            ("--seconds", float),
            ("--loop", str),
            ("--rate", float),
            ("--profile", str),
            ("--concurrency", int),
            ("--sample-every", float),
            ("--grace", float),
        ):
            sub.add_argument(name, type=kind)
        ours(sub.parse_args(sys.argv[2:]))
    else:
        main()
