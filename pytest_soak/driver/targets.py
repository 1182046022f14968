"""What a soak run drives: an ASGI app, a WSGI app, a served process, or a URL with pids.

Every target knows which processes to watch for memory and opens a client for the driver.
Only loopback addresses are driven unless a host is explicitly allowed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pytest_soak.driver.asgi import AsgiClient
from pytest_soak.driver.clients import Client, HttpxAsyncClient
from pytest_soak.driver.http1 import Http1Client
from pytest_soak.driver.wsgi import WsgiThreadClient
from pytest_soak.errors import DriverError


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host_allowed(url: str, allowed_hosts: Iterable[str]) -> None:
    """Refuse a non-loopback target unless its host was allowed with ``--soak-allow-host``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DriverError(
            f"url={url!r} is not an absolute http(s) URL like 'http://127.0.0.1:8000'"
        )
    host = parts.hostname
    if is_loopback_host(host) or host.lower() in {h.lower() for h in allowed_hosts}:
        return
    raise DriverError(
        f"url={url!r}: refusing to send traffic to non-loopback host {host!r}. Soak tests replay "
        f"recorded production traffic; sending it anywhere but this machine must be explicit: "
        f"pass --soak-allow-host={host} (or ini soak_allow_hosts) if this host is a test system."
    )


class Target:
    """Base of every target: a name, the pids whose memory is the service's, and a client."""

    kind = "target"
    in_process = False

    def describe(self) -> str:
        return self.kind

    def pids(self) -> list[int]:
        return []

    def failure(self) -> str | None:
        """Why the target can no longer serve (e.g. its process exited), or None."""
        return None

    def source_dirs(self) -> list[str]:
        """Folders holding the service's own code (for allocation sites), if known."""
        return []

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        raise NotImplementedError

    async def before_run(self) -> None:
        """Called in the run's event loop before the first request."""

    async def after_run(self) -> None:
        """Called in the run's event loop after the last request."""


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

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and parts.hostname:
            # The fast path: pre-built requests over keep-alive connections (driver/http1.py).
            port = parts.port or 80
            return Http1Client(parts.hostname, port, concurrency=concurrency, timeout=timeout)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(timeout=timeout, limits=limits)
        return HttpxAsyncClient(client, self.url)


_LIVE_PROCESSES: weakref.WeakSet[ServedProcess] = weakref.WeakSet()
_OUTPUT_LINES = 200


def stop_all_served() -> None:
    """Stop every process started by ``soak.serve`` that is still running (atexit, Ctrl-C)."""
    for served in list(_LIVE_PROCESSES):
        served.stop()


