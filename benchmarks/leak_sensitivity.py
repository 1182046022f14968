"""How small a leak does quick mode find? Runs the real verdict on services that leak a known
number of bytes per request, in process (Python heap) and served (Python heap and native
malloc, both seen by the agent inside the service as ``service_heap``, beside USS).

    python benchmarks/leak_sensitivity.py [--duration 60] [--spike-only | --no-spike]
        [--in-process-only | --served-python-only] [--spike-sizes 0 32 ...]
        [--spike-native-sizes 0 2048 ...] [--served-python-sizes 0 8 ...]
        [--native-sizes 0 256 ...] [--out docs/leak-sensitivity.txt]

Each row is one full soak run: the `spike-at-8am` profile at peak 150 req/s compressed into
``--duration`` seconds (quick mode: 60 s), replaying 400 distinct requests in a loop.

The "spike only" rows leak only under the spike's concurrency: the service answers after
50 ms and leaks its bytes only while more than 6 requests are in flight (itself included).
Open-model arrivals at 150 req/s (the spike) keep about 7.5 in flight, at 90 req/s (the rest of
the day at its busiest) about 4.5. Measured (in process, 9 cycles, in flight at each arrival):
the spike's requests 1-5: 82, 6: 10, 7: 14, 8: 290, 9-10: 10; the rest 1-4: 664, 5: 1,572,
6: 17, 7-10: 15 (a scheduling stall on the busy machine). Their "leak B/req" is per leaking
request; the reason is prefixed with the share of the soak's requests that leaked.

The "served (Python)" rows run ``PYTHON_SERVICE`` under uvicorn: like ``python_leak_app``, but
each request appends its own ``bytes`` object of SIZE bytes to a list (a Python-level leak: the
object's header and the list's slot add to SIZE). The "served (Python, exact)" rows
(``--served-exact-sizes``) extend one ``bytearray`` by exactly SIZE bytes a request instead (it
grows by reallocation, in steps). ``--served-python-only`` runs only those rows
and the served native rows (``--native-sizes``). The "judged by" column says which metric gave
the verdict (``service_heap`` from the agent, or ``uss``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.engine import run_soak  # noqa: E402
from pytest_soak.settings import resolve  # noqa: E402
from pytest_soak.traffic import Exchange, Traffic  # noqa: E402

IN_PROCESS_SIZES = (0, 8, 16, 32, 64, 128)
NATIVE_SIZES = (0, 256, 512, 1024, 2048)
SERVED_PYTHON_SIZES = (0, 8, 16, 32, 64)
SPIKE_SIZES = (0, 32, 64, 128, 256)
SPIKE_NATIVE_SIZES = (0, 2048, 4096, 8192)
#: The spike-only services answer after this long and leak while more than ``SPIKE_IN_FLIGHT``
#: requests are in flight (see the docstring for the measured counts).
SPIKE_LATENCY = 0.05
SPIKE_IN_FLIGHT = 6
STATS_PATH = "/_leak_stats"
#: The metrics shown per row with their own verdicts (the judged ones; the rest are recorded).
JUDGED = ("heap", "rss", "uss", "service_heap")

#: Both native services: libc's malloc/memset, and the bytes to leak from the environment.
NATIVE_PRELUDE = textwrap.dedent(
    """
    import ctypes, ctypes.util, os
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    SIZE = int(os.environ["LEAK_BYTES"])
    """
)

NATIVE_SERVICE = NATIVE_PRELUDE + textwrap.dedent(
    """

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if SIZE:
            pointer = libc.malloc(SIZE)
            libc.memset(pointer, 1, SIZE)  # touched: it counts in RSS
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)

SPIKE_NATIVE_SERVICE = NATIVE_PRELUDE + textwrap.dedent(
    """
    import asyncio
    LATENCY = float(os.environ["LEAK_LATENCY"])
    IN_FLIGHT = int(os.environ["LEAK_IN_FLIGHT"])
    STATS = os.environ["LEAK_STATS_PATH"]
    counts = {"in_flight": 0, "requests": 0, "leaked": 0}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == STATS:
            body = f"{counts['requests']} {counts['leaked']}".encode()
        else:
            counts["requests"] += 1
            counts["in_flight"] += 1
            try:
                if counts["in_flight"] > IN_FLIGHT:
                    counts["leaked"] += 1
                    if SIZE:
                        pointer = libc.malloc(SIZE)
                        libc.memset(pointer, 1, SIZE)  # touched: it counts in RSS
                await asyncio.sleep(LATENCY)
            finally:
                counts["in_flight"] -= 1
            body = b"ok"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
    """
)


