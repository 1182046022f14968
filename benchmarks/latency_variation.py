"""How much do latency percentiles move between identical runs on this machine? The noise a
latency threshold or a latency baseline's tolerance has to stand above.

    python benchmarks/latency_variation.py [--runs 8] [--duration 20] [--out docs/latency-variation.txt]
        [--in-process-only | --served-only]

Every run is one full soak run as a user's test makes it (``run_soak``): ``spike-at-8am`` at
peak 150 req/s compressed into ``--duration`` seconds, the same recording and the same seed each
time, against one small ASGI app (``app`` below: a JSON answer after a little CPU work), in
process (the app object, on the harness's event loop) and served (the same app under uvicorn in
its own process). For each phase and the whole run: p50, p95 and p99 of every run, then the
spread: max/min over the runs, and each run's value over the runs' median at its 5th, 50th and
95th percentile. Exit status 0 always: a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PERCENTILES = (50.0, 95.0, 99.0)
WHOLE_RUN = "(whole run)"


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """``/health`` answers ``ok``; anything else a small JSON body after hashing its path a few
    hundred times (some CPU per request, the same for every run)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/health":
        body = b"ok"
    else:
        digest = path.encode()
        for _ in range(300):
            digest = hashlib.sha256(digest).digest()
        body = json.dumps({"path": path, "digest": digest.hex()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def recording(length: int) -> Any:
    from pytest_soak.traffic import Exchange, Traffic

    return Traffic(
        tuple(Exchange(n * 0.02, "GET", f"/item/{n % 97}") for n in range(length)),
        path="<item recording>",
    )


def in_process_target() -> tuple[Any, Callable[[], None]]:
    return app, lambda: None


def served_target() -> tuple[Any, Callable[[], None]]:
    from pytest_soak.driver.targets import ServedProcess

    served = ServedProcess(
        [sys.executable, "-m", "uvicorn", "latency_variation:app", "--port", "{port}",
         "--log-level", "warning"],
        ready="/health", cwd=HERE,
    )  # fmt: skip
    return served, served.stop


TARGETS: dict[str, Callable[[], tuple[Any, Callable[[], None]]]] = {
    "in-process": in_process_target,
    "served": served_target,
}


def one_run(kind: str, settings: Any, traffic: Any) -> dict[str, dict[float, float]]:
    """Seconds per phase (and the whole run, from the phases' merged histograms) and
    percentile."""
    from pytest_soak.engine import run_soak

    target, cleanup = TARGETS[kind]()
    try:
        result = run_soak(target, traffic, settings, check=False, attribution=False)
    finally:
        with contextlib.suppress(Exception):
            cleanup()
        gc.collect()
    figures: dict[str, dict[float, float]] = {}
    for phase in result.run.phases:
        figures[phase.name] = {q: phase.latency.percentile(q) for q in PERCENTILES}
    whole = result.run.latency()
    figures[WHOLE_RUN] = {q: whole.percentile(q) for q in PERCENTILES}
    figures[WHOLE_RUN][0.0] = float(result.run.sent)
    return figures


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread_lines(kind: str, runs: list[dict[str, dict[float, float]]]) -> list[str]:
    lines = [
        f"## {kind}: {len(runs)} runs",
        f"{'phase':<14} {'pct':>4}  {'min':>8} {'median':>8} {'max':>8}  {'max/min':>7}  "
        f"{'run/median p5':>13} {'p50':>5} {'p95':>5}",
    ]
    ratios: dict[float, list[float]] = {q: [] for q in PERCENTILES}
    for phase in runs[0]:
        for q in PERCENTILES:
            values = [run[phase][q] for run in runs if phase in run]
            if not values or min(values) <= 0:
                continue
            median = statistics.median(values)
            relative = [v / median for v in values]
            ratio = max(values) / min(values)
            if phase != WHOLE_RUN:
                ratios[q].append(ratio)
            lines.append(
                f"{phase:<14} p{q:<3g}  {min(values) * 1000:>6.2f}ms {median * 1000:>6.2f}ms "
                f"{max(values) * 1000:>6.2f}ms  {ratio:>7.2f}  {_quantile(relative, 0.05):>13.2f} "
                f"{_quantile(relative, 0.5):>5.2f} {_quantile(relative, 0.95):>5.2f}"
            )
    lines.append(
        "max/min over the phases: "
        + "; ".join(
            f"p{q:g} median {statistics.median(r):.2f}, worst {max(r):.2f}"
            for q, r in ratios.items()
            if r
        )
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", type=int, default=8, help="identical runs of each target")
    parser.add_argument("--duration", type=float, default=20.0, help="wall seconds of one run")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--in-process-only", action="store_true")
    where.add_argument("--served-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the output here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))

    from pytest_soak.files import write_atomic
    from pytest_soak.settings import resolve

    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150, "seed": 1},
        mode="quick",
        duration_override=args.duration,
    )
    planned = settings.profile.timeline(settings.peak_rps, settings.duration).request_count
    traffic = recording(max(500, planned))
    kinds = [
        kind
        for kind in TARGETS
        if not (args.in_process_only and kind == "served")
        and not (args.served_only and kind == "in-process")
    ]
    try:
        load = os.getloadavg()
        load_text = f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start"
    except OSError:
        load_text = "load average unknown"
    lines = [
        f"# latency_variation.py --runs {args.runs} --duration {args.duration:g}"
        f"  ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, {load_text})",
        f"# spike-at-8am, peak 150 req/s, quick mode, seed 1, the same recording every run:"
        f" {planned} requests planned per run (phases summed over the run's cycles)",
    ]
    for text in lines:
        print(text, flush=True)
    started = time.monotonic()
    try:
        for kind in kinds:
            runs: list[dict[str, dict[float, float]]] = []
            for number in range(args.runs):
                figures = one_run(kind, settings, traffic)
                runs.append(figures)
                whole = figures[WHOLE_RUN]
                row = (
                    f"# {kind} run {number + 1}: {int(whole[0.0])} requests, whole-run "
                    + ", ".join(f"p{q:g} {whole[q] * 1000:.2f}ms" for q in PERCENTILES)
                )
                lines.append(row)
                print(row, flush=True)
            block = ["", *spread_lines(kind, runs), ""]
            lines.extend(block)
            print("\n".join(block), flush=True)
    except KeyboardInterrupt:
        lines.append("# interrupted")
    lines.append(f"# {(time.monotonic() - started) / 60:.1f} min in all")
    print(lines[-1], flush=True)
    if args.out:
        write_atomic(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
    sys.exit(0)