class ServedProcess(UrlTarget):
    """A service started from a command on a free loopback port, stopped with its children."""

    kind = "served"

    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        ready: str | None = "/health",
        cwd: str | os.PathLike[str] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        argv = _split_command(command)
        if ready is not None and not ready.startswith("/"):
            raise DriverError(f"ready={ready!r} must be a path starting with '/', e.g. '/health'")
        bad_env = {k: v for k, v in (env or {}).items() if not isinstance(v, str)}
        if bad_env:
            name, value = next(iter(bad_env.items()))
            raise DriverError(
                f"env[{name!r}]={value!r} must be a string (environment values are text): "
                f"write {str(value)!r}"
            )
        program = argv[0]
        if shutil.which(program) is None and not Path(cwd or ".", program).is_file():
            raise DriverError(
                f"command={argv!r}: program {program!r} was not found on PATH; install it in "
                "this environment or give its full path"
            )
        port = free_loopback_port()
        self.port = port
        self.command = [arg.replace("{port}", str(port)) for arg in argv]
        super().__init__(f"http://127.0.0.1:{port}")
        self.ready_path = ready
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        full_env = dict(os.environ)
        full_env.update({"PYTHONUNBUFFERED": "1", "SOAK_PORT": str(port)})
        full_env.update(env or {})
        try:
            self.process = subprocess.Popen(
                _with_parent_death_signal(self.command),
                env=full_env,
                cwd=os.fspath(cwd) if cwd is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise DriverError(
                f"command={self.command!r} could not be started: {exc}. Check the program name "
                "and that it is installed in this environment."
            ) from exc
        _LIVE_PROCESSES.add(self)
        self._reader = threading.Thread(
            target=self._read_output, name=f"soak-serve-{self.process.pid}", daemon=True
        )
        self._reader.start()
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _read_output(self) -> None:
        """Keep the last lines the service printed (bounded: hours of access logs cost the
        same as a minute's), and keep its pipe drained so it never blocks on a full pipe."""
        stream = self.process.stdout
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            self._output.append(raw.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def describe(self) -> str:
        return f"served process {' '.join(self.command)} (pid {self.process.pid}) at {self.url}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return [self.process.pid]

    def output_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._output)[-lines:])

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return f"the service exited with {_describe_exit(code)}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe_url = self.url + (self.ready_path or "/")
        last_problem = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise DriverError(
                        f"command={' '.join(self.command)!r} exited with {_describe_exit(code)} "
                        f"before it was ready at {probe_url}. Its last output:\n"
                        f"{_indent(self.output_tail())}"
                    )
                if self.ready_path is None:
                    if _port_open(self.port):
                        return
                else:
                    try:
                        status = client.get(probe_url).status_code
                        if status < 400:
                            return
                        last_problem = f"it answered {status}"
                    except httpx.HTTPError as exc:
                        last_problem = type(exc).__name__
                if time.monotonic() > deadline:
                    raise DriverError(
                        f"command={' '.join(self.command)!r} was not ready at {probe_url} after "
                        f"{timeout:.0f}s ({last_problem}); check ready= and that the command "
                        "listens on {port}. Its last output:\n" + _indent(self.output_tail())
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL the leader after 5 s and any member of its group
        still there 2 s after the leader is gone. Idempotent."""
        _LIVE_PROCESSES.discard(self)
        group = self.process.pid
        if self.process.poll() is None:
            _signal_group(group, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(group, signal.SIGKILL)
                self.process.wait(timeout=5)
        deadline = time.monotonic() + 2
        while _signal_group(group, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(group, signal.SIGKILL)  # members that ignored SIGTERM
        self._reader.join(timeout=2)


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def as_target(obj: object, *, allowed_hosts: Iterable[str] = ()) -> Target:
    """Turn what the user passed to ``soak.run`` into a ``Target``."""
    if isinstance(obj, UrlTarget):
        check_host_allowed(obj.url, allowed_hosts)
        return obj
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, str):
        check_host_allowed(obj, allowed_hosts)
        raise DriverError(
            f"target={obj!r}: a URL alone gives no process to measure; pass "
            f"soak.url({obj!r}, pid=...) with the service's pid, or start it with soak.serve([...])"
        )
    if callable(obj):
        call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
        if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(obj):
            return AsgiTarget(obj)
        return WsgiTarget(obj)
    raise DriverError(
        f"target={obj!r} is not something soak.run can drive; pass an ASGI app, a WSGI app, "
        "soak.serve([...]) or soak.url('http://127.0.0.1:8000', pid=...)"
    )


# Run in the child before the service's own program: on Linux, ask for SIGTERM when the parent
# (pytest) dies without its cleanup (SIGKILL, a CI timeout), then exec the command. A launcher
# rather than preexec_fn, which is unsafe once threads exist.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG\n"
    "except Exception:\n"
    "    pass\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-c", _LAUNCHER, *argv]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _split_command(command: Sequence[str] | str) -> list[str]:
    import shlex

    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise DriverError(
            "command=[] is empty; pass the service's command line, e.g. "
            "['uvicorn', 'shop.app:app', '--port', '{port}']"
        )
    return argv


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"{name}{hint}"
    return f"exit status {code}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text or "<no output>").splitlines())


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