#: The served Python-level leak: SIZE bytes kept per request, in a list.
PYTHON_SERVICE = textwrap.dedent(
    """
    import os
    SIZE = int(os.environ["LEAK_BYTES"])
    EXACT = os.environ.get("LEAK_EXACT") == "1"
    kept = []
    buffer = bytearray()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if SIZE and EXACT:
            buffer.extend(b"x" * SIZE)  # exactly SIZE bytes a request, in one growing buffer
        elif SIZE:
            kept.append(os.urandom(SIZE))  # a fresh object each time: no interned constant
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


def python_leak_app(bytes_per_request: int):  # type: ignore[no-untyped-def]
    """A raw ASGI app whose one buffer grows by exactly ``bytes_per_request`` per request."""
    kept = bytearray()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        kept.extend(b"x" * bytes_per_request)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def spike_leak_app(bytes_per_request: int):  # type: ignore[no-untyped-def]
    """A raw ASGI app that answers after ``SPIKE_LATENCY`` and extends its one buffer by
    ``bytes_per_request`` only while more than ``SPIKE_IN_FLIGHT`` requests are in flight;
    ``app.counts`` says how many requests it saw and how many leaked."""
    kept = bytearray()
    counts = {"in_flight": 0, "requests": 0, "leaked": 0}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        counts["requests"] += 1
        counts["in_flight"] += 1
        try:
            if counts["in_flight"] > SPIKE_IN_FLIGHT:
                counts["leaked"] += 1
                kept.extend(b"x" * bytes_per_request)
            await asyncio.sleep(SPIKE_LATENCY)
        finally:
            counts["in_flight"] -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app.counts = counts  # type: ignore[attr-defined]
    return app


def served_counts(served: ServedProcess) -> tuple[int, int]:
    """(requests, leaked) as the served spike-only service counted them."""
    with urllib.request.urlopen(served.url + STATS_PATH, timeout=5) as answer:
        requests, leaked = answer.read().split()
    return int(requests), int(leaked)


def share_note(result, leaked: int) -> str:  # type: ignore[no-untyped-def]
    """The share of the soak's requests that leaked, beside the spike phase's share, and (in
    process, after a leak) how many sites the attribution pass found: it replays 4 requests at
    a time, below the spike's concurrency."""
    sent = sum(phase.sent for phase in result.run.phases)
    spike = sum(phase.sent for phase in result.run.phases if phase.name == "spike")
    sites = f"; {len(result.analysis.sites)} sites attributed" if result.analysis.sites else ""
    if result.analysis.attribution_requests and not result.analysis.sites:
        sites = "; no site attributed"
    return (
        f"[leaked in {leaked}/{sent} requests ({100 * leaked / max(sent, 1):.1f}%); "
        f"spike phase {100 * spike / max(sent, 1):.1f}%{sites}] "
    )


def traffic() -> Traffic:
    return Traffic(tuple(Exchange(i * 0.01, "GET", f"/item/i{i:06d}") for i in range(400)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    rows_wanted = parser.add_mutually_exclusive_group()
    rows_wanted.add_argument(
        "--spike-only", action="store_true", help="only the rows that leak under the spike"
    )
    rows_wanted.add_argument("--no-spike", action="store_true", help="skip those rows")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--in-process-only", action="store_true", help="skip the served rows")
    where.add_argument(
        "--served-python-only",
        action="store_true",
        help="only the served rows that leak without a spike: Python (--served-python-sizes) "
        "and native (--native-sizes)",
    )
    parser.add_argument("--spike-sizes", type=int, nargs="+", default=SPIKE_SIZES)
    parser.add_argument("--spike-native-sizes", type=int, nargs="+", default=SPIKE_NATIVE_SIZES)
    parser.add_argument(
        "--served-exact-sizes", type=int, nargs="+", default=[8, 16, 32],
        help="served rows that keep exactly SIZE bytes a request (one growing bytearray)",
    )  # fmt: skip
    parser.add_argument(
        "--served-python-sizes", type=int, nargs="+", default=list(SERVED_PYTHON_SIZES)
    )
    parser.add_argument("--native-sizes", type=int, nargs="+", default=list(NATIVE_SIZES))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.served_python_only:
        args.no_spike = True
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150}, mode="quick", duration_override=args.duration
    )
    rows = [
        f"{'target':<22}{'leak B/req':>11}  {'verdict':<13}{'estimate B/req':>15}  {'growth':>12}  "
        f"{'judged by':<14}{'each judged metric':<44}reason"
    ]

    def record(kind: str, size: int, result, note: str = "") -> None:  # type: ignore[no-untyped-def]
        primary = result.analysis.primary
        estimate = primary.slope if primary else 0.0
        growth = primary.growth if primary else 0.0
        each = " ".join(
            f"{j.metric}={j.verdict}" for j in result.analysis.judgements if j.metric in JUDGED
        )
        rows.append(
            f"{kind:<22}{size:>11}  {result.verdict:<13}{estimate:>15.1f}  {growth / 1024:>9.1f} KiB  "
            f"{result.analysis.metric:<14}{each:<44}{note}{result.reason[:90]}"
        )
        print(rows[-1], flush=True)

    print(rows[0], flush=True)
    if not (args.spike_only or args.served_python_only):
        for size in IN_PROCESS_SIZES:
            record(
                "in process (heap)",
                size,
                run_soak(python_leak_app(size), traffic(), settings, check=False),
            )
    if not args.no_spike:
        for size in args.spike_sizes:
            app = spike_leak_app(size)
            result = run_soak(app, traffic(), settings, check=False)
            record("spike only (heap)", size, result, share_note(result, app.counts["leaked"]))
    if not args.in_process_only:
        run_served(args, settings, record)
    if args.out:
        stamp = time.strftime("%Y-%m-%d")
        args.out.write_text(
            f"# leak_sensitivity.py {' '.join(sys.argv[1:])}  ({stamp})\n" + "\n".join(rows) + "\n"
        )


#: The served services' modules, written beside this file for the run.
SERVED_SCRIPTS = {
    "_python_service.py": PYTHON_SERVICE,
    "_native_service.py": NATIVE_SERVICE,
    "_spike_native_service.py": SPIKE_NATIVE_SERVICE,
}
SPIKE_ENV = {
    "LEAK_LATENCY": str(SPIKE_LATENCY), "LEAK_IN_FLIGHT": str(SPIKE_IN_FLIGHT),
    "LEAK_STATS_PATH": STATS_PATH,
}  # fmt: skip


@contextlib.contextmanager
def uvicorn_service(module: str, env: dict[str, str]) -> Iterator[ServedProcess]:
    """``module:app`` under uvicorn (the agent on), stopped whatever happens."""
    served = ServedProcess(
        [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", "{port}",
         "--log-level", "warning"],
        env=env, ready="/", cwd=HERE,
    )  # fmt: skip
    try:
        yield served
    finally:
        served.stop()


def run_served(args: argparse.Namespace, settings, record) -> None:  # type: ignore[no-untyped-def]
    """The served rows: uvicorn apps that leak Python objects or native memory (the agent's
    ``service_heap`` and USS judged)."""
    rows = [
        # label, module, sizes, environment beyond LEAK_BYTES, what each request keeps
        ("served (Python)", "_python_service", args.served_python_sizes, {},
         lambda size: f"[kept {kept_per_request(size)} B/req] "),
        ("served (Python, exact)", "_python_service", args.served_exact_sizes,
         {"LEAK_EXACT": "1"}, lambda size: f"[kept {size} B/req] "),
        ("served (native)", "_native_service", args.native_sizes, {}, lambda size: ""),
    ]  # fmt: skip
    for name, source in SERVED_SCRIPTS.items():
        (HERE / name).write_text(source)
    try:
        for label, module, sizes, env, note in () if args.spike_only else rows:
            for size in sizes:
                with uvicorn_service(module, {"LEAK_BYTES": str(size), **env}) as served:
                    result = run_soak(served, traffic(), settings, check=False)
                    record(label, size, result, note(size))
        for size in () if args.no_spike else args.spike_native_sizes:
            env = {"LEAK_BYTES": str(size), **SPIKE_ENV}
            with uvicorn_service("_spike_native_service", env) as served:
                result = run_soak(served, traffic(), settings, check=False)
                _, leaked = served_counts(served)
                record("spike only (native)", size, result, share_note(result, leaked))
    finally:
        for name in SERVED_SCRIPTS:
            (HERE / name).unlink(missing_ok=True)


def kept_per_request(size: int) -> int:
    """What one request of ``PYTHON_SERVICE`` keeps: its ``bytes`` object in its pymalloc size
    class (or malloc's, over 512 B) and the list's slot (amortized over-allocation ignored)."""
    if not size:
        return 0
    obj = sys.getsizeof(b"x" * size)
    return (obj + 15) // 16 * 16 + 8 if obj <= 512 else obj + 8


if __name__ == "__main__":
    main()
