"""How small a leak does quick mode find? Runs the real verdict on services that leak a known
number of bytes per request, in process (Python heap) and served (native malloc, RSS/USS).

    python benchmarks/leak_sensitivity.py [--duration 60] [--out docs/leak-sensitivity.txt]

Each row is one full soak run: the `spike-at-8am` profile at peak 150 req/s compressed into
``--duration`` seconds (quick mode: 60 s), replaying 400 distinct requests in a loop.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.engine import run_soak  # noqa: E402
from pytest_soak.settings import resolve  # noqa: E402
from pytest_soak.traffic import Exchange, Traffic  # noqa: E402

IN_PROCESS_SIZES = (0, 8, 16, 32, 64, 128)
NATIVE_SIZES = (0, 256, 512, 1024, 2048)

NATIVE_SERVICE = textwrap.dedent(
    """
    import ctypes, ctypes.util, os
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    SIZE = int(os.environ["LEAK_BYTES"])

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


def traffic() -> Traffic:
    return Traffic(tuple(Exchange(i * 0.01, "GET", f"/item/i{i:06d}") for i in range(400)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150}, mode="quick", duration_override=args.duration
    )
    rows = [
        f"{'target':<22}{'leak B/req':>11}  {'verdict':<13}{'estimate B/req':>15}  {'growth':>12}  reason"
    ]

    def record(kind: str, size: int, result) -> None:  # type: ignore[no-untyped-def]
        primary = result.analysis.primary
        estimate = primary.slope if primary else 0.0
        growth = primary.growth if primary else 0.0
        rows.append(
            f"{kind:<22}{size:>11}  {result.verdict:<13}{estimate:>15.1f}  {growth / 1024:>9.1f} KiB  {result.reason[:90]}"
        )
        print(rows[-1], flush=True)

    print(rows[0], flush=True)
    for size in IN_PROCESS_SIZES:
        record(
            "in process (heap)",
            size,
            run_soak(python_leak_app(size), traffic(), settings, check=False),
        )
    script = HERE / "_native_service.py"
    script.write_text(NATIVE_SERVICE)
    try:
        for size in NATIVE_SIZES:
            served = ServedProcess(
                [sys.executable, "-m", "uvicorn", "_native_service:app", "--port", "{port}",
                 "--log-level", "warning"],
                env={"LEAK_BYTES": str(size)}, ready="/", cwd=HERE,
            )  # fmt: skip
            try:
                record(
                    "served (native, USS)", size, run_soak(served, traffic(), settings, check=False)
                )
            finally:
                served.stop()
    finally:
        script.unlink(missing_ok=True)
    if args.out:
        stamp = time.strftime("%Y-%m-%d")
        args.out.write_text(
            f"# leak_sensitivity.py --duration {args.duration:g}  ({stamp})\n"
            + "\n".join(rows)
            + "\n"
        )


if __name__ == "__main__":
    main()
