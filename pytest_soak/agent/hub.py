"""``AgentHub``: the harness's end of the agents' channel — a loopback listener that the agents
of one served service connect to (each says hello with the service's token and its pid), and
that asks them all one command at a time, gathering the answers by pid.

An agent that does not answer in time is dropped (its process may be gone); nothing the hub
does can stop the service.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

#: The environment variable that tells an agent where the hub listens: ``127.0.0.1:PORT:TOKEN``.
ENV = "PYTEST_SOAK_AGENT"
#: The folder put first on the service's ``PYTHONPATH``: its ``sitecustomize`` loads the agent.
BOOT_DIR = Path(__file__).resolve().parent / "boot"
#: How long an agent has to say hello once connected, and to answer a quick command.
HELLO_TIMEOUT = 5.0
ANSWER_TIMEOUT = 5.0
#: Most agents kept at once (a fork bomb of workers must not grow the harness).
MAX_AGENTS = 256


class _Connection:
    """One agent's channel: its process, its socket and the reader of its answers."""

    def __init__(self, sock: socket.socket, pid: int, reader: Any) -> None:
        self.sock = sock
        self.pid = pid
        self.reader = reader
        self.next_id = 0

    def close(self) -> None:
        for closing in (self.reader.close, self.sock.close):
            with contextlib.suppress(OSError):
                closing()


class AgentHub:
    """Listens on a free loopback port for the agents of one service."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()  # one command at a time, over every connection
        self._agents: dict[int, _Connection] = {}
        self._closed = False
        #: Agents that connected but were refused or dropped, and why (bounded).
        self.problems: list[str] = []
        self._thread = threading.Thread(target=self._accept, name="soak-agent-hub", daemon=True)
        self._thread.start()

    def environment(self, pythonpath: str | None) -> dict[str, str]:
        """What the service's environment needs for its agents: where to connect, and the boot
        folder first on ``PYTHONPATH`` (before the service's own entries, kept)."""
        entries = [str(BOOT_DIR), *(p for p in (pythonpath or "").split(os.pathsep) if p)]
        return {ENV: f"127.0.0.1:{self.port}:{self.token}", "PYTHONPATH": os.pathsep.join(entries)}

    def pids(self) -> set[int]:
        """The processes whose agents are connected."""
        with self._lock:
            return set(self._agents)

    def wait_for(self, pids: set[int], timeout: float) -> set[int]:
        """Wait until agents of all ``pids`` are connected (or ``timeout``); those connected."""
        deadline = time.monotonic() + timeout
        while True:
            connected = self.pids() & pids
            if connected == pids or time.monotonic() >= deadline:
                return connected
            time.sleep(0.02)

    def ask(
        self, do: str, timeout: float = ANSWER_TIMEOUT, **args: Any
    ) -> dict[int, dict[str, Any]]:
        """Send ``do`` to every agent, then gather their answers by pid. An agent that fails to
        answer in time is dropped; an answer ``{"error": ...}`` is kept as it is."""
        answers: dict[int, dict[str, Any]] = {}
        with self._lock:
            asked: list[tuple[_Connection, int]] = []
            for pid, conn in list(self._agents.items()):
                conn.next_id += 1
                line = json.dumps({"do": do, "args": args, "id": conn.next_id}) + "\n"
                try:
                    conn.sock.sendall(line.encode())
                except OSError as exc:
                    self._drop(pid, f"pid {pid}: the agent's channel closed ({exc})")
                    continue
                asked.append((conn, conn.next_id))
            deadline = time.monotonic() + timeout
            for conn, wanted in asked:
                answer = self._answer(conn, wanted, deadline)
                if answer is None:
                    self._drop(conn.pid, f"pid {conn.pid}: no answer to {do!r}")
                else:
                    answers[conn.pid] = answer
        return answers

    def _answer(self, conn: _Connection, wanted: int, deadline: float) -> dict[str, Any] | None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                conn.sock.settimeout(left)
                line = conn.reader.readline()
            except (OSError, ValueError):
                return None
            if not line:
                return None
            try:
                answer = json.loads(line)
            except ValueError:
                return None
            if isinstance(answer, dict) and answer.get("id") == wanted:
                return answer  # an older id: a late answer to a command that timed out

    def _drop(self, pid: int, why: str) -> None:
        conn = self._agents.pop(pid, None)
        if conn is not None:
            conn.close()
        self._note(why)

    def _note(self, why: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(why)

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._greet, args=(sock,), daemon=True).start()

    def _greet(self, sock: socket.socket) -> None:
        """Read the hello; keep the connection if the token is right (a later agent of the same
        pid replaces the earlier: a launcher that exec'd the service)."""
        sock.settimeout(HELLO_TIMEOUT)
        reader = sock.makefile("r", encoding="utf-8")
        try:
            line = reader.readline(4096)
            hello = json.loads(line)
            token = str(hello.get("hello", ""))
            pid = int(hello["pid"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            sock.close()
            return
        if not hmac.compare_digest(token, self.token):
            sock.close()
            self._note("a connection with a wrong token was refused")
            return
        with self._lock:
            if self._closed or (len(self._agents) >= MAX_AGENTS and pid not in self._agents):
                sock.close()
                return
            old = self._agents.pop(pid, None)
            if old is not None:
                old.close()
            self._agents[pid] = _Connection(sock, pid, reader)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._agents.values():
                conn.close()
            self._agents.clear()
