"""Real leaks pinned from PyPI: does quick mode find a documented leak in a released version of a
popular web package, and pass the release that fixed it?

    python benchmarks/real_leaks.py [--venvs DIR] [--case NAME ...] [--loop-requests 10000]
        [--duration 60] [--out FILE]

Each case is a package version with a documented memory leak that grows on every request,
paired with a later version without it (the control). For each version a virtualenv is made
under ``--venvs`` with this Python and pip (kept there and reused when the folder is given;
default: a temporary folder, removed at the end; PyPI must be reachable the first time), a
minimal service that takes the leaky path is served by that virtualenv's Python
(``ServedProcess``: the USS of its process tree is judged) and one full soak run is made: the
``spike-at-8am`` profile at peak 150 req/s in quick mode (60 s), replaying 400 distinct
``GET /item/i000000`` … requests as a browser sends them through a reverse proxy (user agent,
``sec-*`` headers, ``X-Forwarded-*``, a request id and a trace context).

Before the soak, ``--loop-requests`` keep-alive requests (0: skipped) are sent one at a time to
a separate instance of the same service, and the growth of its USS per request is printed
(``loop B/req``): the leak as a plain loop measures it, for comparison with the soak's estimate.

Cases:

- ``multidict``: multidict 6.3.0-6.3.2 leak the case-insensitive key (``istr``) made whenever
  the keys of a ``CIMultiDict`` holding plain ``str`` keys are iterated (aio-libs/multidict#1131;
  6.3.x were yanked for it). aiohttp's parser stores the header names it does not know as
  ``str``, so an aiohttp handler that copies ``request.headers`` (here: echoes them, as httpbin's
  ``/headers`` does) leaks about 64 B per such header per request. Control: multidict 6.4.2.
- ``ujson``: ujson 2.0.0-2.0.2 leak every dict key that is not interned when serialising
  (ultrajson/ultrajson#392, fixed in 2.0.3 by #394). A FastAPI endpoint answering with
  ``UJSONResponse`` a map keyed by ids built per request leaks about 64 B per key per request.
  ujson 2.0.x has no wheel for Python 3.11: pip builds it (a C compiler is needed).
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from pytest_soak.driver.targets import ServedProcess
from pytest_soak.engine import run_soak
from pytest_soak.settings import resolve
from pytest_soak.traffic import Exchange, Traffic

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

AIOHTTP_SERVICE = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def item(request):
        # echoes the request's headers (httpbin's /headers; a debugging or tracing endpoint)
        return web.json_response({"path": request.path, "headers": dict(request.headers)})

    app = web.Application()
    app.router.add_get("/{tail:.*}", item)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)

FASTAPI_UJSON_SERVICE = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import UJSONResponse

    app = FastAPI(default_response_class=UJSONResponse)

    @app.get("/item/{item_id}")
    def item(item_id: str):
        n = int(item_id.lstrip("i") or 0)
        # related items keyed by their ids, built per request (as read from a database)
        related = {f"i{(n + k) % 400:06d}": k * 1.5 for k in range(1, 11)}
        return {"id": item_id, "related": related}

    @app.get("/")
    def root():
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


@dataclass(frozen=True)
class Version:
    label: str  # package==version, as the table shows it
    role: str  # "leaky" or "fixed"
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    name: str
    leaks: str
    issue: str
    service: str
    versions: tuple[Version, ...]


CASES = (
    Case(
        "multidict",
        "istr per unknown header name (aiohttp handler copying request.headers)",
        "https://github.com/aio-libs/multidict/issues/1131",
        AIOHTTP_SERVICE,
        (
            Version("multidict==6.3.2", "leaky", ("aiohttp==3.11.16", "multidict==6.3.2")),
            Version("multidict==6.4.2", "fixed", ("aiohttp==3.11.16", "multidict==6.4.2")),
        ),
    ),
    Case(
        "ujson",
        "each non-interned dict key serialised (FastAPI UJSONResponse, 10 keys)",
        "https://github.com/ultrajson/ultrajson/issues/392",
        FASTAPI_UJSON_SERVICE,
        (
            Version(
                "ujson==2.0.2", "leaky", ("ujson==2.0.2", "fastapi==0.115.12", "uvicorn==0.34.0")
            ),
            Version(
                "ujson==2.0.3", "fixed", ("ujson==2.0.3", "fastapi==0.115.12", "uvicorn==0.34.0")
            ),
        ),
    ),
)


def browser_headers(i: int) -> tuple[tuple[str, str], ...]:
    """What a browser's request carries after a reverse proxy (nginx, a load balancer)."""
    return (
        ("user-agent", BROWSER),
        ("accept", "application/json"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("sec-ch-ua", '"Chromium";v="126", "Google Chrome";v="126"'),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", '"Linux"'),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-dest", "empty"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", "203.0.113.7"),
        ("x-request-id", f"r{i:08d}"),
        ("traceparent", f"00-{i:032x}-{i + 1:016x}-01"),
    )


def traffic() -> Traffic:
    return Traffic(
        tuple(
            Exchange(i * 0.01, "GET", f"/item/i{i:06d}", headers=browser_headers(i))
            for i in range(400)
        )
    )


def venv_python(folder: Path, version: Version) -> Path:
    """The Python of a virtualenv with ``version``'s requirements, made once under ``folder``."""
    home = folder / version.label.replace("==", "-")
    python = home / "bin" / "python"
    stamp = home / "soak-requirements.txt"
    wanted = "\n".join(version.requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"# making {home}: pip install {' '.join(version.requirements)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *version.requirements],
        check=True,
    )  # fmt: skip
    stamp.write_text(wanted)
    return python


def serve(python: Path, script: Path) -> ServedProcess:
    return ServedProcess([str(python), script.name, "{port}"], ready="/", cwd=script.parent)


def uss(served: ServedProcess) -> int:
    """USS of the served process and its children, in bytes."""
    root = psutil.Process(served.pid)
    return sum(p.memory_full_info().uss for p in [root, *root.children(recursive=True)])


def loop_growth(python: Path, script: Path, requests: int) -> float:
    """USS growth per request over ``requests`` keep-alive requests sent one at a time (the
    first 10% warm the service up and are not counted)."""
    served = serve(python, script)
    try:
        exchanges = traffic().exchanges
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        warm = max(requests // 10, 1)
        start = 0
        for i in range(warm + requests):
            if i == warm:
                start = uss(served)
            exchange = exchanges[i % len(exchanges)]
            connection.request(exchange.method, exchange.target, headers=dict(exchange.headers))
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{exchange.target}: status {answer.status}")
        connection.close()
        return (uss(served) - start) / requests
    finally:
        served.stop()


HEADER = (
    f"{'package==version':<18}{'role':<7}{'loop B/req':>11}  {'verdict':<13}{'estimate B/req':>15}"
    f"  {'growth':>12}  reason"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--venvs", type=Path, default=None, help="keep the virtualenvs here")
    parser.add_argument(
        "--case", nargs="+", action="extend", choices=[c.name for c in CASES], default=None
    )
    parser.add_argument("--loop-requests", type=int, default=10_000, help="0: no plain loop")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150}, mode="quick", duration_override=args.duration
    )
    cases = [c for c in CASES if args.case is None or c.name in args.case]
    lines = [
        f"# real_leaks.py {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]})"
    ]
    for case in cases:
        lines.append(f"#   {case.name}: leaks {case.leaks}; {case.issue}")
    lines.append(HEADER)
    for text in lines:
        print(text, flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-real-leaks-") as scratch:
        folder = args.venvs or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for case in cases:
            script = folder / f"{case.name}_service.py"
            script.write_text(case.service)
            for version in case.versions:
                python = venv_python(folder, version)
                loop = loop_growth(python, script, args.loop_requests) if args.loop_requests else 0
                served = serve(python, script)
                try:
                    result = run_soak(served, traffic(), settings, check=False)
                finally:
                    served.stop()
                primary = result.analysis.primary
                estimate = primary.slope if primary else 0.0
                growth = primary.growth if primary else 0.0
                loop_text = f"{loop:.1f}" if args.loop_requests else "-"
                lines.append(
                    f"{version.label:<18}{version.role:<7}{loop_text:>11}  {result.verdict:<13}"
                    f"{estimate:>15.1f}  {growth / 1024:>9.1f} KiB  {result.reason[:110]}"
                )
                print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
