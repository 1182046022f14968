"""How fast do big recordings load, and how much memory does it take? (issue 14, part 3)

    python benchmarks/traffic_load.py [--entries 200000] [--seed 14] [--dir /tmp/soak-bench]
                                      [--formats har,goreplay,jsonl] [--out docs/traffic-load.txt]

Generates (seeded, once per size: kept in ``--dir``) a realistic recording of ``--entries``
exchanges in each format — a shop's API and static files over a day: varied URLs and ids, a few
thousand sessions with their cookies and user agents, request ids, JSON request and response
bodies, chunked and base64 responses, Chrome's HAR fields (timings, cookies, queryString,
``_initiator``…) — then, for each format, each load in a fresh subprocess so peaks do not mix:

1. **first load** (``load_traffic(path, cache=False)``): MB/s of the file and the child's peak
   RSS (``ru_maxrss``), and the RSS the loaded ``Traffic`` keeps (RSS after ``gc.collect()``
   minus RSS before loading);
2. **cache write** (the first load with the cache on: parse + write ``.soak-cache/``);
3. **cached load** (a later load): seconds and peak RSS; since the cache keeps the recording
   on disk and a loaded ``Traffic`` reads it a chunk at a time, also **cycle**: a cached load
   and the choice of one ``--cycle``-request cycle (``choose_cycle``, which classifies every
   exchange, as a soak run's plan does): seconds and the RSS kept by the traffic and its cycle,
   against the same from a parse without the cache (every exchange kept);
4. the **reference**: ``json.load`` of the same HAR file (MB/s and peak RSS) in the same run,
   with the ratios against it.

``--quick`` is ``--entries 20000``. Nothing here asserts: it prints the numbers and ratios (and
writes them to ``--out``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GOR_SEPARATOR = "\n🐵🙈🙉\n"

# --- a realistic recording ------------------------------------------------------------------

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "okhttp/4.{v}.0",
    "shop-ios/3.{v} (iPhone; iOS 17.4; Scale/3.00)",
]
LANGUAGES = ["en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "en-GB,en;q=0.8"]
WORDS = [
    "red",
    "blue",
    "green",
    "shirt",
    "shoe",
    "sock",
    "lamp",
    "desk",
    "chair",
    "table",
    "mug",
    "cup",
    "phone",
    "case",
    "cable",
    "book",
    "pen",
    "bag",
    "hat",
    "coat",
    "scarf",
    "ring",
    "watch",
    "belt",
    "sofa",
    "rug",
    "vase",
    "bowl",
    "plate",
    "fork",
    "knife",
    "spoon",
]
STATIC_TYPES = [("js", "application/javascript"), ("css", "text/css"), ("png", "image/png")]


@dataclass
class Session:
    user_agent: str
    language: str
    cookie: str
    token: str
    client_ip: str


@dataclass
class Recorded:
    """One generated exchange, written to each format."""

    started: datetime
    method: str
    url: str  # absolute
    headers: list[tuple[str, str]]
    body: str
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes
    mime: str
    wait_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _sessions(rng: random.Random, count: int) -> list[Session]:
    sessions = []
    for _ in range(count):
        agent = rng.choice(USER_AGENTS).format(v=rng.randint(1, 130))
        cookie = f"sessionid={_hex(rng, 32)}; ab={rng.choice('ABC')}"
        ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        sessions.append(
            Session(
                agent,
                rng.choice(LANGUAGES),
                cookie,
                base64.b64encode(rng.randbytes(18)).decode(),
                ip,
            )
        )
    return sessions


def _product(rng: random.Random, pid: int) -> dict[str, Any]:
    return {
        "id": pid,
        "name": " ".join(rng.choices(WORDS, k=3)),
        "price": round(rng.uniform(1, 400), 2),
        "stock": rng.randint(0, 500),
        "tags": rng.choices(WORDS, k=rng.randint(0, 4)),
    }


def recording(entries: int, seed: int) -> Iterator[Recorded]:
    """``entries`` exchanges over one day, in recorded order (a few slightly out of order, as
    Chrome writes them)."""
    rng = random.Random(seed)
    sessions = _sessions(rng, max(20, entries // 40))
    start = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
    step = 86_400 / entries
    moment = 0.0
    for n in range(entries):
        moment += rng.expovariate(1 / step)
        started = start + timedelta(seconds=moment + rng.choice((0.0, 0.0, 0.0, -0.004)))
        session = rng.choice(sessions)
        yield _exchange(rng, n, started, session)


def _exchange(rng: random.Random, n: int, started: datetime, session: Session) -> Recorded:
    api = "https://shop.example.com"
    kind = rng.random()
    body = ""
    response: bytes = b""
    mime = "application/json"
    status = 200
    if kind < 0.12:
        ext, mime = rng.choice(STATIC_TYPES)
        method, url = (
            "GET",
            f"https://cdn.shop.example.com/static/{rng.choice(WORDS)}.{_hex(rng, 8)}.{ext}",
        )
        if ext == "png" and rng.random() < 0.3:
            response = rng.randbytes(rng.randint(60, 300))
        status = rng.choice((200, 200, 200, 304))
    elif kind < 0.40:
        method = "GET"
        url = f"{api}/api/v2/products?page={rng.randint(1, 60)}&sort={rng.choice(['price', 'name', 'new'])}"
        if rng.random() < 0.4:
            url += f"&q={rng.choice(WORDS)}"
        if rng.random() < 0.5:
            response = json.dumps(
                {"items": [_product(rng, rng.randint(1, 99999)) for _ in range(rng.randint(1, 4))]}
            ).encode()
    elif kind < 0.65:
        method, url = "GET", f"{api}/api/v2/products/{rng.randint(1, 99999)}"
        if rng.random() < 0.6:
            response = json.dumps(_product(rng, rng.randint(1, 99999))).encode()
        status = rng.choice((200,) * 12 + (404,))
    elif kind < 0.78:
        method, url = "POST", f"{api}/api/v2/cart/items"
        body = json.dumps({"product_id": rng.randint(1, 99999), "quantity": rng.randint(1, 5)})
        status, response = (
            201,
            json.dumps({"cart_id": _hex(rng, 12), "items": rng.randint(1, 9)}).encode(),
        )
    elif kind < 0.84:
        method, url = "DELETE", f"{api}/api/v2/cart/items/{_hex(rng, 12)}"
        status = rng.choice((204, 204, 204, 404))
    elif kind < 0.90:
        method, url = "PUT", f"{api}/api/v2/users/{rng.randint(1, 50000)}/address"
        body = json.dumps(
            {
                "street": f"{rng.randint(1, 300)} {rng.choice(WORDS)} street",
                "zip": f"{rng.randint(10000, 99999)}",
            }
        )
    elif kind < 0.95:
        method, url = (
            "GET",
            f"{api}/api/v2/search?q={rng.choice(WORDS)}+{rng.choice(WORDS)}&limit=20",
        )
    elif kind < 0.98:
        method, url = "POST", f"{api}/api/v2/orders"
        body = json.dumps(
            {"cart_id": _hex(rng, 12), "payment": {"method": "card", "token": _hex(rng, 24)}}
        )
        status = rng.choice((201, 201, 201, 402, 500))
    else:
        method, url = "GET", f"{api}/healthz"
        mime, response = "text/plain", b"ok"
    host = url.split("/")[2]
    headers = [
        ("Host", host),
        ("User-Agent", session.user_agent),
        ("Accept", "application/json" if "/api/" in url else "*/*"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Cookie", session.cookie),
    ]
    if session.language.startswith("en-US"):
        headers.insert(4, ("Accept-Language", session.language))
    if "/api/" in url:
        headers.append(("Authorization", f"Bearer {session.token}"))
        headers.append(("X-Request-Id", _hex(rng, 32)))
    if body:
        headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(body))))
    response_headers = [
        ("Date", started.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        ("Content-Type", mime if status != 204 else "text/plain"),
        ("Content-Length", str(len(response))),
        ("Cache-Control", "no-store" if "/api/" in url else "public, max-age=31536000"),
    ]
    if "/api/" in url:
        response_headers.append(("X-Request-Id", headers[-1][1] if not body else _hex(rng, 32)))
    if status == 201 and rng.random() < 0.5:
        response_headers.append(("Set-Cookie", f"cart={_hex(rng, 12)}; Path=/; HttpOnly"))
    if status in (200, 304) and "static" in url:
        response_headers.append(("ETag", f'"{_hex(rng, 16)}"'))
    if status in (204, 304):
        response = b""
    return Recorded(
        started,
        method,
        url,
        headers,
        body,
        status,
        response_headers,
        response,
        mime,
        round(rng.uniform(1, 250), 3),
        {"client_ip": session.client_ip, "n": n},
    )


# --- the three formats ------------------------------------------------------------------------


def _har_entry(r: Recorded) -> dict[str, Any]:
    query = r.url.partition("?")[2]
    content: dict[str, Any] = {"size": len(r.response_body), "mimeType": r.mime}
    if r.response_body:
        try:
            content["text"] = r.response_body.decode()
        except UnicodeDecodeError:
            content["text"] = base64.b64encode(r.response_body).decode()
            content["encoding"] = "base64"
    request: dict[str, Any] = {
        "method": r.method,
        "url": r.url,
        "httpVersion": "HTTP/1.1",
        "headers": [{"name": k, "value": v} for k, v in r.headers if k != "Host"],
        "queryString": [
            {"name": k, "value": v} for k, _, v in (p.partition("=") for p in query.split("&") if p)
        ],
        "cookies": [],
        "headersSize": -1,
        "bodySize": len(r.body),
    }
    if r.body:
        request["postData"] = {"mimeType": "application/json", "text": r.body}
    return {
        "startedDateTime": r.started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": r.wait_ms + 1.5,
        "request": request,
        "response": {
            "status": r.status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k.lower(), "value": v} for k, v in r.response_headers],
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(r.response_body),
        },
        "cache": {},
        "timings": {
            "blocked": 0.4,
            "dns": -1,
            "ssl": -1,
            "connect": -1,
            "send": 0.1,
            "wait": r.wait_ms,
            "receive": 0.9,
        },
        "serverIPAddress": "203.0.113.7",
        "pageref": f"page_{1 + r.extra['n'] // 500}",
    }


def write_har(path: Path, entries: int, seed: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(
            '{"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},'
        )
        out.write(' "pages": [], "entries": [\n')
        for n, recorded in enumerate(recording(entries, seed)):
            out.write(("," if n else "") + json.dumps(_har_entry(recorded), separators=(",", ":")))
        out.write("\n]}}\n")


def write_goreplay(path: Path, entries: int, seed: int) -> None:
    chunked_every = 10  # every tenth response is chunked, as servers stream some
    with open(path, "wb") as out:
        for n, r in enumerate(recording(entries, seed)):
            ident = hashlib.sha1(str(n).encode()).hexdigest()
            ns = int(r.started.timestamp() * 1e9)
            target = r.url.split("/", 3)[3]
            head = f"{r.method} /{target} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in r.headers
            )
            out.write(f"1 {ident} {ns} 0\n{head}\r\n{r.body}".encode() + GOR_SEPARATOR.encode())
            reason = {
                200: "OK",
                201: "Created",
                204: "No Content",
                304: "Not Modified",
                404: "Not Found",
                402: "Payment Required",
                500: "Internal Server Error",
            }[r.status]
            headers = r.response_headers
            body = r.response_body
            if n % chunked_every == 0 and body:
                headers = [(k, v) for k, v in headers if k != "Content-Length"]
                headers.append(("Transfer-Encoding", "chunked"))
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            raw = (
                f"HTTP/1.1 {r.status} {reason}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers)
                + "\r\n"
            )
            latency = int(r.wait_ms * 1e6)
            out.write(
                f"2 {ident} {ns + latency} {latency}\n".encode()
                + raw.encode()
                + body
                + GOR_SEPARATOR.encode()
            )


def write_jsonl(path: Path, entries: int, seed: int) -> None:
    start: datetime | None = None
    with open(path, "w", encoding="utf-8") as out:
        for r in recording(entries, seed):
            start = start or r.started
            line: dict[str, Any] = {
                "offset": round((r.started - start).total_seconds(), 6),
                "method": r.method,
                "url": r.url,
                "headers": [[k, v] for k, v in r.headers],
            }
            if r.body:
                line["body"] = r.body
            response: dict[str, Any] = {
                "status": r.status,
                "headers": [[k, v] for k, v in r.response_headers],
            }
            if r.response_body:
                try:
                    response["body"] = r.response_body.decode()
                except UnicodeDecodeError:
                    response["body_b64"] = base64.b64encode(r.response_body).decode()
            line["response"] = response
            out.write(json.dumps(line) + "\n")


WRITERS = {
    "har": (write_har, "har"),
    "goreplay": (write_goreplay, "gor"),
    "jsonl": (write_jsonl, "jsonl"),
}


def recording_files(
    directory: Path, entries: int, seed: int, formats: list[str]
) -> dict[str, Path]:
    """The generated recordings (made once per size and seed, then reused)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in formats:
        writer, suffix = WRITERS[name]
        path = directory / f"shop-{entries}-s{seed}.{suffix}"
        if not path.exists():
            print(f"generating {path} ...", file=sys.stderr, flush=True)
            partial = path.with_name(path.name + ".partial")
            writer(partial, entries, seed)
            partial.replace(path)
        files[name] = path
    return files


