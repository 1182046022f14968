"""An in-process ASGI client: calls the app directly, as a server would, with nothing between.

httpx's ``ASGITransport`` builds a URL, a request and a response object per call and parses
the URL with regular expressions: about 5x the CPU of the call itself, and, worse for a soak
test, its own allocations sit in the same traced heap as the service's. This client builds each
exchange's scope once (its headers, path and query as bytes), copies it per request (apps add
keys to their scope), feeds the body in one message and reads only the status; answers are
not kept. Like uvicorn it hands each request a shallow copy of the lifespan ``state``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_soak.driver.clients import SendFailure, request_headers
from pytest_soak.traffic.model import Exchange

Message = MutableMapping[str, Any]
App = Callable[..., Awaitable[None]]

_SERVER = ("testserver", 80)
_CLIENT = ("127.0.0.1", 50000)
#: Scopes kept per exchange object; the replay holds its cycle's exchanges, so this only
#: bounds a client used with ever-new exchanges (fresh ids per cycle).
MAX_SCOPES = 65536


class AsgiClient:
    """Sends exchanges straight into an ASGI app; see the module docstring."""

    def __init__(self, app: App, state: MutableMapping[str, Any] | None = None) -> None:
        self._app = app
        self._state = state
        self._scopes: dict[int, tuple[Exchange, dict[str, Any]]] = {}

    def _scope(self, exchange: Exchange) -> dict[str, Any]:
        entry = self._scopes.get(id(exchange))
        if entry is not None and entry[0] is exchange:
            return entry[1]
        if len(self._scopes) >= MAX_SCOPES:
            self._scopes.clear()
        parts = urlsplit(exchange.target)
        raw_path = (parts.path or "/").encode("utf-8", "surrogateescape")
        headers = [(b"host", b"testserver")]
        headers.extend((name.lower(), value) for name, value in request_headers(exchange))
        if exchange.body:
            headers.append((b"content-length", str(len(exchange.body)).encode("ascii")))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": exchange.method,
            "scheme": "http",
            "path": unquote(parts.path or "/"),
            "raw_path": raw_path,
            "query_string": parts.query.encode("utf-8", "surrogateescape"),
            "root_path": "",
            "headers": headers,
            "client": _CLIENT,
            "server": _SERVER,
        }
        self._scopes[id(exchange)] = (exchange, scope)
        return scope

    async def send(self, exchange: Exchange) -> int:
        scope = dict(self._scope(exchange))
        scope["headers"] = list(scope["headers"])
        if self._state is not None:
            scope["state"] = dict(self._state)
        body = exchange.body
        status = 0
        done = asyncio.Event()
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "http.response.body" and not message.get("more_body", False):
                done.set()

        try:
            await self._app(scope, receive, send)
        except Exception as exc:
            # An in-process app that raises is answered 500 by a real server; count it so.
            raise SendFailure("app", f"{type(exc).__name__}: {exc}") from exc
        finally:
            done.set()
        if not status:
            raise SendFailure("protocol", f"{exchange.method} {exchange.target}: no response")
        return status

    async def aclose(self) -> None:
        self._scopes.clear()
