"""Small ASGI services with known memory behaviour, for the soak tests of pytest-soak itself.

Each is a real ASGI app (Starlette); ``native_service`` is also run under uvicorn in its own
process. None of them is a mock of pytest-soak: they are what the tool is pointed at.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def leaky_app(bytes_per_request: int = 2048) -> Starlette:
    """Keeps a ``bytes_per_request`` buffer per ``GET /item/{id}`` forever (a Python-level leak)."""
    kept: list[bytes] = []

    def remember(item_id: str) -> None:
        if bytes_per_request:  # leaky_app(0) keeps nothing: not even a reference a request
            kept.append(item_id.encode() * (bytes_per_request // max(1, len(item_id))))

    async def item(request: Request) -> Response:
        remember(request.path_params["item_id"])
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


def step_app(after: int = 300, size: int = 200 * 1024) -> Starlette:
    """Healthy, except that request number ``after`` allocates ``size`` bytes, kept: one step
    up, then flat (no leak, but growth a committed baseline did not have)."""
    kept: list[bytes] = []
    seen = [0]

    async def item(request: Request) -> Response:
        seen[0] += 1
        if seen[0] == after:
            kept.append(os.urandom(size))
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


def per_id_table_app(entry_bytes: int = 1024) -> Starlette:
    """Keeps ``entry_bytes`` per item id ever seen, unbounded: flat while the same ids come
    back (identical cycles), growing when every cycle brings new ids (``ids="fresh"``)."""
    table: dict[str, bytes] = {}

    async def item(request: Request) -> Response:
        item_id = request.path_params["item_id"]
        table.setdefault(item_id, os.urandom(entry_bytes))
        return JSONResponse({"id": item_id, "known": len(table)})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


def healthy_app() -> Starlette:
    """Allocates per request and frees everything."""

    async def item(request: Request) -> Response:
        scratch = [request.path_params["item_id"] * 10 for _ in range(50)]
        return JSONResponse({"id": request.path_params["item_id"], "n": len(scratch)})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


def cache_app(max_entries: int = 1200, entry_bytes: int = 1024) -> Starlette:
    """An LRU cache keyed by item id: grows while new ids arrive, then stays at ``max_entries``."""
    cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    async def item(request: Request) -> Response:
        item_id = request.path_params["item_id"]
        if item_id in cache:
            cache.move_to_end(item_id)
        else:
            cache[item_id] = os.urandom(entry_bytes)
            if len(cache) > max_entries:
                cache.popitem(last=False)
        return JSONResponse({"id": item_id, "cached": len(cache)})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


class _Node:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.other: _Node | None = None


def late_gc_app(cycle_bytes: int = 4096) -> Starlette:
    """Makes reference cycles on every request and turns automatic gc off while it serves, so
    garbage piles up until a collection: memory saws up and down, nothing is retained."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if was_enabled:
                gc.enable()

    async def item(request: Request) -> Response:
        a, b = _Node(os.urandom(cycle_bytes)), _Node(b"")
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(
        routes=[Route("/health", health), Route("/item/{item_id}", item)], lifespan=lifespan
    )


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def native_app() -> Starlette:
    """``GET /item/{id}`` mallocs ``NATIVE_LEAK_BYTES`` (default 4096) of C memory and touches
    it; with ``NATIVE_LEAK=1`` it never frees it — a leak tracemalloc cannot see."""
    size = int(os.environ.get("NATIVE_LEAK_BYTES", "4096"))
    leak = os.environ.get("NATIVE_LEAK", "") == "1"

    async def item(request: Request) -> Response:
        pointer = _libc.malloc(size)
        _libc.memset(pointer, 7, size)
        if not leak:
            _libc.free(pointer)
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item)])


def crashing_app_main() -> None:  # pragma: no cover - run as a subprocess
    raise SystemExit("configuration error: DATABASE_URL is not set")


native_service = native_app()


def wsgi_app(leak_bytes: int = 0):  # type: ignore[no-untyped-def]
    """A plain WSGI app; with ``leak_bytes`` it keeps that much per request."""
    kept: list[bytes] = []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if leak_bytes:
            kept.append(b"w" * leak_bytes)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