# --- one measurement, in a fresh process ----------------------------------------------------


def child(mode: str, path: str, cycle: int) -> None:
    """Load ``path`` once (``mode``: parse, write, cached, cycle, parsed-cycle, json) and print
    what it took (``cycle``: a cached load, then a cycle of ``cycle`` requests chosen from it;
    ``parsed-cycle``: the same from a parse without the cache, every exchange in memory)."""
    import gc
    import resource
    import time

    import psutil

    me = psutil.Process()
    if mode == "json":
        load: Any = lambda: json.load(open(path, "rb"))  # noqa: E731, SIM115
    else:
        from pytest_soak.traffic import load_traffic

        if mode == "write":
            shutil.rmtree(Path(path).parent / ".soak-cache", ignore_errors=True)
        try:
            load_traffic("/nonexistent", cache=False)
        except TypeError:  # a tree from before the cache (--before)
            load = lambda: load_traffic(path)  # noqa: E731
        except Exception:
            load = lambda: load_traffic(path, cache=mode != "parse")  # noqa: E731
        if mode in ("cycle", "parsed-cycle"):
            from pytest_soak.traffic.cycle import choose_cycle

            def load() -> Any:
                traffic = load_traffic(path, cache=mode == "cycle")
                choice = choose_cycle(traffic, cycle)
                return traffic, choice

    gc.collect()
    rss_before = me.memory_info().rss
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cpu, wall = time.process_time(), time.perf_counter()
    result = load()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gc.collect()
    held = me.memory_info().rss - rss_before
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "peak": peak,
                "peak_before": peak_before,
                "held": held,
                "count": len(result["log"]["entries"])
                if mode == "json"
                else len(result[0] if mode.endswith("cycle") else result),
            }
        )
    )


