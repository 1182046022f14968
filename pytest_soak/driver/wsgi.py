"""An in-process WSGI client: calls the app directly on a bounded thread pool, as a threaded
server would, with nothing between (see ``driver/asgi.py`` for why not httpx).

Each exchange's environ is built once and copied per request (apps write into it); the body
goes in as a fresh ``BytesIO``; the answer's iterable is drained and closed, its bytes not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_soak.driver.clients import SendFailure, request_headers
from pytest_soak.traffic.model import Exchange

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: Environs kept per exchange object (see ``asgi.MAX_SCOPES``).
MAX_ENVIRONS = 65536


class WsgiThreadClient:
    """Runs a WSGI app on a bounded thread pool; see the module docstring."""

    def __init__(self, app: WsgiApp, workers: int) -> None:
        self._app = app
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="soak-wsgi")
        self._environs: dict[int, tuple[Exchange, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    async def start(self) -> None:
        """Start every worker thread now: a pool that grows thread by thread during the run
        would show its threads' memory as growth of the service's heap."""
        barrier = threading.Barrier(self._workers)
        loop = asyncio.get_running_loop()

        def wait() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5.0)

        await asyncio.gather(
            *(loop.run_in_executor(self._pool, wait) for _ in range(self._workers))
        )

    def _environ(self, exchange: Exchange) -> dict[str, Any]:
        with self._lock:
            entry = self._environs.get(id(exchange))
            if entry is not None and entry[0] is exchange:
                return entry[1]
        parts = urlsplit(exchange.target)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": exchange.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(parts.path or "/").encode("utf-8").decode("latin-1"),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "testserver",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for raw_name, raw_value in request_headers(exchange):
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[name] = value
            else:
                key = f"HTTP_{name}"
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        if exchange.body:
            environ["CONTENT_LENGTH"] = str(len(exchange.body))
        with self._lock:
            if len(self._environs) >= MAX_ENVIRONS:
                self._environs.clear()
            self._environs[id(exchange)] = (exchange, environ)
        return environ

    def _send(self, exchange: Exchange) -> int:
        environ = dict(self._environ(exchange))
        environ["wsgi.input"] = io.BytesIO(exchange.body)
        status = 0

        def start_response(line: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
            nonlocal status
            status = int(line.split(" ", 1)[0])
            return lambda data: None

        try:
            answer = self._app(environ, start_response)
            try:
                for _ in answer:
                    pass
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
        except Exception as exc:
            raise SendFailure("app", f"{type(exc).__name__}: {exc}") from exc
        if not status:
            raise SendFailure("protocol", f"{exchange.method} {exchange.target}: no response")
        return status

    async def send(self, exchange: Exchange) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._send, exchange)

    async def aclose(self) -> None:
        # A WSGI call cannot be interrupted: a hung app keeps its thread, but not the run.
        self._pool.shutdown(wait=False, cancel_futures=True)
