"""Apps called in this process: an ASGI app (its lifespan started and stopped around the run,
like uvicorn's ``lifespan="auto"``) and a WSGI app (on a bounded thread pool)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pytest_soak.driver.asgi import AsgiClient
from pytest_soak.driver.clients import Client
from pytest_soak.driver.targets.base import Target
from pytest_soak.driver.wsgi import WsgiThreadClient
from pytest_soak.errors import DriverError


class _Lifespan:
    """Runs an ASGI app's lifespan protocol (startup before the run, shutdown after), like
    uvicorn's ``lifespan="auto"``: an app that does not support it is used without it."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}  # the lifespan's state; each request gets a copy

    async def _receive(self) -> dict[str, str]:
        return await self._queue.get()

    async def _send(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type", "")
        if kind == "lifespan.startup.failed":
            self._error = str(message.get("message", "")) or "startup failed"
            self._started.set()
        elif kind == "lifespan.startup.complete":
            self._started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            self._stopped.set()

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self._app(scope, self._receive, self._send)
        except Exception:
            pass  # lifespan not supported: uvicorn's "auto" carries on the same way
        finally:
            self._started.set()
            self._stopped.set()

    async def startup(self) -> None:
        self._task = asyncio.ensure_future(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        await self._started.wait()
        if self._error is not None:
            raise DriverError(f"the ASGI app's lifespan startup failed: {self._error}")

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._queue.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class AsgiTarget(Target):
    kind = "asgi"
    in_process = True

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._lifespan: _Lifespan | None = None

    def describe(self) -> str:
        return f"ASGI app {_qualname(self.app)} (in process)"

    def source_dirs(self) -> list[str]:
        return _package_dirs(self.app)

    def pids(self) -> list[int]:
        return [os.getpid()]

    async def before_run(self) -> None:
        self._lifespan = _Lifespan(self.app)
        await self._lifespan.startup()

    async def after_run(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.shutdown()

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        state = self._lifespan.state if self._lifespan is not None else None
        return AsgiClient(self.app, state)


class WsgiTarget(Target):
    kind = "wsgi"
    in_process = True

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def describe(self) -> str:
        return f"WSGI app {_qualname(self.app)} (in process)"

    def source_dirs(self) -> list[str]:
        return _package_dirs(self.app)

    def pids(self) -> list[int]:
        return [os.getpid()]

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        client = WsgiThreadClient(self.app, workers=max(1, min(concurrency, 32)))
        await client.start()
        return client


def _package_dirs(app: object) -> list[str]:
    """The folder of the top-level package the app object was defined in (``shop`` for
    ``shop.app:app``), so its code counts as the service's even when pip-installed. For
    framework objects (a Starlette instance) the module is the framework's: ignored."""
    module_name = getattr(app, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return []
    top = sys.modules.get(module_name.split(".")[0])
    path = getattr(top, "__file__", None)
    if path is None or "site-packages" not in path:
        return []  # not installed: already counted as the service's code
    return [os.path.dirname(path) if path.endswith("__init__.py") else path]


def _qualname(obj: object) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"
