"""Does the loopback mock server's own memory stay flat over a long soak? (issue 5 acceptance)

    python benchmarks/mock_memory.py [--duration 600] [--peak-rps 150] [--out docs/mock-memory.txt]

A nightly-style run: a real service (tests/mocks/payments_service.py under uvicorn) calls a
served mock payments API on every request, under chaos (10% 503, latency, 1% resets), while
pytest-soak replays traffic at it with the ``spike-at-8am`` profile compressed into
``--duration`` seconds. Every tenth request also makes an unmatched call to a new path
(``/checkout?n=N`` with N % 10 == 0 looks up ``/v1/lookup/N``), so the unmatched list
fills up and must stop growing. The mock server's RSS and USS are sampled
every second; the verdict compares the end against the first sample after the warm-up (the
first 10% of the run) and fits a slope over the rest. Exit status 1 when it grew by more than
``--limit`` (default 1 MiB).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "mocks"))

from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.engine import run_soak  # noqa: E402
from pytest_soak.mocks import Chaos, MockSet  # noqa: E402
from pytest_soak.settings import resolve  # noqa: E402
from pytest_soak.traffic import Exchange, Traffic  # noqa: E402
from pytest_soak.units import format_bytes, parse_size  # noqa: E402

SERVICE = [sys.executable, "-m", "uvicorn", "payments_service:app", "--port", "{port}",
           "--log-level", "warning"]  # fmt: skip


def sample(pid: int, stop: threading.Event, out: list[tuple[float, int, int]]) -> None:
    process = psutil.Process(pid)
    start = time.monotonic()
    while not stop.wait(1.0):
        info = process.memory_full_info()
        out.append((time.monotonic() - start, info.rss, info.uss))


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares bytes per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--peak-rps", type=float, default=150.0)
    parser.add_argument("--limit", default="1MiB", help="allowed growth after warm-up")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    limit = parse_size(args.limit, name="--limit")

    chaos = Chaos(error_rate=0.1, statuses=[503], latency="lognormal(5ms, 0.5)",
                  faults={"reset": 0.01}, seed=1)  # fmt: skip
    mappings = [
        {"request": {"method": "POST", "urlPath": "/v1/charges"},
         "response": {"status": 201, "jsonBody": {"id": "ch_1", "status": "succeeded"}}},
    ]  # fmt: skip
    traffic = Traffic(
        tuple(
            Exchange(offset=n * 0.01, method="POST", target=f"/checkout?n={n}") for n in range(400)
        ),
        path="<checkout traffic>",
    )
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()
    with MockSet.load(mappings, serve=True, chaos=chaos) as payments:
        assert payments.pid is not None
        service = ServedProcess(SERVICE, env={"PAYMENTS_URL": payments.url}, ready="/health",
                                cwd=ROOT / "tests" / "mocks")  # fmt: skip
        sampler = threading.Thread(target=sample, args=(payments.pid, stop, samples), daemon=True)
        sampler.start()
        try:
            settings = resolve(
                {"profile": "spike-at-8am", "peak_rps": args.peak_rps, "duration": args.duration},
                mode="nightly",
                duration_override=None,
                default_duration=None,
                allowed_hosts=(),
                overrides={},
            )
            result = run_soak(service, traffic, settings, test_id="mock_memory", check=False)
        finally:
            stop.set()
            sampler.join()
            service.stop()
        stats = payments.stats()

    warm = [s for s in samples if s[0] >= args.duration * 0.1] or samples
    rss_growth = warm[-1][1] - warm[0][1]
    uss_growth = warm[-1][2] - warm[0][2]
    rss_slope = slope([(t, rss) for t, rss, _ in warm])
    lines = [
        f"mock server memory over a {args.duration:.0f}s spike-at-8am run at peak "
        f"{args.peak_rps:g} req/s (service verdict {result.verdict}, {result.run.sent:,} requests "
        f"to the service)",
        f"mock server: {stats['requests']:,} requests, {stats['unmatched_count']:,} unmatched "
        f"({len(stats['unmatched'])} listed), injected {json.dumps(stats['injected'])}",
        f"RSS after warm-up {format_bytes(warm[0][1])}, end {format_bytes(warm[-1][1])}, "
        f"max {format_bytes(max(s[1] for s in warm))}; growth {format_bytes(rss_growth, signed=True)}, "
        f"slope {rss_slope:+.1f} B/s",
        f"USS after warm-up {format_bytes(warm[0][2])}, end {format_bytes(warm[-1][2])}; "
        f"growth {format_bytes(uss_growth, signed=True)}",
    ]
    tenths = [warm[min(len(warm) - 1, round(k * (len(warm) - 1) / 9))] for k in range(10)]
    lines.append(
        "RSS through the run (after warm-up, in tenths): "
        + ", ".join(f"{t:.0f}s {format_bytes(rss)}" for t, rss, _ in tenths)
    )
    half = warm[len(warm) // 2 :]
    lines.append(
        f"second half: growth {format_bytes(half[-1][1] - half[0][1], signed=True)}, "
        f"slope {slope([(t, rss) for t, rss, _ in half]):+.1f} B/s"
    )
    verdict = "flat" if rss_growth <= limit else f"GREW over the limit {format_bytes(limit)}"
    lines.append(f"verdict: {verdict}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)
    return 0 if rss_growth <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
