"""The loopback mock server (``serve=True``): a separate process, for services in other
processes or languages.

Why a process of its own: its memory is measured apart from the harness and the service, and
it never competes with the load driver for the GIL. Why asyncio + h11 and not a web framework:
faults need the raw socket (a reset is ``SO_LINGER`` 0 then close; a malformed chunk is bytes no
framework would write), and h11 is already a dependency.

The child is ``python -m pytest_soak.mocks.server DEFINITIONS.json``: it binds 127.0.0.1 on a
free port, prints ``pytest-soak mocks listening on PORT`` and serves until SIGTERM, until its
standard input closes (the parent died, whatever the way), or, on Linux, on the parent's death
signal. ``/__soak/stats`` (GET) returns the journal as JSON, ``/__soak/reset`` (POST) starts
over; neither counts as a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11

from pytest_soak.errors import MockError
from pytest_soak.mocks.chaos import Chaos
from pytest_soak.mocks.definitions import Stub, stubs_from_json, stubs_to_json
from pytest_soak.mocks.matching import Request
from pytest_soak.mocks.responder import Answer, Responder

ADMIN_PREFIX = "/__soak/"
READY_LINE = "pytest-soak mocks listening on "
START_TIMEOUT = 30.0
#: The temporary folder of one server: its definitions and its log.
TEMP_PREFIX = "pytest-soak-mocks-"
#: What the parent writes to the server's standard input before closing it on a normal stop.
STOP_WORD = b"stop\n"
#: Response headers the server sets itself (a recorded value would be wrong for our body).
_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "keep-alive", "transfer-encoding", "upgrade"}
)
_MAX_BODY = 64 * 1024 * 1024
_READ_CHUNK = 65536


# -- the parent's handle --------------------------------------------------------------------


class MockServer:
    """A running loopback mock server process: ``url``, ``pid``, ``stats()``, ``reset()``,
    ``stop()``."""

    def __init__(self, stubs: tuple[Stub, ...], chaos: Chaos | None, seed: int) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        definitions = self._dir / "definitions.json"
        definitions.write_text(
            json.dumps(
                {
                    "stubs": stubs_to_json(stubs),
                    "chaos": chaos.to_dict() if chaos else None,
                    "seed": seed,
                }
            )
        )
        self._log = self._dir / "server.log"
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest_soak.mocks.server", str(definitions)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        try:
            self.port = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self) -> int:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise MockError(
                    f"the loopback mock server (pid {self.process.pid}) did not start "
                    f"({'it exited' if self.process.poll() is not None else 'timed out'}). "
                    f"Its output:\n{self._log_tail()}"
                )
            ready, _, _ = select.select([stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(stdout.fileno(), 256)
                if not chunk:
                    continue
                line += chunk
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith(READY_LINE):
            raise MockError(f"the loopback mock server said {text!r} instead of its port")
        return int(text[len(READY_LINE) :])

    def _log_tail(self) -> str:
        try:
            text = self._log.read_text("utf-8", "replace")
        except OSError:
            return "(no output)"
        return "\n".join("    " + line for line in text.splitlines()[-20:]) or "    (no output)"

    def _admin(self, method: str, path: str) -> dict[str, Any]:
        if self.process.poll() is not None:
            raise MockError(
                f"the loopback mock server at {self.url} has exited ({self.process.returncode}); "
                f"its output:\n{self._log_tail()}"
            )
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, ADMIN_PREFIX + path)
            response = connection.getresponse()
            data: dict[str, Any] = json.loads(response.read())
            return data
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise MockError(
                f"the loopback mock server at {self.url} did not answer ({exc})"
            ) from exc
        finally:
            connection.close()

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset(self) -> None:
        self._admin("POST", "reset")

    def memory(self) -> int:
        """Resident set size of the server process in bytes (Linux ``/proc``; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/statm").read_text().split()
            return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self) -> None:
        """Close its standard input (it exits at once), then SIGTERM after 5 s, SIGKILL after 5 s
        more; idempotent."""
        process = self.process
        if process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.write(STOP_WORD)  # a stop, not our death: the folder is ours
                process.stdin.flush()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        for signum in (None, signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            if signum is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


# -- the child ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pytest_soak.mocks.server DEFINITIONS.json", file=sys.stderr)
        return 2
    workdir = Path(argv[0]).parent
    parent = os.getppid()
    _die_with_parent(lambda: _remove_own_folder(workdir))
    document = json.loads(Path(argv[0]).read_text())
    chaos = Chaos.from_dict(document["chaos"]) if document["chaos"] else None
    responder = Responder(stubs_from_json(document["stubs"]), chaos, int(document["seed"]))
    asyncio.run(_serve(responder))
    _clean_up_after(parent, workdir)
    return 0


def _clean_up_after(parent: int, workdir: Path) -> None:
    """When the parent died without stopping us (SIGKILL), nobody else removes our folder of
    definitions and log: remove it. A living parent removes it itself, after reading the log."""
    if os.getppid() != parent:
        _remove_own_folder(workdir)


def _remove_own_folder(workdir: Path) -> None:
    """Only a folder ``MockServer`` made: never a user's folder of definitions."""
    if workdir.name.startswith(TEMP_PREFIX):
        shutil.rmtree(workdir, ignore_errors=True)


def _die_with_parent(on_exit: Callable[[], None]) -> None:
    """Exit when the parent goes, however it goes: standard input reaches EOF when the parent's
    end of the pipe closes (also on SIGKILL); on Linux the kernel also sends SIGTERM."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        told = b""
        with contextlib.suppress(OSError):
            while chunk := sys.stdin.buffer.read(4096):
                told = (told + chunk)[-len(STOP_WORD) :]
        if told != STOP_WORD:
            on_exit()  # end of input without the stop word: the parent died
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


async def _serve(responder: Responder) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _connection(reader, writer, responder)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{READY_LINE}{port}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


async def _connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, responder: Responder
) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            received = await _read_request(conn, reader)
            if received is None:
                return
            head, body = received
            answer = _answer(head, body, responder)
            if answer.delay_ms > 0:
                await asyncio.sleep(answer.delay_ms / 1000.0)
            if answer.fault is not None:
                await _fault(writer, answer.fault)
                return
            writer.write(_response_bytes(conn, answer))
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError:
        with contextlib.suppress(Exception):
            writer.write(_response_bytes(conn, Answer(400, body=b"bad request\n")))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
        pass
    finally:
        if not writer.is_closing():
            writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes] | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_CHUNK))
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                raise h11.RemoteProtocolError("request body too large")
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _answer(head: h11.Request, body: bytes, responder: Responder) -> Answer:
    target = head.target.decode("latin-1")
    method = head.method.decode("ascii")
    if target.startswith(ADMIN_PREFIX):
        return _admin(method, target[len(ADMIN_PREFIX) :], responder)
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers)
    host = next((v for k, v in headers if k == "host"), None)
    return responder.answer(Request(method, target, headers, body, host))


def _admin(method: str, what: str, responder: Responder) -> Answer:
    if what == "stats" and method == "GET":
        payload: object = responder.stats()
    elif what == "reset" and method == "POST":
        responder.reset()
        payload = {"reset": True}
    elif what == "health":
        payload = {"ok": True}
    else:
        return Answer(
            404, body=b"unknown admin endpoint; use GET /__soak/stats, POST /__soak/reset\n"
        )
    return Answer(200, (("content-type", "application/json"),), json.dumps(payload).encode())


def _response_bytes(conn: h11.Connection, answer: Answer) -> bytes:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
    headers.append(("content-length", str(len(answer.body))))
    response = h11.Response(
        status_code=answer.status,
        headers=headers,
        reason=answer.reason.encode("latin-1", "replace") if answer.reason else b"",
    )
    out = conn.send(response) or b""
    if answer.body:
        out += conn.send(h11.Data(data=answer.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


async def _fault(writer: asyncio.StreamWriter, fault: str) -> None:
    if fault == "reset":
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    if fault == "malformed_chunk":
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nlorem\r\nipsum dolor\r\n"
        )
    elif fault == "random_data":
        writer.write(os.urandom(256))
    # empty: nothing at all
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
