"""The soak target as Locust workers reach it: a URL.

A service with a URL (``soak.serve``, ``soak.url``) is used as it is. An in-process app (ASGI or
WSGI) is served on a free loopback port by uvicorn in a thread of this process, so it stays
where the probes measure it (the traced Python heap, its allocation sites) and only the load
moves to the workers. Its lifespan is uvicorn's (``lifespan="auto"``); idle keep-alive
connections are kept for ``KEEP_ALIVE`` seconds, so a checkpoint pause or a quiet phase does
not make the workers reconnect (the same connections at every floor).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from pytest_soak.agent import AgentHub
from pytest_soak.driver.clients import Client
from pytest_soak.driver.http1 import Http1Client
from pytest_soak.driver.targets import AsgiTarget, Target, UrlTarget, WsgiTarget
from pytest_soak.driver.targets.hosts import free_loopback_port
from pytest_soak.errors import DriverError

#: Seconds uvicorn keeps an idle connection of a worker open.
KEEP_ALIVE = 600
#: Seconds uvicorn gets to start and to stop.
SERVER_TIMEOUT = 15.0


class ScaledOutTarget(Target):
    """``inner`` with the URL the workers send to (``url``) and the load's description."""

    def __init__(self, inner: Target, load: str) -> None:
        self.inner = inner
        self.load = load
        self.kind = inner.kind
        self.in_process = inner.in_process
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0
        if isinstance(inner, UrlTarget):
            self.url = inner.url
        elif isinstance(inner, (AsgiTarget, WsgiTarget)):
            try:
                import uvicorn  # noqa: F401
            except ImportError:
                raise DriverError(
                    f"{inner.describe()}: Locust workers reach an in-process app through a "
                    "server in this process, uvicorn, which is not installed: pip install "
                    "'pytest-soak[locust]'"
                ) from None
            self.port = free_loopback_port()
            self.url = f"http://127.0.0.1:{self.port}"
        else:
            raise DriverError(f"{inner.describe()}: Locust workers need a URL to send to")

    def describe(self) -> str:
        served = f", served at {self.url} for the workers" if self.port else ""
        return f"{self.inner.describe()}{served}; {self.load}"

    def pids(self) -> list[int]:
        return self.inner.pids()

    def port_table(self) -> dict[str, int]:
        return self.inner.port_table() or ({"": self.port} if self.port else {})

    def agent_hub(self) -> AgentHub | None:
        return self.inner.agent_hub()

    def source_dirs(self) -> list[str]:
        return self.inner.source_dirs()

    def failure(self) -> str | None:
        if self._thread is not None and not self._thread.is_alive():
            return f"the server of {self.inner.describe()} at {self.url} stopped"
        return self.inner.failure()

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        """A client of this process (the attribution pass): through the served URL."""
        if self.port:
            return Http1Client("127.0.0.1", self.port, concurrency=concurrency, timeout=timeout)
        return await self.inner.open_client(concurrency, timeout)

    async def before_run(self) -> None:
        if not self.port:
            await self.inner.before_run()
            return
        import uvicorn

        app = self.inner.app  # type: ignore[attr-defined]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            interface="wsgi" if isinstance(self.inner, WsgiTarget) else "auto",
            loop="asyncio",
            lifespan="auto",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"soak-serve-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DriverError(
                    f"{self.inner.describe()}: uvicorn did not start serving it at {self.url} "
                    f"within {SERVER_TIMEOUT:g}s (see the captured log)"
                )
            await asyncio.sleep(0.01)

    async def after_run(self) -> None:
        if not self.port:
            await self.inner.after_run()
            return
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            deadline = time.monotonic() + SERVER_TIMEOUT
            while self._thread.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self._thread = None
