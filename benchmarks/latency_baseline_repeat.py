"""Does a latency baseline recorded on the fast version catch the slow version, and pass the fast
version again, run after run, with the default tolerance (``latency_tolerance=True``: 50% + 20 ms)?
Issue 15's acceptance: the fast version passes in 10 of 10 runs, the slow version is caught.

    PYTHONPATH=. python benchmarks/latency_baseline_repeat.py [--fast-runs 10] [--slow-runs 3]
        [--duration 20] [--slow-ms 40] [--out docs/latency-baseline-repeat.txt] [--keep DIR]

A temporary project holds one soak test as a user writes it: ``spike-at-8am`` at peak 150 req/s,
``latency_tolerance=True``, replaying a recording (nine in ten requests ``GET /item/<id>``, one in
ten ``GET /search?q=<word>``) against a small in-process ASGI app (``/item`` and ``/search``
answer JSON after a little CPU work, as in ``latency_variation.py``). The slow version is the same
app with ``SOAK_BENCH_SLOW_MS`` set: ``/search`` then sleeps that many milliseconds first (one
endpoint regressed, the rest unchanged).

The baseline is recorded once on the fast version (``--soak-update-baselines``); then every run is
a fresh ``python -m pytest -p no:cacheprovider -n 0 --soak-json=...`` subprocess, the fast version
``--fast-runs`` times and the slow version ``--slow-runs`` times. Each run's verdict and
``baseline.latency`` comparison come from its JSON; the ratios are each compared percentile
(p50/p95/p99 of every phase with enough requests above the percentile on both sides, by the
comparison's own rule, ``comparable``)
over its baseline figure, and over what the tolerance allows (above 1.00 fails), from the run's
exact percentiles (the test writes them beside the JSON, which rounds to the millisecond).
Exit status 0 always: a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcript import Transcript

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PERCENTILES = ("p50", "p95", "p99")
FAILING = ("leak", "regression", "error")

TEST_MODULE = textwrap.dedent(
    '''
    """One soak test with a latency baseline; SOAK_BENCH_SLOW_MS slows /search down."""

    import asyncio
    import hashlib
    import json
    import os

    import pytest


    async def app(scope, receive, send):
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
        slow_ms = float(os.environ.get("SOAK_BENCH_SLOW_MS") or 0)
        if path == "/search" and slow_ms:
            await asyncio.sleep(slow_ms / 1000)
        digest = (path + scope.get("query_string", b"").decode()).encode()
        for _ in range(300):
            digest = hashlib.sha256(digest).digest()
        body = json.dumps({"path": path, "digest": digest.hex()}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


    @pytest.mark.soak(profile="spike-at-8am", peak_rps=150, latency_tolerance=True)
    def test_shop(soak, replay_traffic):
        try:
            soak.run(app, replay_traffic("shop.jsonl"))
        finally:
            out = os.environ.get("SOAK_BENCH_EXACT")
            if out and soak.results:
                phases = [
                    {"name": p.name, "requests": p.requests, "p50": p.p50, "p95": p.p95,
                     "p99": p.p99}
                    for p in soak.results[-1].analysis.phases
                ]
                with open(out, "w") as handle:
                    json.dump(phases, handle)
    '''
).lstrip()

WORDS = ("lamp", "chair", "desk", "shelf", "rug", "sofa", "mirror", "clock", "vase", "table")


def recording(length: int = 3000) -> str:
    """Native JSONL: nine in ten ``GET /item/<id>`` over 400 ids, one in ten ``GET /search``."""
    lines = []
    for n in range(length):
        url = f"/search?q={WORDS[n % len(WORDS)]}" if n % 10 == 5 else f"/item/i{n % 400:06d}"
        lines.append(
            json.dumps(
                {"offset": round(n * 0.01, 4), "method": "GET", "url": url,
                 "headers": {"User-Agent": "soak-bench"}}
            )
        )  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class Outcome:
    version: str
    number: int
    returncode: int
    seconds: float
    verdict: str
    latency: dict[str, Any]
    worst_ratio: tuple[float, str]  # observed / baseline, where
    worst_allowed: tuple[float, str]  # observed / allowed, where
    compared: int
    lateness: dict[str, tuple[int, float]]  # phase -> late requests, lateness p99 (s)

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def make_project(folder: Path) -> None:
    (folder / "test_shop.py").write_text(TEST_MODULE)
    (folder / "shop.jsonl").write_text(recording())
    (folder / "pytest.ini").write_text("[pytest]\n")


def run_pytest(
    folder: Path, duration: float, slow_ms: float, extra: list[str], exact: Path | None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )  # this tree's pytest_soak
    env.pop("SOAK_BENCH_SLOW_MS", None)
    if slow_ms:
        env["SOAK_BENCH_SLOW_MS"] = f"{slow_ms:g}"
    env.pop("SOAK_BENCH_EXACT", None)
    if exact is not None:
        env["SOAK_BENCH_EXACT"] = str(exact)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
        f"--soak-duration={duration:g}s", *extra, "test_shop.py",
    ]  # fmt: skip
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)


def baseline_phases(folder: Path) -> dict[str, dict[str, Any]]:
    [written] = (folder / "__soak_baselines__").glob("*.json")
    [entry] = json.loads(written.read_text())["tests"]["test_shop"].values()
    return {phase["name"]: phase for phase in entry["phases"]}


def one_run(
    folder: Path, version: str, number: int, args: argparse.Namespace, baseline: dict[str, Any]
) -> Outcome:
    from pytest_soak.baselines.comparison import comparable
    from pytest_soak.thresholds import DEFAULT_LATENCY_TOLERANCE

    report = folder / f"{version}-{number}.json"
    exact = folder / f"{version}-{number}.exact.json"
    slow_ms = args.slow_ms if version == "slow" else 0.0
    started = time.monotonic()
    done = run_pytest(folder, args.duration, slow_ms, [f"--soak-json={report}"], exact)
    seconds = time.monotonic() - started
    try:
        [result] = json.loads(report.read_text())["results"]
    except (OSError, ValueError) as exc:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise SystemExit(f"{version} run {number}: no result ({exc})\n" + "\n".join(tail)) from None
    phases = json.loads(exact.read_text()) if exact.exists() else result["phases"]
    worst_ratio, worst_allowed, compared = (0.0, "-"), (0.0, "-"), 0
    for phase in phases:
        before = baseline.get(phase["name"])
        if before is None:
            continue
        for name in PERCENTILES:
            expected = before.get(name)
            if not expected or not comparable(name, min(before["requests"], phase["requests"])):
                continue
            compared += 1
            where = f"{phase['name']} {name} {phase[name] * 1000:.2f}ms vs {expected * 1000:.2f}ms"
            ratio = phase[name] / expected
            over = phase[name] / DEFAULT_LATENCY_TOLERANCE.allowed(expected)
            worst_ratio = max(worst_ratio, (ratio, where))
            worst_allowed = max(worst_allowed, (over, where))
    latency = (result.get("baseline") or {}).get("latency") or {}
    lateness = {p["name"]: (p.get("late", 0), p.get("lateness_p99", 0.0)) for p in result["phases"]}
    return Outcome(
        version, number, done.returncode, seconds, result["verdict"], latency,
        worst_ratio, worst_allowed, compared, lateness,
    )  # fmt: skip


def row(outcome: Outcome) -> str:
    latency = outcome.latency.get("status", "?")
    over = ", ".join(
        f"{o['phase']} {o['percentile']} {o['observed'] * 1000:.1f}ms > {o['allowed'] * 1000:.1f}ms"
        for o in outcome.latency.get("over", [])
    )
    if over and outcome.version == "fast":  # sent late: the harness's loop (the process) stalled
        over += "\n      sent late (late requests, lateness p99): " + ", ".join(
            f"{name} {late}, {lateness * 1000:.1f}ms"
            for name, (late, lateness) in outcome.lateness.items()
        )
    excused = ", ".join(
        f"{o['phase']} {o['percentile']} {o['observed'] * 1000:.1f}ms > {o['allowed'] * 1000:.1f}ms"
        f" (send lag {o['lag'] * 1000:.1f}ms)"
        for o in outcome.latency.get("excused", [])
    )
    return (
        f"{outcome.version:<4} run {outcome.number:>2}: verdict {outcome.verdict:<12} latency "
        f"{latency:<7} ({outcome.compared} compared)  max run/baseline {outcome.worst_ratio[0]:5.2f}"
        f" ({outcome.worst_ratio[1]})  max run/allowed {outcome.worst_allowed[0]:4.2f}  "
        f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.seconds:.0f}s"
        + (f"\n      over: {over}" if over else "")
        + (f"\n      not judged, over by the harness's send lag: {excused}" if excused else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--fast-runs", type=int, default=10, help="runs of the fast version")
    parser.add_argument("--slow-runs", type=int, default=3, help="runs of the slow version")
    parser.add_argument("--duration", type=float, default=20.0, help="--soak-duration, seconds")
    parser.add_argument(
        "--slow-ms", type=float, default=40.0, help="the slow version's sleep in /search, ms"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the output here")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the project and every run's JSON here"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from pytest_soak.thresholds import DEFAULT_LATENCY_TOLERANCE

    try:
        load = os.getloadavg()
        load_text = f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start"
    except OSError:
        load_text = "load average unknown"
    transcript = Transcript()
    say = transcript.say

    say(
        f"# latency_baseline_repeat.py --fast-runs {args.fast_runs} --slow-runs {args.slow_runs}"
        f" --duration {args.duration:g} --slow-ms {args.slow_ms:g}  ({time.strftime('%Y-%m-%d %H:%M')},"
        f" {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {load_text})"
    )
    say(
        f"# spike-at-8am, peak 150 req/s, in-process ASGI app, latency_tolerance=True"
        f" ({DEFAULT_LATENCY_TOLERANCE}); slow version: /search (1 in 10 requests) sleeps"
        f" {args.slow_ms:g} ms"
    )
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = args.keep
            folder.mkdir(parents=True, exist_ok=False)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-latrep-")))
        make_project(folder)
        recorded = run_pytest(folder, args.duration, 0.0, ["--soak-update-baselines"], None)
        if recorded.returncode != 0:
            say("# recording the baseline failed:")
            for text in (recorded.stdout + recorded.stderr).strip().splitlines()[-20:]:
                say(f"#   {text}")
            return 0
        baseline = baseline_phases(folder)
        say(
            "# baseline (fast version, recorded once): "
            + "; ".join(
                f"{name} {p['requests']} req p50/p95/p99 "
                + "/".join(f"{p[q] * 1000:.1f}" for q in PERCENTILES)
                + " ms"
                for name, p in baseline.items()
                if p.get("p50") is not None
            )
        )
        try:
            plan = [("fast", n + 1) for n in range(args.fast_runs)]
            plan += [("slow", n + 1) for n in range(args.slow_runs)]
            for version, number in plan:
                outcome = one_run(folder, version, number, args, baseline)
                outcomes.append(outcome)
                say(row(outcome))
        except KeyboardInterrupt:
            say("# interrupted")
    fast = [o for o in outcomes if o.version == "fast"]
    slow = [o for o in outcomes if o.version == "slow"]
    caught = [o for o in slow if not o.passed and o.latency.get("status") == "over"]
    say()
    say(f"fast passed {sum(o.passed for o in fast)} of {len(fast)}")
    say(f"slow caught {len(caught)} of {len(slow)} (latency over the baseline, test failed)")
    if fast:
        worst = max(fast, key=lambda o: o.worst_allowed)
        say(
            f"worst fast run: run {worst.number}, max run/baseline {max(o.worst_ratio for o in fast)[0]:.2f}"
            f" ({max(o.worst_ratio for o in fast)[1]}), max run/allowed"
            f" {worst.worst_allowed[0]:.2f} ({worst.worst_allowed[1]})"
        )
    if slow:
        least = min(slow, key=lambda o: o.worst_allowed)
        say(
            f"least-caught slow run: run {least.number}, max run/allowed"
            f" {least.worst_allowed[0]:.2f} ({least.worst_allowed[1]})"
        )
    say(f"# {(time.monotonic() - started) / 60:.1f} min in all")
    transcript.write(args.out)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
    sys.exit(0)
