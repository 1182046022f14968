"""A service started from a command by ``soak.serve``: on a free loopback port, in its own
process group, its last output kept; stopped with its children by SIGTERM then SIGKILL, at
fixture teardown, at pytest exit and at interpreter exit (``stop_all_served``)."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from pytest_soak.agent import AgentHub
from pytest_soak.driver.targets.hosts import free_loopback_port
from pytest_soak.driver.targets.url import UrlTarget
from pytest_soak.errors import DriverError
from pytest_soak.ports import MAIN, assign_ports, fill_ports

_LIVE_PROCESSES: weakref.WeakSet[ServedProcess] = weakref.WeakSet()
_OUTPUT_LINES = 200
_START_TRIES = 3
# How servers say a port was taken: Python's OSError (uvicorn, aiohttp, http.server), Envoy,
# gunicorn (which gives up after its own retries), Node and Go.
_PORT_IN_USE = re.compile(
    r"address already in use|EADDRINUSE|\[Errno 98\]|Connection in use", re.IGNORECASE
)


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
        agent: bool = True,
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
        given_env = dict(env or {})
        self.ready_path = ready
        for attempt in range(1, _START_TRIES + 1):
            self._start(argv, given_env, cwd, agent)
            try:
                self._wait_ready(ready_timeout)
                return
            except BaseException as exc:
                # Another process took a chosen port between our check and the service's bind:
                # start again on fresh ports (the service never listened, so nothing is lost).
                lost = isinstance(exc, DriverError) and self._lost_its_port()
                retry = lost and attempt < _START_TRIES
                self.stop()
                if not retry:
                    raise

    def _start(
        self,
        argv: list[str],
        given_env: dict[str, str],
        cwd: str | os.PathLike[str] | None,
        agent: bool,
    ) -> None:
        """Choose the ports, fill them in and start the command (not yet waiting for it)."""
        #: The free loopback ports: the traffic's under ``""``, one per ``{port:NAME}``.
        self.ports = assign_ports([*argv, *given_env.values()], free_loopback_port)
        port = self.ports[MAIN]
        self.port = port
        self.command = [fill_ports(arg, self.ports) for arg in argv]
        super().__init__(f"http://127.0.0.1:{port}")
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        full_env = dict(os.environ)
        full_env.update({"PYTHONUNBUFFERED": "1", "SOAK_PORT": str(port)})
        full_env.update(
            {
                f"SOAK_PORT_{name.upper().replace('-', '_')}": str(p)
                for name, p in self.ports.items()
                if name
            }
        )
        full_env.update({name: fill_ports(value, self.ports) for name, value in given_env.items()})
        #: The agents' channel (a Python service: one agent per interpreter; agent=False: none).
        self.hub = AgentHub() if agent else None
        if self.hub is not None:
            full_env.update(self.hub.environment(full_env.get("PYTHONPATH")))
        try:
            self.process = subprocess.Popen(
                with_parent_death_signal(self.command),
                env=full_env,
                cwd=os.fspath(cwd) if cwd is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            if self.hub is not None:
                self.hub.close()
            raise DriverError(
                f"command={self.command!r} could not be started: {exc}. Check the program name "
                "and that it is installed in this environment."
            ) from exc
        _LIVE_PROCESSES.add(self)
        self._reader = threading.Thread(
            target=self._read_output, name=f"soak-serve-{self.process.pid}", daemon=True
        )
        self._reader.start()

    def _lost_its_port(self) -> bool:
        """The service exited saying one of its ports was already in use."""
        return self.process.poll() is not None and bool(_PORT_IN_USE.search(self.output_tail()))

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

    def port_table(self) -> dict[str, int]:
        return dict(self.ports)

    def agent_hub(self) -> AgentHub | None:
        return self.hub

    def output_tail(self, lines: int = 20) -> str:
        """The last lines the service printed. Once it has exited, what it printed last is
        read to the end first (on a busy machine the reader thread can lag behind the exit)."""
        if self.process.poll() is not None and self._reader.is_alive():
            self._reader.join(timeout=2)
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
        if self.hub is not None:
            self.hub.close()


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


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


def with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` behind a launcher that asks Linux to SIGTERM it when its parent dies."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-S", "-c", _LAUNCHER, *argv]  # -S: no site, so no agent here


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