CYCLE = 3000  # requests of the cycle chosen by the 'cycle' measure (--cycle)


def measure(mode: str, path: Path, tree: Path | None = None, cycle: int = CYCLE) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree or HERE.parent)
    env.pop("PYTEST_SOAK_TRAFFIC_CACHE", None)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path), str(cycle)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child {mode} {path} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def best(
    mode: str, path: Path, repeat: int, tree: Path | None = None, cycle: int = CYCLE
) -> dict[str, Any]:
    """The fastest of ``repeat`` fresh processes (each its own peak; the peak reported is that
    of the fastest run: peaks barely vary, times do on a shared machine)."""
    runs = [measure(mode, path, tree, cycle) for _ in range(repeat)]
    return min(runs, key=lambda run: run["wall"])


# --- the report -------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="--entries 20000")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/soak-traffic-bench"))
    parser.add_argument("--formats", default="har,goreplay,jsonl")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh processes per figure (the fastest is shown)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="also load with another checkout's pytest_soak (e.g. main before this change)",
    )
    parser.add_argument("--cycle", type=int, default=CYCLE, help="requests of the cycle chosen")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "PATH", "CYCLE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    entries = 20_000 if args.quick else args.entries
    formats = args.formats.split(",")
    files = recording_files(args.dir, entries, args.seed, sorted(set(formats) | {"har"}))
    lines = [
        f"# benchmarks/traffic_load.py --entries {entries} — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs ({platform.machine()}); "
        f"seed {args.seed}, fastest of {args.repeat} fresh processes per figure",
        "first load: load_traffic(path, cache=False); write: the first load with the cache "
        "(parse + write .soak-cache/), cache: the size of the file written; cached: a later load "
        f"(the Traffic reads the cache a chunk at a time); cycle: a cached load and the choice of "
        f"a {args.cycle:,}-request cycle (choose_cycle classifies every exchange). "
        "peak: the process's peak RSS (ru_maxrss, interpreter and imports included: 'base' before "
        "loading); held: RSS kept by the loaded Traffic after gc.collect(). xjson: against "
        "json.load of the HAR (MB/s: higher is better; peak: lower is better)",
    ]
    reference = best("json", files["har"], args.repeat)
    har_size = files["har"].stat().st_size
    ref_rate = har_size / reference["wall"]
    lines.append("")
    lines.append(
        f"reference: json.load of the HAR ({mb(har_size)}): {reference['wall']:.2f} s, "
        f"{ref_rate / 1e6:.1f} MB/s, peak {mb(reference['peak'])} (base {mb(reference['peak_before'])})"
    )
    lines.append("")
    head = (
        f"{'format':9} {'file':>8} {'exchanges':>9} | {'first load':>9} {'MB/s':>6} {'xjson':>6} "
        f"{'peak':>8} {'xjson':>6} {'held':>8} | {'write':>7} {'cache':>7} | {'cached':>7} {'peak':>8} "
        f"{'held':>8} | {'cycle':>7} {'held':>8}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    rows = []
    for name in formats:
        path = files[name]
        size = path.stat().st_size
        first = best("parse", path, args.repeat)
        write = best("write", path, 1)
        cached = best("cached", path, args.repeat)
        cycle = best("cycle", path, args.repeat, cycle=args.cycle)
        parsed_cycle = best("parsed-cycle", path, 1, cycle=args.cycle)
        rate = size / first["wall"]
        rows.append((name, size, first, cached, cycle, parsed_cycle))
        stored = sum(
            p.stat().st_size for p in (path.parent / ".soak-cache").glob(f"{path.name}.*.traffic")
        )
        lines.append(
            f"{name:9} {mb(size):>8} {first['count']:>9,} | {first['wall']:>8.2f}s {rate / 1e6:>6.1f} "
            f"{rate / ref_rate:>6.2f} {mb(first['peak']):>8} {first['peak'] / reference['peak']:>6.2f} "
            f"{mb(first['held']):>8} | {write['wall']:>6.2f}s {mb(stored):>7} | {cached['wall']:>6.2f}s "
            f"{mb(cached['peak']):>8} {mb(cached['held']):>8} | {cycle['wall']:>6.2f}s "
            f"{mb(cycle['held']):>8}"
        )
    if args.before:
        lines.append("")
        lines.append(f"before: the same first load with pytest_soak from {args.before}")
        for name in formats:
            path = files[name]
            size = path.stat().st_size
            old = best("parse", path, 1, args.before)
            rate = size / old["wall"]
            lines.append(
                f"{name:9} {mb(size):>8} {old['count']:>9,} | {old['wall']:>8.2f}s {rate / 1e6:>6.1f} "
                f"{rate / ref_rate:>6.2f} {mb(old['peak']):>8} {old['peak'] / reference['peak']:>6.2f} "
                f"{mb(old['held']):>8}"
            )
    lines.append("")
    for name, size, first, cached, cycle, parsed_cycle in rows:
        lines.append(
            f"{name}: first load {size / first['wall'] / 1e6:.1f} MB/s "
            f"({first['count'] / first['wall']:,.0f} exchanges/s, {first['cpu']:.2f} s CPU), "
            f"cached load {cached['wall']:.2f} s ({cached['cpu']:.2f} s CPU), "
            f"held {first['held'] / max(first['count'], 1):,.0f} B per exchange parsed, "
            f"{cached['held'] / max(cached['count'], 1):,.0f} B cached; a cached load and a "
            f"{args.cycle:,}-request cycle {cycle['wall']:.2f} s, {mb(cycle['held'])} held (from a "
            f"parse without the cache: {mb(parsed_cycle['held'])} held)"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
