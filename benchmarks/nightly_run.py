"""A nightly-length soak, for real: report sizes and the harness's own memory over hours.

    python benchmarks/nightly_run.py                    # a 2 h nightly run (about 2 h 5 min)
    python benchmarks/nightly_run.py --duration 10m     # a shorter look

The example shop is served by uvicorn (with the agent) and soaked through pytest with every
report switched on (``--soak-json``, ``--soak-report``, ``--soak-openmetrics``, ``--junitxml``).
The peer, measured in the same run, is the same test in quick mode (about a minute). While each
pytest runs, its own RSS (the harness: pytest, the driver, the sampler, the hub; not the served
shop) is read every few seconds from outside. Printed: each run's report sizes and samples kept,
the harness's RSS at its start, its most and at its end, and nightly / quick ratios. A report
that kept every sample, or a harness whose memory follows the run's length, shows up as a ratio
near the ratio of durations (about 120 for 2 h).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pytest_soak.units import format_bytes, format_duration, parse_duration

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "webshop"

TEST = textwrap.dedent(
    """
    import sys

    import pytest

    SHOP = {shop!r}


    @pytest.mark.soak(profile="spike-at-8am", peak_rps=150)
    def test_served_shop(soak, replay_traffic):
        svc = soak.serve(
            [sys.executable, "-m", "uvicorn", "shop.app:app", "--port", "{{port}}"],
            cwd=SHOP,
            ready="/health",
        )
        result = soak.run(svc, replay_traffic(SHOP + "/traffic/shop.har"), check=False)
        print("VERDICT", result.verdict)
    """
)


@dataclass
class Watch:
    """The harness's RSS, read every ``every`` seconds until stopped."""

    pid: int
    every: float
    rss: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        start = time.monotonic()
        try:
            process = psutil.Process(self.pid)
            while not self.stop.is_set():
                self.rss.append((time.monotonic() - start, process.memory_info().rss))
                self.stop.wait(self.every)
        except psutil.Error:
            return


@dataclass
class Outcome:
    mode: str
    wall: float
    rss: list[tuple[float, int]]
    sizes: dict[str, int]
    samples: int
    cycles: int
    verdict: str
    harness: dict[str, int]


def soak(mode: str, duration: float | None, workdir: Path, every: float) -> Outcome:
    out = workdir / mode
    out.mkdir()
    files = {
        "json": out / "results.json",
        "html": out / "report.html",
        "openmetrics": out / "soak.prom",
        "junit": out / "junit.xml",
    }
    command = [
        sys.executable, "-m", "pytest", str(workdir / "test_nightly.py"), "-p", "no:cacheprovider",
        "-n", "0", "-s", f"--soak-mode={mode}", f"--soak-json={files['json']}",
        f"--soak-report={files['html']}", f"--soak-openmetrics={files['openmetrics']}",
        f"--junitxml={files['junit']}",
    ]  # fmt: skip
    if duration is not None:
        command.append(f"--soak-duration={duration:g}s")
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, text=True)
    watch = Watch(process.pid, every)
    watcher = threading.Thread(target=watch.run, daemon=True)
    watcher.start()
    assert process.stdout is not None
    lines = process.stdout.read().splitlines()
    process.wait()
    watch.stop.set()
    watcher.join()
    wall = time.monotonic() - started
    if not files["json"].exists():
        rss = [value for _, value in watch.rss] or [0]
        sys.exit(
            f"{mode} run wrote no JSON after {format_duration(wall)} (harness RSS start "
            f"{format_bytes(rss[0])}, most {format_bytes(max(rss))}, end {format_bytes(rss[-1])}); "
            "pytest said:\n" + "\n".join(lines[-40:])
        )
    document = json.loads(files["json"].read_text())
    (result,) = document["results"]
    return Outcome(
        mode=mode,
        wall=wall,
        rss=watch.rss,
        sizes={name: path.stat().st_size for name, path in files.items()},
        samples=len(result.get("samples", [])),
        cycles=len(result.get("cycles", [])),
        verdict=result["verdict"],
        harness=result.get("harness", {}),
    )


def describe(o: Outcome) -> list[str]:
    rss = [value for _, value in o.rss]
    quarter = [value for t, value in o.rss if t >= o.wall / 4]
    sizes = ", ".join(f"{name} {format_bytes(size)}" for name, size in o.sizes.items())
    lines = [
        f"{o.mode}: {format_duration(o.wall)} wall, verdict {o.verdict}, {o.cycles} cycles, "
        f"{o.samples} samples kept in the JSON",
        f"  reports: {sizes}",
        f"  harness RSS (outside, every few s, {len(rss)} reads): start {format_bytes(rss[0])}, "
        f"most {format_bytes(max(rss))}, end {format_bytes(rss[-1])}; "
        f"after the first quarter: {format_bytes(min(quarter))} .. {format_bytes(max(quarter))}",
    ]
    if o.harness:
        lines.append(
            f"  harness RSS (the result's own): start {format_bytes(o.harness['rss_start'])}, "
            f"end {format_bytes(o.harness['rss_end'])}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="2h", help="the nightly run's length (default 2h)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS reads")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", type=Path, help="copy the reports into this folder")
    args = parser.parse_args()
    duration = parse_duration(args.duration, name="--duration")
    with tempfile.TemporaryDirectory(prefix="soak-nightly-") as tmp:
        workdir = Path(tmp)
        (workdir / "test_nightly.py").write_text(TEST.format(shop=str(SHOP)))
        quick = soak("quick", None, workdir, args.every)
        nightly = soak("nightly", duration, workdir, args.every)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for run in ("quick", "nightly"):
                for path in (workdir / run).iterdir():
                    (args.keep / f"{run}-{path.name}").write_bytes(path.read_bytes())
    header = (
        f"# nightly_run.py --duration {args.duration}  ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}); served shop (uvicorn + agent), "
        "spike-at-8am at peak 150 req/s"
    )
    lines = [header, *describe(quick), *describe(nightly)]
    ratio = nightly.wall / quick.wall
    lines.append(f"nightly / quick: wall {ratio:.1f}x")
    for name in quick.sizes:
        lines.append(f"  {name} size {nightly.sizes[name] / quick.sizes[name]:.2f}x")
    lines.append(f"  samples kept {nightly.samples / max(quick.samples, 1):.2f}x")
    lines.append(
        f"  harness most RSS {max(v for _, v in nightly.rss) / max(v for _, v in quick.rss):.2f}x"
    )
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
