"""What does pytest_soak.record cost a served ASGI service? Throughput and latency with the
recording middleware off, on at sample rate 1.0 and on at 0.1, on the same small uvicorn
service, in the same run.

    python benchmarks/recorder_overhead.py [--rounds 4] [--seconds 10] [--rate 1000]
        [--closed-seconds 5] [--concurrency 32] [--app starlette|plain]
        [--flush-interval 0.1] [--out docs/recorder-overhead.txt]

The service (``--app``): a Starlette app (or a bare ASGI callable) with two JSON endpoints,
``GET /item/{n}`` and ``POST /cart`` (reads a ~250-byte JSON body), served by uvicorn in a
subprocess on loopback, pinned to CPU 1 (``taskset``); the load runs in this process, pinned
to CPU 0. Requests carry an ``Authorization`` header and a ``Cookie`` and one in four is a POST,
so the recorder redacts headers and parses bodies as it would in production. With recording on,
the middleware writes to a temp file (rotating at its default 100 MiB) with its defaults.

Each round serves the service three times, off, on at 1.0 and on at 0.1, in an order that
rotates from round to round so that drift of the machine spreads over all three. Each leg:

1. **open loop**: ``--rate`` req/s (constant profile) for ``--seconds`` with our driver's
   open-model replay (each request sent at its intended time; latency measured from the
   intended time, so queueing in the service shows): answered req/s over the phase's wall
   time, p50 and p99 latency;
2. **closed loop**: the maximum throughput, ``--concurrency`` keep-alive workers sending back
   to back for ``--closed-seconds`` (the more sensitive number: every CPU cycle the recorder
   takes is a request not served).

A 1 s closed-loop warm-up precedes both. For each leg it also reads the service process's CPU
time (user + system, all its threads: the recorder's writer included) per answered request; on
a machine shared with other work that is much steadier than throughput, and CPU off / on is the
maximum throughput it implies. It prints each leg, the ratios on/off per round, and their mean
and spread; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
SERVER_CPU = 1
CLIENT_CPU = 0

from transcript import Transcript, spread  # noqa: E402

from pytest_soak.driver.clients import SendFailure  # noqa: E402
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay  # noqa: E402
from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.profiles import get_profile  # noqa: E402
from pytest_soak.traffic import Exchange  # noqa: E402

SERVICE = textwrap.dedent(
    """
    import json
    import os

    def _item(n):
        return {"id": n, "name": f"item {n}", "price": round(n * 0.37, 2),
                "tags": ["a", "b", str(n % 7)], "in_stock": n % 3 != 0}

    def _cart(payload):
        total = sum(line["qty"] * 2.5 for line in payload["lines"])
        return {"cart": payload["cart"], "lines": len(payload["lines"]), "total": total}

    if os.environ["BENCH_APP"] == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def item(request):
            return JSONResponse(_item(request.path_params["n"]))

        async def cart(request):
            return JSONResponse(_cart(await request.json()), status_code=201)

        app = Starlette(routes=[Route("/item/{n:int}", item),
                                Route("/cart", cart, methods=["POST"])])
    else:
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            parts = scope["path"].strip("/").split("/")
            if scope["method"] == "POST" and parts == ["cart"]:
                data, status = _cart(json.loads(body)), 201
            elif len(parts) == 2 and parts[0] == "item" and parts[1].isdigit():
                data, status = _item(int(parts[1])), 200
            else:
                data, status = {"error": "not found"}, 404
            out = json.dumps(data).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})

    if os.environ.get("RECORD_RATE"):
        from pytest_soak.record import RecordingMiddleware

        app = RecordingMiddleware(app, os.environ["RECORD_PATH"],
                                  sample_rate=float(os.environ["RECORD_RATE"]), seed=1,
                                  flush_interval=float(os.environ["RECORD_FLUSH"]))
    """
)
LEGS = (("off", None), ("on 1.0", 1.0), ("on 0.1", 0.1))


def exchanges() -> list[Exchange]:
    """GETs of 1,000 items and, every fourth request, a POST of a cart; all with the headers a
    browser session sends, a bearer token and a session cookie among them."""
    base = (
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0"),
        ("Accept", "application/json"),
        ("Accept-Language", "en-GB,en;q=0.9"),
        ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"),
        ("Cookie", "theme=dark; sessionid=7f3a9c0e5b2d4a61; cart=c000123"),
    )
    out = []
    for n in range(1, 1001):
        if n % 4 == 0:
            lines = [{"product": f"p{(n + k) % 20:02d}", "qty": 1 + k % 3} for k in range(5)]
            body = json.dumps({"cart": f"c{n:06d}", "lines": lines}).encode()
            headers = (*base, ("Content-Type", "application/json"))
            out.append(Exchange(0.0, "POST", "/cart", headers, body))
        else:
            out.append(Exchange(0.0, "GET", f"/item/{n}", base))
    return out


def serve(app: str, rate: float | None, record_path: Path, flush: float) -> ServedProcess:
    env = {"BENCH_APP": app, "RECORD_RATE": "" if rate is None else str(rate),
           "RECORD_PATH": str(record_path), "RECORD_FLUSH": str(flush)}  # fmt: skip
    return ServedProcess(
        ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "uvicorn",
         "_recorder_overhead_service:app", "--port", "{port}", "--log-level", "warning",
         "--no-access-log"],
        env=env, ready="/item/1", cwd=HERE, agent=False,
    )  # fmt: skip


async def open_loop(served: ServedProcess, rate: float, seconds: float) -> dict[str, float]:
    """Our driver's open-model replay at a constant ``rate``: answered req/s, p50, p99."""
    timeline = get_profile("constant").timeline(rate, seconds)
    run = await replay(
        served,
        exchanges(),
        timeline.arrivals(),
        planned_requests=timeline.request_count,
        phases=plan_phases(timeline),
        wall_seconds=seconds,
        profile="constant",
        peak_rps=rate,
        checkpoints=[0],
        on_checkpoint=lambda point: None,
        config=ReplayConfig(concurrency=256),
        live=LiveState(),
    )
    [phase] = run.phases
    answered = phase.statuses["2xx"]
    return {
        "rps": answered / phase.duration if phase.duration else 0.0,
        "p50": phase.latency.percentile(50),
        "p99": phase.latency.percentile(99),
        "errors": float(phase.error_count),
        "late": float(phase.late),
        "wall": phase.duration,
    }


