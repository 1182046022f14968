"""The out-of-process fast path: HTTP/1.1 over keep-alive asyncio connections.

A replay sends the same few thousand recorded requests over and over, so each request's bytes
are built once (``RequestCache``) and every send is a ``transport.write`` of ready bytes plus an
httptools (llhttp) parse of the answer. No per-request objects beyond one future and one timer.
This is what makes the driver cheap enough to share a 2-core machine with the service it
measures (docs/driver.md has the numbers against Locust and wrk).

Plain ``http://`` targets only; TLS and HTTP/2 targets take the general httpx path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine
from typing import Any, cast
from urllib.parse import quote

import httptools

from pytest_soak.driver.clients import DROPPED_HEADERS, SendFailure
from pytest_soak.traffic.model import Exchange

#: Characters a request-target may carry as they are (RFC 3986 reserved + unreserved + ``%``);
#: anything else a recording holds (spaces, non-ASCII) is percent-encoded, as browsers do.
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:%-._~"
#: Methods whose requests carry a Content-Length even when empty (servers expect one).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: How often answers past their deadline are expired (at most; less for short timeouts).
SWEEP_INTERVAL = 0.1


def build_request(exchange: Exchange, host: str) -> bytes:
    """The complete HTTP/1.1 request for ``exchange``, addressed to ``host`` (``name:port``).

    Raises ``SendFailure('bad-request')`` when the recording cannot be sent as HTTP/1.1 (a
    header with a line break, a method that is not a token)."""
    method = exchange.method
    if not method.isascii() or not method.isalpha():
        raise SendFailure("bad-request", f"{exchange.source}: method {method!r} is not a token")
    target = exchange.target.split("#", 1)[0]
    target = quote(target, safe=_TARGET_SAFE, encoding="utf-8", errors="surrogateescape")
    lines = [f"{method} {target} HTTP/1.1".encode("ascii"), b"Host: " + host.encode("ascii")]
    for name, value in exchange.headers:
        if name.lower() in DROPPED_HEADERS:
            continue
        raw_name = name.encode("latin-1", "replace")
        raw_value = value.encode("utf-8", "surrogateescape")
        if b"\r" in raw_value or b"\n" in raw_value or not raw_name.strip() or b":" in raw_name:
            raise SendFailure(
                "bad-request", f"{exchange.source}: header {name!r} cannot be sent as HTTP/1.1"
            )
        lines.append(raw_name + b": " + raw_value)
    body = exchange.body
    if body or method in _BODY_METHODS:
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class RequestCache:
    """Request bytes per exchange, built on first use. Bounded by the traffic: the replay holds
    its exchanges for its whole life, so an identity key cannot be reused by another object."""

    __slots__ = ("_built", "_host")

    def __init__(self, host: str) -> None:
        self._host = host
        self._built: dict[int, tuple[Exchange, bytes]] = {}

    def get(self, exchange: Exchange) -> bytes:
        entry = self._built.get(id(exchange))
        if entry is not None and entry[0] is exchange:
            return entry[1]
        data = build_request(exchange, self._host)
        self._built[id(exchange)] = (exchange, data)
        return data


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time (no pipelining)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0
        self.received = False  # any byte of the current answer
        self.complete = False
        self.reusable = True
        self.head = False
        self.deadline = 0.0  # loop time by which the current answer must be complete

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.waiter is None:
            self._close()  # bytes nobody asked for: the connection is out of step
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(self.status or 101, reusable=False)
        except httptools.HttpParserError as exc:
            self._fail("protocol", f"malformed HTTP response: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.pool.forget(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.status and not self.complete and exc is None:
            # A close-delimited body (no Content-Length) ends here: the answer is complete.
            self._finish(self.status, reusable=False)
            return
        if exc is None:
            detail = "the service closed the connection before answering"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        waiter.set_exception(SendFailure("reset", detail))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.head:
            # A HEAD answer has no body whatever its Content-Length says; llhttp cannot be told,
            # so the connection is not reused after one.
            self._finish(self.status, reusable=False)

    def on_message_complete(self) -> None:
        if self.status < 200:
            self.status = 0  # an interim answer (100 Continue): the real one follows
            return
        self._finish(self.status, reusable=self.parser.should_keep_alive())

    # the pool's side
    def send(self, data: bytes, head: bool) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = self.pool.loop.create_future()
        self.status = 0
        self.received = False
        self.complete = False
        self.head = head
        self.transport.write(data)
        return self.waiter

    def _finish(self, status: int, *, reusable: bool) -> None:
        self.complete = True
        self.reusable = self.reusable and reusable
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def _fail(self, kind: str, detail: str) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(SendFailure(kind, detail))
        self._close()

    def _close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()


class ConnectionPool:
    """Keep-alive connections to one ``host:port``; at most ``limit`` open at once."""

    def __init__(self, host: str, port: int, *, limit: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()
        self._busy: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max(1, limit))
        self._closed = False
        # One periodic sweep expires answers past their deadline, instead of a timer per request
        # (a TimerHandle and a heap push per send): a timeout fires up to one sweep late.
        self._sweep_every = min(SWEEP_INTERVAL, timeout / 10)
        self._sweeper: asyncio.TimerHandle | None = None

    async def request(self, data: bytes, *, head: bool = False) -> int:
        """Send ``data``; return the answer's status or raise ``SendFailure``."""
        async with self._slots:
            conn, fresh = await self._acquire()
            try:
                return await self._exchange(conn, data, head)
            except SendFailure as failure:
                if fresh or conn.received or failure.kind != "reset":
                    raise
            # A kept-alive connection the service had already closed: retry once on a new
            # one, as every HTTP client does (nothing of the request was answered).
            conn, _ = await self._acquire(new=True)
            return await self._exchange(conn, data, head)

    async def _exchange(self, conn: _Connection, data: bytes, head: bool) -> int:
        waiter = conn.send(data, head)
        conn.deadline = self.loop.time() + self.timeout
        self._busy.add(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)
        try:
            status = await waiter
        except BaseException:
            conn.abort()
            raise
        finally:
            self._busy.discard(conn)
            conn.waiter = None
        if conn.reusable and not self._closed:
            self._idle.append(conn)
        else:
            conn._close()
        return status

    async def _acquire(self, *, new: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not new:
            conn = self._idle.pop()
            if conn.reusable:
                return conn, False
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.timeout,
            )
        except asyncio.TimeoutError:
            raise SendFailure("timeout", f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise SendFailure("connect", f"{self.host}:{self.port}: {exc.strerror or exc}") from exc
        self._open.add(protocol)
        return protocol, True

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in [c for c in self._busy if c.deadline <= now]:
            waiter = conn.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(SendFailure("timeout", f"no answer within {self.timeout:g}s"))
        self._sweeper = None
        if self._busy and not self._closed:
            self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)

    def forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._open):
            conn._close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' close callbacks run


class Http1Client:
    """The driver's ``Client`` for ``http://host:port`` targets."""

    def __init__(self, host: str, port: int, *, concurrency: int, timeout: float) -> None:
        hostport = host if port == 80 else f"{host}:{port}"
        if ":" in host:
            hostport = f"[{host}]:{port}"
        self._requests = RequestCache(hostport)
        self._pool = ConnectionPool(host, port, limit=concurrency, timeout=timeout)

    def send(self, exchange: Exchange) -> Coroutine[Any, Any, int]:
        # Not itself a coroutine: one frame less per request on the hot path.
        data = self._requests.get(exchange)
        return self._pool.request(data, head=exchange.method == "HEAD")

    async def aclose(self) -> None:
        await self._pool.aclose()
