"""In process (``serve=False``): httpx calls are routed through respx to the mock sets.

One respx router serves every active in-process mock set of this process. It patches httpcore
(respx's default), so a service's ``httpx.Client`` / ``AsyncClient`` calls are answered here while
pytest-soak's own in-process driver (``httpx.ASGITransport`` / ``WSGITransport``, which do not go
through httpcore) is untouched. A mock set answers requests to the hosts it was given, or to every
non-loopback host when it was given none; requests outside every set's hosts pass through to the
network (a served target on 127.0.0.1 stays reachable).

Bounded journal: respx appends every call to ``router.calls`` and to each route's ``calls``
(a list that grows for the whole run). This router records nothing there; what was answered is
in each set's bounded ``Journal``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import respx
from respx.models import PassThrough

from pytest_soak.mocks.matching import Request
from pytest_soak.mocks.responder import Answer, Responder

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class InProcessMocks:
    """The in-process side of one mock set: its responder and the hosts it answers for."""

    def __init__(self, responder: Responder, hosts: Sequence[str] | None) -> None:
        self.responder = responder
        self.hosts = frozenset(h.lower() for h in hosts) if hosts else None

    def covers(self, host: str) -> bool:
        if self.hosts is not None:
            return host in self.hosts
        return host not in LOOPBACK and not host.startswith("127.")

    def start(self) -> None:
        _ROUTER.attach(self)

    def stop(self) -> None:
        _ROUTER.detach(self)


class _SoakRouter(respx.MockRouter):
    """A respx router that asks the active mock sets instead of routes, and keeps no calls."""

    def __init__(self) -> None:
        super().__init__(assert_all_called=False, assert_all_mocked=False)
        self._sets: list[InProcessMocks] = []
        self._guard = threading.Lock()

    def attach(self, mocks: InProcessMocks) -> None:
        with self._guard:
            if not self._sets:
                self.start()
            self._sets.append(mocks)

    def detach(self, mocks: InProcessMocks) -> None:
        with self._guard:
            if mocks not in self._sets:
                return
            self._sets.remove(mocks)
            if not self._sets:
                self.stop(quiet=True)

    def record(self, *args: Any, **kwargs: Any) -> None:
        """respx would append to ``calls`` here; the bounded journals have it already."""

    def _pick(self, request: httpx.Request) -> tuple[Responder, Request]:
        host = request.url.host.lower()
        candidates = [m for m in list(self._sets) if m.covers(host)]
        if not candidates:
            raise PassThrough(
                f"{request.method} {request.url} is outside every mock set's hosts",
                request=request,
                origin=respx.Route(),
            )
        mock_request = _as_request(request)
        for candidate in candidates:
            if candidate.responder.would_match(mock_request):
                return candidate.responder, mock_request
        return candidates[0].responder, mock_request

    def handler(self, request: httpx.Request) -> httpx.Response:
        responder, mock_request = self._pick(request)
        answer = responder.answer(mock_request)
        if answer.delay_ms > 0:
            time.sleep(answer.delay_ms / 1000.0)
        return _as_response(answer, request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        responder, mock_request = self._pick(request)
        answer = responder.answer(mock_request)
        if answer.delay_ms > 0:
            await anyio.sleep(answer.delay_ms / 1000.0)
        return _as_response(answer, request)


_ROUTER = _SoakRouter()


def _as_request(request: httpx.Request) -> Request:
    url = request.url
    host = url.host if url.port is None else f"{url.host}:{url.port}"
    return Request(
        method=request.method,
        target=url.raw_path.decode("ascii", "replace"),
        headers=tuple(request.headers.multi_items()),
        body=request.content,
        host=host,
    )


def _as_response(answer: Answer, request: httpx.Request) -> httpx.Response:
    if answer.fault is not None:
        raise _fault(answer.fault, request)
    headers = [(k, v) for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
    extensions = (
        {"reason_phrase": answer.reason.encode("latin-1", "replace")} if answer.reason else {}
    )
    return httpx.Response(
        answer.status,
        headers=headers,
        content=answer.body,
        request=request,
        extensions=extensions,
    )


def _fault(kind: str, request: httpx.Request) -> httpx.TransportError:
    """The exception httpx raises for the same fault on a real socket."""
    note = "(pytest-soak mock fault)"
    if kind == "reset":
        return httpx.ReadError(f"[Errno 104] Connection reset by peer {note}", request=request)
    if kind == "empty":
        return httpx.RemoteProtocolError(
            f"Server disconnected without sending a response. {note}", request=request
        )
    if kind == "malformed_chunk":
        return httpx.RemoteProtocolError(f"malformed chunked response body {note}", request=request)
    return httpx.RemoteProtocolError(f"invalid HTTP response (random data) {note}", request=request)