async def closed_loop(served: ServedProcess, seconds: float, concurrency: int) -> tuple[int, float]:
    """(answered 2xx, wall seconds) with ``concurrency`` workers sending back to back."""
    requests = exchanges()
    client = await served.open_client(concurrency, 10.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counts = {"ok": 0, "next": 0}

    async def worker() -> None:
        while loop.time() < deadline:
            exchange = requests[counts["next"] % len(requests)]
            counts["next"] += 1
            with contextlib.suppress(SendFailure):
                if await client.send(exchange) < 300:
                    counts["ok"] += 1

    began = loop.time()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return counts["ok"], loop.time() - began


def recorded(path: Path) -> tuple[int, int]:
    """(lines written, records dropped) in a finished recording."""
    if not path.exists():
        return 0, 0
    written = dropped = 0
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            written += 1
        elif line.startswith("# dropped "):
            dropped += int(line.split()[2])
    return written, dropped


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the service process so far (its threads included)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def leg(args: argparse.Namespace, rate: float | None, folder: Path) -> dict[str, float]:
    path = folder / f"traffic-{time.monotonic_ns()}.jsonl"
    served = serve(args.app, rate, path, args.flush_interval)
    try:
        asyncio.run(closed_loop(served, 1.0, args.concurrency))  # warm-up
        began = cpu_seconds(served.pid)
        out = asyncio.run(open_loop(served, args.rate, args.seconds))
        out["cpu"] = (cpu_seconds(served.pid) - began) / (out["rps"] * out["wall"])
        began = cpu_seconds(served.pid)
        answered, wall = asyncio.run(closed_loop(served, args.closed_seconds, args.concurrency))
        out["max_rps"] = answered / wall
        out["max_cpu"] = (cpu_seconds(served.pid) - began) / answered
    finally:
        served.stop()  # SIGTERM: uvicorn's shutdown closes the recorder (lifespan)
    written, dropped = recorded(path)
    out.update(written=written, dropped=dropped)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="open loop, per leg")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop req/s")
    parser.add_argument("--closed-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers")
    parser.add_argument("--app", choices=("starlette", "plain"), default="starlette")
    parser.add_argument("--flush-interval", type=float, default=0.1, help="the recorder's")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    script = HERE / "_recorder_overhead_service.py"
    script.write_text(SERVICE)
    transcript = Transcript()
    say = transcript.say

    say(
        f"# benchmarks/recorder_overhead.py {' '.join(sys.argv[1:])} — "
        f"{time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )
    say(
        f"service: {args.app} on uvicorn, CPU {SERVER_CPU}; load on CPU {CLIENT_CPU}; open loop "
        f"{args.rate:g} req/s for {args.seconds:g}s, then closed loop {args.concurrency} workers "
        f"for {args.closed_seconds:g}s"
    )
    say(
        f"{'round':<6}{'recording':<11}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'late':>6}"
        f"{'errors':>7}{'cpu us/req':>11}{'max req/s':>11}{'cpu us/req':>11}{'written':>9}"
        f"{'dropped':>9}"
    )
    keys = ("rps", "p50", "p99", "max_rps", "max_cpu")
    ratios = {name: {key: [] for key in keys} for name, _ in LEGS[1:]}
    extra_cpu: dict[str, dict[str, list[float]]] = {
        name: {"cpu": [], "max_cpu": []} for name, _ in LEGS[1:]
    }
    try:
        with tempfile.TemporaryDirectory() as folder:
            for number in range(args.rounds):
                shift = number % len(LEGS)
                order = LEGS[shift:] + LEGS[:shift]
                results: dict[str, dict[str, float]] = {}
                for name, rate in order:
                    out = leg(args, rate, Path(folder))
                    results[name] = out
                    say(
                        f"{number + 1:<6}{name:<11}{out['rps']:>8.1f}{1000 * out['p50']:>8.2f}"
                        f"{1000 * out['p99']:>8.2f}{out['late']:>6.0f}{out['errors']:>7.0f}"
                        f"{1e6 * out['cpu']:>11.0f}{out['max_rps']:>11.0f}"
                        f"{1e6 * out['max_cpu']:>11.0f}{out['written']:>9.0f}{out['dropped']:>9.0f}"
                    )
                off = results["off"]
                for name, _ in LEGS[1:]:
                    for key in keys:
                        ratios[name][key].append(results[name][key] / off[key])
                    for key in ("cpu", "max_cpu"):
                        extra_cpu[name][key].append(1e6 * (results[name][key] - off[key]))
                for name, _ in LEGS[1:]:
                    say(
                        f"      {name} / off: req/s {ratios[name]['rps'][-1]:.3f}, p50 "
                        f"{ratios[name]['p50'][-1]:.2f}x, p99 {ratios[name]['p99'][-1]:.2f}x, "
                        f"cpu/req {extra_cpu[name]['cpu'][-1]:+.0f} us; max req/s "
                        f"{ratios[name]['max_rps'][-1]:.3f}, cpu/req "
                        f"{extra_cpu[name]['max_cpu'][-1]:+.0f} us"
                    )
        say()
        for name, _ in LEGS[1:]:
            values = ratios[name]
            cpu = statistics.mean(extra_cpu[name]["cpu"])
            say(f"recording {name} / off, over {args.rounds} rounds (mean, min, max, stdev):")
            say(f"  open loop {args.rate:g} req/s: throughput {spread(values['rps'], stdev=True)}")
            say(f"  open loop p50 latency      {spread(values['p50'], stdev=True)}")
            say(f"  open loop p99 latency      {spread(values['p99'], stdev=True)}")
            say(
                f"  service CPU per request at {args.rate:g} req/s: {cpu:+.0f} us "
                f"(spread {spread(extra_cpu[name]['cpu'], stdev=True)}), i.e. "
                f"{cpu * args.rate / 1e4:+.1f} % of one core"
            )
            say(
                f"  closed loop max throughput {spread(values['max_rps'], stdev=True)} -> cost "
                f"{100 * (1 - statistics.mean(values['max_rps'])):.1f} %"
            )
            implied = [1 / ratio for ratio in values["max_cpu"]]
            say(
                f"  closed loop CPU per request {statistics.mean(extra_cpu[name]['max_cpu']):+.0f}"
                f" us; the max throughput it implies (CPU off / on) {spread(implied, stdev=True)} -> cost "
                f"{100 * (1 - statistics.mean(implied)):.1f} %"
            )
    finally:
        script.unlink(missing_ok=True)
    transcript.write(args.out, keep_old=True)


if __name__ == "__main__":
    main()
