"""A real loopback HTTP/1.1 server that misbehaves on request, for testing the driver's client.

It answers by path, on raw sockets (a normal framework would not let it send a reset, a
close-delimited body or garbage):

- ``/ok``: 200 with a Content-Length (``HEAD /ok`` gets the headers only);
- ``/chunked``: 200 with a chunked body; ``/status/<n>``: status ``n``;
- ``/eof-body``: 200 without a length, the body ending when the connection closes;
- ``/close``: 200 with ``Connection: close``, then it closes;
- ``/idle-close``: 200 (keep-alive), then it silently closes the connection (a keep-alive
  timeout: the next request on that connection meets a closed socket);
- ``/reset``: the connection is reset (RST) without an answer;
- ``/hang``: no answer, ever;
- ``/garbage``: bytes that are not HTTP.

Every request head received is kept (the last 200) so tests can check what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import deque
from typing import Any


class RawHttpServer:
    def __init__(self) -> None:
        self.heads: deque[bytes] = deque(maxlen=200)
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="raw-http", daemon=True)
        self.port = 0

    def __enter__(self) -> RawHttpServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._server.wait_closed())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.heads.append(head)
                length = _content_length(head)
                if length:
                    await reader.readexactly(length)
                method, path = head.split(b" ", 2)[:2]
                if not await self._answer(method, path.decode(), writer):
                    return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, method: bytes, path: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to end."""
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        elif path == "/ok" or path.startswith("/ok?") or path.startswith("/echo"):
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
            writer.write(head if method == b"HEAD" else head + b"ok")
        elif path == "/chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            )
        elif path == "/eof-body":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            await writer.drain()
            return False
        elif path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            return False
        elif path == "/idle-close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.05)
            return False
        elif path == "/reset":
            _reset(writer)
            return False
        elif path == "/hang":
            await asyncio.sleep(3600)
        elif path == "/garbage":
            writer.write(b"SMTP is not HTTP\r\n\r\n")
            await writer.drain()
            return False
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _reset(writer: asyncio.StreamWriter) -> None:
    sock: Any = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