# -- leak isolation (tests/test_isolation*.py) ------------------------------------------------


def two_leaks_app(bytes_per_request: int = 8192) -> Starlette:
    """Two independent leaks: ``GET /alpha/{id}`` and ``GET /beta/{id}`` each keep a buffer per
    request; ``GET /gamma/{id}`` and ``GET /delta/{id}`` are healthy."""
    kept: list[bytes] = []

    async def leaky(request: Request) -> Response:
        kept.append(b"k" * bytes_per_request)
        return JSONResponse({"id": request.path_params["item_id"]})

    async def healthy(request: Request) -> Response:
        scratch = [request.path_params["item_id"] * 10 for _ in range(20)]
        return JSONResponse({"id": request.path_params["item_id"], "n": len(scratch)})

    return Starlette(
        routes=[
            Route("/alpha/{item_id}", leaky),
            Route("/beta/{item_id}", leaky),
            Route("/gamma/{item_id}", healthy),
            Route("/delta/{item_id}", healthy),
        ]
    )


def interaction_app(bytes_per_request: int = 8192) -> Starlette:
    """A leak only when two endpoints both get traffic: ``PUT /draft/{id}`` stores a draft
    (one per id: bounded), ``POST /publish/{id}`` takes it and keeps it forever. Neither leaks
    alone; ``GET /feed`` and ``GET /about/{id}`` are healthy."""
    drafts: dict[str, bytes] = {}
    published: list[bytes] = []

    async def draft(request: Request) -> Response:
        drafts[request.path_params["item_id"]] = b"d" * bytes_per_request
        return JSONResponse({"drafts": len(drafts)})

    async def publish(request: Request) -> Response:
        stored = drafts.pop(request.path_params["item_id"], None)
        if stored is None:
            return JSONResponse({"error": "no draft"}, status_code=404)
        published.append(stored)
        return JSONResponse({"published": len(published)})

    async def feed(request: Request) -> Response:
        return JSONResponse({"items": len(published) % 7})

    async def about(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(
        routes=[
            Route("/draft/{item_id}", draft, methods=["PUT"]),
            Route("/publish/{item_id}", publish, methods=["POST"]),
            Route("/feed", feed),
            Route("/about/{item_id}", about),
        ]
    )


def unknown_id_app(bytes_per_request: int = 8192) -> Starlette:
    """``GET /doc/{id}`` answers known ids (``d0000`` … ``d0019``) and keeps a buffer for every
    unknown one it answers 404 (a leak on the error path only); ``GET /list`` is healthy."""
    docs = {f"d{n:04d}": {"id": f"d{n:04d}"} for n in range(20)}
    misses: list[bytes] = []

    async def doc(request: Request) -> Response:
        found = docs.get(request.path_params["doc_id"])
        if found is None:
            misses.append(b"m" * bytes_per_request)
            return JSONResponse({"error": "no such doc"}, status_code=404)
        return JSONResponse(found)

    async def listing(request: Request) -> Response:
        return JSONResponse(sorted(docs)[:5])

    return Starlette(routes=[Route("/doc/{doc_id}", doc), Route("/list", listing)])


# -- scale-out (tests/test_scaleout.py) -------------------------------------------------------


def counting_app() -> Starlette:
    """Counts what it answers, for checking the figures merged from Locust workers against the
    service's own: ``GET /item/{id}`` answers 500 when the id ends in 7 (a tenth of
    ``item_traffic_lines``), else 200; ``GET /stats`` says how many items and 500s it served."""
    counts = {"items": 0, "errors": 0}

    async def item(request: Request) -> Response:
        counts["items"] += 1
        if request.path_params["item_id"].endswith("7"):
            counts["errors"] += 1
            return PlainTextResponse("boom", status_code=500)
        return JSONResponse({"id": request.path_params["item_id"]})

    async def stats(request: Request) -> Response:
        return JSONResponse(counts)

    return Starlette(
        routes=[Route("/health", health), Route("/stats", stats), Route("/item/{item_id}", item)]
    )


counting_service = counting_app()
