"""Clients that send one recorded exchange to a target and report its status or failure kind.

In-process ASGI and WSGI apps are called directly (``driver/asgi.py``, ``driver/wsgi.py``);
an ``https://`` URL goes through an httpx ``AsyncClient`` with keep-alive pooling, a plain
``http://`` one through the fast path (``driver/http1.py``). Third-party exceptions stop
here and become ``SendFailure`` with a short kind (``connect``, ``timeout``, ``reset``,
``protocol``, ``app``).
"""

from __future__ import annotations

from typing import Protocol

import httpx

from pytest_soak.traffic.model import Exchange

# Hop-by-hop and framing headers are the client's business, not the recording's.
DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "accept-encoding",
        "expect",
    }
)


class SendFailure(Exception):
    """A request that got no HTTP response; ``kind`` names why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Client(Protocol):
    async def send(self, exchange: Exchange) -> int:
        """Send ``exchange``; return the response status (body fully read) or raise SendFailure."""
        ...

    async def aclose(self) -> None: ...


def request_headers(exchange: Exchange) -> list[tuple[bytes, bytes]]:
    """The recorded headers minus framing ones, as bytes (recordings carry non-ASCII values)."""
    return [
        (k.encode("latin-1", "replace"), v.encode("utf-8", "surrogateescape"))
        for k, v in exchange.headers
        if k.lower() not in DROPPED_HEADERS
    ]


# Errors raised while *building* a request from a recording (not the service's fault).
_REQUEST_ERRORS = (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError, ValueError)


def _failure_kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        text = str(exc).lower()
        return "reset" if "reset" in text or "disconnect" in text or not text else "protocol"
    return "protocol"


class HttpxAsyncClient:
    """Sends through an ``httpx.AsyncClient`` (a URL, or an ASGI app via ``ASGITransport``)."""

    def __init__(self, client: httpx.AsyncClient, base: str, *, app_errors: bool = False) -> None:
        self._client = client
        self._base = base.rstrip("/")
        self._app_errors = app_errors

    async def send(self, exchange: Exchange) -> int:
        try:
            response = await self._client.request(
                exchange.method,
                self._base + exchange.target,  # absolute: the recording cannot pick the host
                headers=request_headers(exchange),
                content=exchange.body or None,
            )
        except _REQUEST_ERRORS as exc:
            raise SendFailure("bad-request", f"{exchange.source}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise SendFailure(_failure_kind(exc), str(exc) or type(exc).__name__) from exc
        except Exception as exc:
            if not self._app_errors:
                raise
            # An in-process app that raises is answered 500 by a real server; count it so.
            raise SendFailure("app", f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
