"""Scale-out: the aggregate throughput of N Locust workers against 1, on one loopback server.

    pip install -e '.[locust]'
    python benchmarks/locust_scaleout.py [--seconds 10] [--workers 1 2] [--out docs/scale-out.txt]

One uvicorn server (a minimal ASGI app answering ``200 ok``, httptools, one process unless
``--server-workers``) on loopback, and for each N of ``--workers`` a local Locust master with N
workers (``--soak-locust-workers=N``'s cluster), each replaying its share of a ``constant``
profile whose rate (``--rate``) no worker can reach: every worker sends as fast as its share
allows (open model: behind schedule, at most ``--concurrency`` in flight over all workers).

1. **Throughput.** Answered requests per second of load (the checkpoint pauses left out), for
   pytest-soak's local driver (in this process, no Locust) and for each N; the ratio of N
   workers to 1.
2. **Schedule.** The same cluster at a rate every worker can keep (``--steady-rate``): per
   phase, achieved / intended send rate (``rate_accuracy``), late requests and p99 lateness,
   merged over the workers.

Nothing here asserts: it prints the numbers (and writes them to ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from transcript import Transcript

from pytest_soak.cycles import CyclePlan, plan_cycles
from pytest_soak.driver.records import Checkpoint, Run
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay
from pytest_soak.driver.targets import ServedProcess, UrlTarget
from pytest_soak.scaleout.cluster import open_cluster
from pytest_soak.settings import resolve
from pytest_soak.traffic import Exchange, Traffic

HERE = Path(__file__).resolve().parent


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The server's whole app: ``200 ok`` to every request."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _serve(workers: int) -> ServedProcess:
    """The app under uvicorn on a free loopback port (no agent: the server is only measured
    for its CPU), ready when it answers."""
    return ServedProcess(
        [sys.executable, "-m", "uvicorn", "locust_scaleout:app", "--port", "{port}",
         "--log-level", "warning", "--no-access-log", "--http", "httptools",
         "--workers", str(workers)],
        cwd=HERE, ready="/", agent=False,
    )  # fmt: skip


def _plan(rate: float, seconds: float) -> CyclePlan:
    settings = resolve(
        {"profile": "constant", "peak_rps": rate}, mode="quick", duration_override=seconds
    )
    traffic = Traffic(tuple(Exchange(i * 0.01, "GET", f"/item/{i}") for i in range(1000)))
    return plan_cycles(traffic, settings)


def _cycles(plan: CyclePlan) -> int:
    """Quick mode's cycles (the warm-up and the measured ones), which ``_plan`` sized."""
    settings = resolve({"peak_rps": 1}, mode="quick")
    return settings.warmup_cycles + settings.measured_cycles


async def _local(url: str, plan: CyclePlan, concurrency: int) -> Run:
    count = _cycles(plan)
    return await replay(
        UrlTarget(url),
        plan.choice.exchanges,
        plan.arrivals(count),
        planned_requests=plan.size * count,
        phases=plan_phases(plan.timeline, range(count)),
        wall_seconds=plan.timeline.wall_seconds * count,
        profile=plan.profile,
        peak_rps=plan.peak_rps,
        checkpoints=plan.checkpoints(count, first=True),
        on_checkpoint=lambda point: None,
        config=ReplayConfig(concurrency=concurrency),
        live=LiveState(),
    )


async def _cluster(url: str, plan: CyclePlan, workers: int, concurrency: int) -> Run:
    cluster = await open_cluster(None, workers)
    try:
        checkpoints: list[Checkpoint] = []
        return await cluster.replay(
            plan,
            first=0,
            count=_cycles(plan),
            target_url=url,
            allowed_hosts=(),
            concurrency=concurrency,
            request_timeout=30.0,
            ids="recorded",
            on_checkpoint=checkpoints.append,
            live=LiveState(),
        )
    finally:
        await cluster.aclose()


def _server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server's processes (uvicorn's workers included)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _answered(run: Run) -> int:
    return sum(sum(p.statuses.values()) for p in run.phases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rate", type=float, default=200_000, help="req/s asked: unreachable")
    parser.add_argument("--steady-rate", type=float, default=1_000, help="req/s for section 2")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight, all workers")
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    server = _serve(args.server_workers)
    url = server.url
    transcript = Transcript()
    say = transcript.say
    try:
        say(
            f"# benchmarks/locust_scaleout.py — {time.strftime('%Y-%m-%d')}, "
            f"{platform.python_version()}, {os.cpu_count()} CPUs "
            f"({platform.processor() or platform.machine()})"
        )
        say(
            f"server: uvicorn ({args.server_workers} process, httptools) on loopback; clients and "
            f"server share every CPU; {args.concurrency} in flight at most over all workers; "
            f"{args.seconds:g}s of load each (9 cycles: 10 coordinated checkpoints)"
        )
        say()
        say(f"## 1. throughput: constant {args.rate:,.0f} req/s asked (more than any can send)")
        say("answered req/s = answered requests / seconds of load (checkpoint pauses left out)")
        plan = _plan(args.rate, args.seconds)
        achieved: dict[str, float] = {}
        runs: list[tuple[str, Run, float]] = []
        for n in [0, *args.workers]:
            busy = _server_cpu(server.pid)
            if n == 0:
                name, run = (
                    "local driver (no Locust)",
                    asyncio.run(_local(url, plan, args.concurrency)),
                )
            else:
                name = f"{n} Locust worker{'s' * (n > 1)}"
                run = asyncio.run(_cluster(url, plan, n, args.concurrency))
            runs.append((name, run, _server_cpu(server.pid) - busy))
            time.sleep(1)
        for name, run, server_cpu in runs:
            active = max(1e-9, run.elapsed - run.paused)
            achieved[name] = _answered(run) / active
            say(
                f"{name:<26} {_answered(run):>8,} answered in {active:5.1f}s of load -> "
                f"{achieved[name]:>7,.0f} req/s; server CPU {server_cpu / run.elapsed:4.2f} "
                f"cores; errors {run.errors}"
                f"{'; stopped: ' + run.aborted if run.aborted else ''}"
            )
        names = [name for name, _, _ in runs[1:]]
        for name in names[1:]:
            say(f"ratio {name} / {names[0]} = {achieved[name] / achieved[names[0]]:.2f}")
        say()
        steady = _plan(args.steady_rate, args.seconds)
        for n in args.workers:
            say(f"## 2. schedule: constant {args.steady_rate:,.0f} req/s, {n} Locust worker(s)")
            run = asyncio.run(_cluster(url, steady, n, args.concurrency))
            say("phase          sent  target/s  achieved/s  rate_accuracy  late  p99 lateness")
            for p in run.phases:
                accuracy = p.rate_accuracy or 0.0
                say(
                    f"{p.name:<10} {p.sent:>8,} {p.target_rps:>9.1f} {p.achieved_rps:>11.1f} "
                    f"{accuracy:>14.4f} {p.late:>5} {p.lateness.percentile(99) * 1000:>11.2f}ms"
                )
            say(f"errors {run.errors}, unsent {run.unsent}, paused {run.paused:.2f}s "
                f"over {len(run.checkpoints)} checkpoints")  # fmt: skip
            say()
    finally:
        server.stop()
    transcript.write(args.out)


if __name__ == "__main__":
    main()
