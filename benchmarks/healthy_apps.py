"""Healthy services for ``false_positives.py``: each holds memory in a way that is *not* a leak.

Every factory returns a real ASGI app. In process, ``false_positives.py`` calls the factory; out
of process, uvicorn runs the same factory in its own process, configured by environment variables:

    HEALTHY_APP=caches-filling HEALTHY_PAGES=4000 \\
        python -m uvicorn healthy_apps:served --factory --port 8000

``HEALTHY_APP`` names the factory (``APPS``); every other ``HEALTHY_<NAME>`` sets the factory's
keyword argument ``<name>`` (whole numbers, or text for ``db_path`` and ``gc_mode``).

- ``caches_filling_app``: an LRU of rendered pages and a session table, both keyed by traffic
  and both capped: memory grows while new pages and sessions are seen, then plateaus.
- ``late_gc_app``: reference cycles on every request, the cyclic collector off or lazy: memory
  saws up and down, every cycle is freed by the next collection.
- ``spike_pool_app``: a per-request buffer pool that grows to the most requests in flight at
  once (the morning spike) and never shrinks.
- ``allocator_high_water_app``: large temporary buffers and many small temporary objects per
  request, all freed: the allocator's arenas (and RSS) stay at their high-water mark.
- ``datasette_app``: the real Datasette on a small SQLite database (``make_datasette_db``).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import hashlib
import json
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

#: Sizes of the Datasette database's tables (the traffic draws ids from these ranges).
DATASETTE_ROWS = {"categories": 12, "products": 2000, "customers": 3000, "orders": 8000}
DATASETTE_DB_NAME = "shop"
COUNTRIES = ("DE", "FR", "GB", "US", "CA", "NL", "SE", "ES", "IT", "PL", "JP", "BR")
CITIES = (
    "Berlin", "Paris", "London", "Boston", "Toronto", "Amsterdam", "Stockholm", "Madrid",
    "Rome", "Warsaw", "Osaka", "Recife", "Lyon", "Leeds", "Austin", "Utrecht",
)  # fmt: skip
WORDS = (
    "red", "blue", "green", "steel", "oak", "linen", "wool", "glass", "lamp", "chair", "table",
    "mug", "desk", "shelf", "rug", "sofa", "bench", "stool", "vase", "clock", "frame", "bowl",
    "plate", "kettle", "towel", "pillow", "candle", "basket", "mirror", "hook",
)  # fmt: skip
ORDER_STATUSES = ("new", "paid", "shipped", "delivered", "returned")


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def _stable(text: str) -> int:
    """A number from text that is the same in every process (``hash()`` is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


# --- caches-filling ---------------------------------------------------------------------------


def caches_filling_app(
    pages: int = 4000, sessions: int = 3000, page_bytes: int = 1024
) -> Starlette:
    """An LRU of ``pages`` rendered pages (about ``page_bytes`` each, keyed by path and query) and a
    table of at most ``sessions`` sessions (keyed by the ``session`` cookie or query parameter,
    least recently seen evicted). Both only grow while traffic brings keys never seen before."""
    rendered: collections.OrderedDict[str, bytes] = collections.OrderedDict()
    table: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
    stats = {"hits": 0, "misses": 0}

    def cached(key: str, render: Callable[[], bytes]) -> bytes:
        body = rendered.get(key)
        if body is not None:
            rendered.move_to_end(key)
            stats["hits"] += 1
            return body
        stats["misses"] += 1
        body = render()
        rendered[key] = body
        if len(rendered) > pages:
            rendered.popitem(last=False)
        return body

    def session_of(request: Request) -> dict[str, Any] | None:
        sid = request.cookies.get("session") or request.query_params.get("session")
        if not sid:
            return None
        state = table.get(sid)
        if state is None:
            state = {
                "id": sid,
                "csrf": hashlib.sha256(sid.encode()).hexdigest(),
                "agent": request.headers.get("user-agent", ""),
                "cart": [],
                "views": 0,
                "recent": collections.deque(maxlen=8),
            }
            table[sid] = state
            if len(table) > sessions:
                table.popitem(last=False)
        else:
            table.move_to_end(sid)
        state["views"] += 1
        state["recent"].append(request.url.path)
        return state

    def filler(seed: str, size: int) -> str:
        words = [WORDS[(_stable(seed) >> (k % 60)) % len(WORDS)] for k in range(size // 6)]
        return " ".join(words)[:size]

    async def page(request: Request) -> Response:
        session_of(request)
        number = request.path_params["n"]
        body = cached(
            request.url.path,
            lambda: (
                f"<html><head><title>Page {number}</title></head><body><h1>Page {number}</h1>"
                f"<p>{filler(number, page_bytes - 120)}</p></body></html>"
            ).encode(),
        )
        return HTMLResponse(body)

    async def product(request: Request) -> Response:
        session_of(request)
        pid = request.path_params["pid"]
        body = cached(
            request.url.path,
            lambda: json.dumps(
                {
                    "id": pid,
                    "name": filler(pid, 40),
                    "price": _stable(pid) % 10_000 / 100,
                    "description": filler(pid + "d", page_bytes - 200),
                }
            ).encode(),
        )
        return Response(body, media_type="application/json")

    async def search(request: Request) -> Response:
        session_of(request)
        query, number = request.query_params.get("q", ""), request.query_params.get("page", "1")
        key = f"/search?q={query}&page={number}"
        body = cached(
            key,
            lambda: json.dumps(
                {"q": query, "page": number,
                 "hits": [filler(f"{query}{number}{k}", 80) for k in range(page_bytes // 110)]}
            ).encode(),
        )  # fmt: skip
        return Response(body, media_type="application/json")

    async def cart(request: Request) -> Response:
        state = session_of(request)
        items = state["cart"] if state else []
        return JSONResponse({"cart": request.path_params["cid"], "items": items[-10:]})

    async def cart_add(request: Request) -> Response:
        state = session_of(request)
        payload = json.loads(await request.body() or b"{}")
        if state is not None:
            state["cart"].append(str(payload.get("item", "?")))
            del state["cart"][:-20]  # a cart holds at most 20 lines
        return JSONResponse({"ok": True, "lines": len(state["cart"]) if state else 0})

    async def recommendations(request: Request) -> Response:
        state = session_of(request)
        seed = _stable(request.query_params.get("user", "anon"))
        picks = [(seed >> k) % 5000 for k in range(0, 40, 4)]
        return JSONResponse({"for": state["id"] if state else None, "products": picks})

    async def status(request: Request) -> Response:
        return JSONResponse({"pages": len(rendered), "sessions": len(table), **stats})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/status", status),
            Route("/page/{n}", page),
            Route("/product/{pid}.json", product),
            Route("/search", search),
            Route("/cart/{cid}", cart),
            Route("/cart/{cid}/add", cart_add, methods=["POST"]),
            Route("/api/recommendations", recommendations),
        ]
    )


# --- late-gc ----------------------------------------------------------------------------------


class _Trace:
    """A request's trace: spans point at the trace and the trace at its spans (a cycle)."""

    def __init__(self, name: str, payload: bytes) -> None:
        self.name = name
        self.payload = payload
        self.spans: list[_Span] = []


class _Span:
    def __init__(self, trace: _Trace, index: int) -> None:
        self.trace = trace
        self.attributes = {"index": index, "name": f"{trace.name}.{index}"}
        trace.spans.append(self)


def late_gc_app(
    gc_mode: str = "threshold", gen0: int = 20_000, spans: int = 12, payload_bytes: int = 4096
) -> Starlette:
    """Makes a reference cycle on every request (a trace and ``spans`` spans holding
    ``payload_bytes``); only the cyclic collector frees it. ``gc_mode="disabled"`` turns that
    collector off while the app runs; ``"threshold"`` runs it lazily (generation 0 at
    ``gen0`` allocations instead of 700). Memory saws up and down; nothing is retained."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        was_enabled, thresholds = gc.isenabled(), gc.get_threshold()
        if gc_mode == "disabled":
            gc.disable()
        else:
            gc.set_threshold(gen0, 50, 50)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            if was_enabled:
                gc.enable()

    async def item(request: Request) -> Response:
        name = request.path_params["item_id"]
        trace = _Trace(name, os.urandom(payload_bytes))
        for index in range(spans):
            _Span(trace, index)
        return JSONResponse({"id": name, "spans": len(trace.spans)})

    async def gc_counts(request: Request) -> Response:
        return JSONResponse({"counts": gc.get_count(), "stats": gc.get_stats()})

    return Starlette(
        routes=[Route("/health", health), Route("/gc", gc_counts), Route("/item/{item_id}", item)],
        lifespan=lifespan,
    )


# --- spike-pool -------------------------------------------------------------------------------


def _touched(size: int) -> bytearray:
    """A buffer whose every page is written (so it counts in RSS/USS, not just reserved)."""
    buffer = bytearray(size)
    buffer[::4096] = b"\x01" * len(range(0, size, 4096))
    return buffer


def _latency(key: str, slow_share: float = 0.05) -> float:
    """A downstream call's duration, the same for the same request: mostly 10-40 ms, a few
    slow ones (200-500 ms)."""
    number = _stable(key)
    if (number % 1000) / 1000 < slow_share:
        return 0.2 + (number >> 10) % 300 / 1000
    return 0.01 + (number >> 10) % 30 / 1000


def spike_pool_app(buffer_kib: int = 256) -> Starlette:
    """Each request in flight borrows a ``buffer_kib`` KiB buffer from a free list while it waits
    on a (simulated) downstream call; finished requests return it. The pool grows to the most
    requests ever in flight at once (reached during the spike) and never shrinks."""
    free: list[bytearray] = []
    stats = {"created": 0, "in_flight": 0, "high_water": 0}

    async def item(request: Request) -> Response:
        stats["in_flight"] += 1
        stats["high_water"] = max(stats["high_water"], stats["in_flight"])
        if free:
            buffer = free.pop()
        else:
            buffer = _touched(buffer_kib * 1024)
            stats["created"] += 1
        try:
            body = request.url.path.encode() * 8
            buffer[: len(body)] = body
            await asyncio.sleep(_latency(str(request.url)))
            digest = hashlib.blake2b(bytes(buffer[:4096]), digest_size=8).hexdigest()
        finally:
            free.append(buffer)  # back to the pool: kept for the next spike
            stats["in_flight"] -= 1
        return JSONResponse({"id": request.path_params["item_id"], "digest": digest})

    async def pool(request: Request) -> Response:
        return JSONResponse({**stats, "pooled": len(free)})

    return Starlette(
        routes=[Route("/health", health), Route("/pool", pool), Route("/item/{item_id}", item)]
    )


# --- allocator-high-water ---------------------------------------------------------------------


def allocator_high_water_app(min_kib: int = 256, max_kib: int = 1024) -> Starlette:
    """Report exports build a ``min_kib``-``max_kib`` KiB buffer and hold it across an await
    (streaming it out); aggregations build 5,000-30,000 small objects. Everything is freed when
    the request ends; what stays is the allocator's high-water mark (arenas, heap top, RSS)."""

    async def export(request: Request) -> Response:
        rid = request.path_params["rid"]
        number = _stable(rid)
        size = (min_kib + number % (max_kib - min_kib + 1)) * 1024
        buffer = _touched(size)
        line = f"{rid},{number % 997},{number % 9973}\n".encode()
        buffer[: len(line)] = line
        await asyncio.sleep(_latency(rid, slow_share=0.02))  # streamed out to a slow client
        digest = hashlib.blake2b(buffer, digest_size=8).hexdigest()
        del buffer
        return JSONResponse({"id": rid, "bytes": size, "digest": digest})

    async def aggregate(request: Request) -> Response:
        key = request.path_params["key"]
        number = _stable(key)
        rows = [
            {"k": key, "n": n, "v": (number >> (n % 50)) % 1000}
            for n in range(5000 + number % 25_000)
        ]
        await asyncio.sleep(0.005)
        total = sum(row["v"] for row in rows)
        del rows
        return JSONResponse({"key": key, "total": total})

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/export/{rid}.csv", export),
            Route("/aggregate/{key}", aggregate),
            Route("/item/{item_id}", item),
        ]
    )


# --- datasette --------------------------------------------------------------------------------


def make_datasette_db(path: Path, seed: int = 0) -> Path:
    """A small shop database: categories, products, customers, orders (with foreign keys and
    indexes, a few thousand rows). Written once; the same ``seed`` gives the same rows."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE products (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, category_id INTEGER
                REFERENCES categories(id), price REAL, stock INTEGER, description TEXT);
            CREATE TABLE customers (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, country TEXT,
                joined TEXT);
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                product_id INTEGER REFERENCES products(id), quantity INTEGER, status TEXT,
                created TEXT);
            CREATE INDEX orders_customer ON orders(customer_id);
            CREATE INDEX orders_product ON orders(product_id);
            CREATE INDEX products_category ON products(category_id);
            """
        )
        rows = DATASETTE_ROWS
        db.executemany(
            "INSERT INTO categories VALUES (?, ?)",
            [(n, f"{WORDS[n]} goods") for n in range(1, rows["categories"] + 1)],
        )
        db.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
            [
                (n, f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
                 rng.randint(1, rows["categories"]), round(rng.uniform(1, 500), 2),
                 rng.randint(0, 400), " ".join(rng.choices(WORDS, k=12)))
                for n in range(1, rows["products"] + 1)
            ],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
            [
                (n, f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}",
                 rng.choice(CITIES), rng.choice(COUNTRIES),
                 f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
                for n in range(1, rows["customers"] + 1)
            ],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
            [
                (n, rng.randint(1, rows["customers"]), rng.randint(1, rows["products"]),
                 rng.randint(1, 9), rng.choice(ORDER_STATUSES),
                 f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
                for n in range(1, rows["orders"] + 1)
            ],
        )  # fmt: skip
    return path


def datasette_app(db_path: str) -> Any:
    """Datasette serving ``db_path`` (an ASGI app; its ``.datasette`` is the instance)."""
    from datasette.app import Datasette

    instance = Datasette([str(db_path)])
    app = instance.app()
    app.datasette = instance  # so the caller can shut its SQL thread pool down afterwards
    return app


def close_datasette(app: Any) -> None:
    """Stop the SQL threads of an in-process Datasette (each instance has its own pool)."""
    executor = getattr(getattr(app, "datasette", None), "executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


# --- served -----------------------------------------------------------------------------------

APPS: dict[str, Callable[..., Any]] = {
    "caches-filling": caches_filling_app,
    "late-gc": late_gc_app,
    "spike-pool": spike_pool_app,
    "allocator-high-water": allocator_high_water_app,
    "datasette": datasette_app,
}
_TEXT_SETTINGS = ("db_path", "gc_mode")


def served() -> Any:
    """The app named by ``HEALTHY_APP``, configured by ``HEALTHY_<NAME>`` variables (uvicorn
    ``--factory``)."""
    name = os.environ.get("HEALTHY_APP", "")
    if name not in APPS:
        raise SystemExit(f"HEALTHY_APP={name!r} is not one of: {', '.join(APPS)}")
    kwargs: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.startswith("HEALTHY_") and key != "HEALTHY_APP":
            setting = key.removeprefix("HEALTHY_").lower()
            kwargs[setting] = value if setting in _TEXT_SETTINGS else int(value)
    return APPS[name](**kwargs)
