"""The Locust side of scale-out: what the master and each worker do with pytest-soak's custom
messages. Importing this module imports Locust (which monkey-patches the process with gevent):
only the master and worker programs (``scaleout/master.py``, ``scaleout/worker.py``) import it,
never pytest.

- **Master**: a control listener (one JSON object a line, ``protocol``) for the controller: a
  ``start`` picks the workers (ranked by Locust's ``worker_index``), sends each its job with its
  rank as ``soak_start``; ``release`` and ``stop`` are passed on to them; every worker report is
  passed back. A worker that Locust marks missing (no heartbeat for 3 s) or that quits is
  reported as ``lost``. A beat a second tells the controller the master is alive.
- **Worker**: ``soak_start`` starts a replayer process (``scaleout/replayer.py``) and relays its
  lines to the master as ``soak_report``; ``soak_release``/``soak_stop`` go to its stdin. The
  replayer gets SIGTERM if the worker dies (Linux), and is killed when the worker quits.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import socket
import subprocess
import sys
from typing import Any

import gevent
import gevent.lock
from gevent.server import StreamServer
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from pytest_soak.driver.targets.served import with_parent_death_signal
from pytest_soak.scaleout import protocol

#: Seconds the master waits for the workers a ``start`` asks for.
WORKER_WAIT = 60.0
#: Seconds between the master's beats to the controller and its looks at the workers.
BEAT = 1.0
#: Lines of a replayer's stderr kept for the message when it fails.
STDERR_LINES = 30


class SoakUser(User):
    """Locust needs a User class; pytest-soak's load is sent by the replayer, not by users
    (its open-model loop with pre-built requests is faster than a User, docs/driver.md), so
    this one is never started by pytest-soak."""

    wait_time = constant(1)

    @task
    def idle(self) -> None:
        """Nothing: a Locust run started by hand from this file sends no traffic."""


class MasterControl:
    """The master's end of the control connection (one controller at a time)."""

    def __init__(self, runner: MasterRunner, host: str, port: int) -> None:
        self.runner = runner
        self.active: dict[str, int] = {}  # Locust client id -> rank of its share
        self.lost: set[str] = set()
        self.conn: socket.socket | None = None
        self._sending = gevent.lock.Semaphore()  # one line at a time from every greenlet
        runner.register_message(protocol.REPORT, self._on_report)
        self.server = StreamServer((host, port), self._serve)
        self.server.start()
        self.port: int = self.server.server_port
        gevent.spawn(self._watch)

    def _send(self, message: dict[str, Any]) -> None:
        self._send_raw(protocol.dumps(message))

    def _send_raw(self, line: bytes) -> None:
        conn = self.conn
        if conn is not None:
            with self._sending, contextlib.suppress(OSError):
                conn.sendall(line)

    def _ready(self) -> list[str]:
        """Connected workers, ranked by Locust's worker_index."""
        clients = [c.id for c in self.runner.clients.values() if c.state != STATE_MISSING]
        return sorted(clients, key=self.runner.get_worker_index)

    def _serve(self, conn: socket.socket, address: Any) -> None:
        if self.conn is not None:
            conn.sendall(protocol.dumps({"type": "error", "message": "busy: another controller"}))
            conn.close()
            return
        self.conn = conn
        try:
            for line in conn.makefile("rb"):
                try:
                    message = protocol.loads(line)
                except ValueError as exc:
                    self._send({"type": "error", "message": str(exc)})
                    continue
                self._handle(message)
        except OSError:
            pass
        finally:
            self._stop("the controller disconnected")
            self.conn = None
            with contextlib.suppress(OSError):
                conn.close()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "hello":
            self._send(
                {"type": "hello", "protocol": protocol.PROTOCOL, "workers": len(self._ready())}
            )
        elif kind == "start":
            gevent.spawn(self._start, message)
        elif kind == "release":
            for client in self.active:
                self.runner.send_message(protocol.RELEASE, message, client_id=client)
        elif kind == "stop":
            self._stop(str(message.get("why") or "the controller stopped the run"))

    def _start(self, message: dict[str, Any]) -> None:
        wanted = message.get("workers")
        need = int(wanted) if wanted else 1
        waited = 0.0
        while len(self._ready()) < need and waited < WORKER_WAIT:
            gevent.sleep(0.2)
            waited += 0.2
        ready = self._ready()
        if len(ready) < need:
            self._send(
                {
                    "type": "error",
                    "message": f"only {len(ready)} of {need} Locust workers connected to the "
                    f"master within {WORKER_WAIT:g}s",
                }
            )
            return
        chosen = ready[:need] if wanted else ready
        self.active = {client: rank for rank, client in enumerate(chosen)}
        self.lost = set()
        job = dict(message["job"])
        for client, rank in self.active.items():
            self.runner.send_message(
                protocol.START, {**job, "index": rank, "workers": len(chosen)}, client_id=client
            )
        self._send({"type": "started", "workers": len(chosen), "ids": chosen})

    def _stop(self, why: str) -> None:
        for client in self.active:
            with contextlib.suppress(Exception):
                self.runner.send_message(protocol.STOP, {"why": why}, client_id=client)
        self.active = {}

    def _on_report(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        if msg.node_id in self.active:
            self._send_raw(str(msg.data["line"]).encode().rstrip(b"\n") + b"\n")

    def _watch(self) -> None:
        while True:
            gevent.sleep(BEAT)
            for client, rank in list(self.active.items()):
                node = self.runner.clients.get(client)
                if client in self.lost:
                    continue
                if node is None or node.state == STATE_MISSING:
                    self.lost.add(client)
                    why = "quit" if node is None else "stopped sending heartbeats (missing)"
                    self._send(
                        {
                            "type": "lost",
                            "worker": rank,
                            "message": f"Locust worker {rank} ({client}) {why}",
                        }
                    )
            self._send({"type": "beat", "workers": len(self._ready())})


class WorkerRelay:
    """The worker's end: one replayer process per job, its lines relayed to the master."""

    def __init__(self, runner: WorkerRunner) -> None:
        self.runner = runner
        self.process: subprocess.Popen[bytes] | None = None
        runner.register_message(protocol.START, self._on_start)
        runner.register_message(protocol.RELEASE, self._on_command)
        runner.register_message(protocol.STOP, self._on_command)
        atexit.register(self.kill)

    def _report(self, message: dict[str, Any]) -> None:
        self.runner.send_message(protocol.REPORT, {"line": protocol.dumps(message).decode()})

    def _on_start(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        self.kill()
        job = msg.data
        command = with_parent_death_signal([sys.executable, "-m", "pytest_soak.scaleout.replayer"])
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.process = process
        assert process.stdin is not None
        process.stdin.write(protocol.dumps({**job, "type": "job"}))
        process.stdin.flush()
        gevent.spawn(self._relay, process, int(job["index"]))

    def _relay(self, process: subprocess.Popen[bytes], index: int) -> None:
        stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)

        def read_stderr() -> None:
            assert process.stderr is not None
            for raw in process.stderr:
                stderr.append(raw.decode("utf-8", "replace").rstrip())

        reader = gevent.spawn(read_stderr)
        finished = False
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                finished = finished or protocol.loads(line)["type"] in ("done", "failed")
            self.runner.send_message(protocol.REPORT, {"line": line})
        code = process.wait()
        reader.join(timeout=2)
        if not finished:
            tail = "\n".join(stderr) or "<no output>"
            self._report(
                {
                    "type": "failed",
                    "worker": index,
                    "message": f"the replayer of worker {index} exited with {code} "
                    f"before its report; its last output:\n{tail}",
                }
            )

    def _on_command(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        process = self.process
        if process is None or process.stdin is None or process.poll() is not None:
            return
        kind = "release" if msg.type == protocol.RELEASE else "stop"
        with contextlib.suppress(OSError):
            process.stdin.write(protocol.dumps({**(msg.data or {}), "type": kind}))
            process.stdin.flush()

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def _on_init(environment: Environment, **kwargs: Any) -> None:
    """``locust -f`` this file: a master gets its control listener (port from
    ``--soak-control-port``), a worker its relay."""
    runner = environment.runner
    options = environment.parsed_options
    if isinstance(runner, MasterRunner):
        port = getattr(options, "soak_control_port", protocol.CONTROL_PORT)
        host = getattr(options, "master_bind_host", "*")
        MasterControl(runner, "0.0.0.0" if host == "*" else host, port)
    elif isinstance(runner, WorkerRunner):
        WorkerRelay(runner)


def _add_arguments(parser: Any, **kwargs: Any) -> None:
    parser.add_argument(
        "--soak-control-port",
        type=int,
        default=protocol.CONTROL_PORT,
        help="pytest-soak: port of the master's control listener (--soak-locust=HOST:PORT)",
    )


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
