"""``UrlTarget``: a service already running at a URL, with the pids to watch for memory."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from pytest_soak.driver.clients import Client, HttpxAsyncClient
from pytest_soak.driver.http1 import Http1Client
from pytest_soak.driver.targets.base import Target
from pytest_soak.errors import DriverError


class UrlTarget(Target):
    kind = "url"

    def __init__(self, url: str, pids: Sequence[int] = ()) -> None:
        self.url = url.rstrip("/")
        self._pids = list(pids)
        for pid in self._pids:
            if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
                raise DriverError(f"pid={pid!r} is not a process id (a positive whole number)")

    def describe(self) -> str:
        watched = ", ".join(str(p) for p in self._pids) or "none"
        return f"{self.url} (pids watched: {watched})"

    def pids(self) -> list[int]:
        return list(self._pids)

    def port_table(self) -> dict[str, int]:
        parts = urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:
            return {}
        default = {"http": 80, "https": 443}.get(parts.scheme)
        chosen = port if port is not None else default
        return {"": chosen} if chosen is not None else {}

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and parts.hostname:
            # The fast path: pre-built requests over keep-alive connections (driver/http1.py).
            port = parts.port or 80
            return Http1Client(parts.hostname, port, concurrency=concurrency, timeout=timeout)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(timeout=timeout, limits=limits)
        return HttpxAsyncClient(client, self.url)
