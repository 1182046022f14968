"""The ASGI middleware: ``app = RecordingMiddleware(app, "traffic.jsonl", sample_rate=0.1)``.

Every message goes through unchanged, in both directions (``http.disconnect`` included): the
middleware only looks. A request that is not sampled, a websocket and any other scope go to the
app without even a wrapper. A response whose first body message has ``more_body`` is a stream
(server-sent events, a download): it is recorded at once with its status and headers and no
body, and nothing of it is held while it streams. Lifespan shutdown closes the recorder (and
when the app ignores lifespan events, the middleware answers them for it, so that a server's
shutdown still closes the recorder; ``atexit`` remains the fallback).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from pytest_soak.record.capture import PATH_SAFE, Capture
from pytest_soak.record.recorder import Recorder, recorder_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STREAM_MESSAGES = frozenset({"http.response.pathsend", "http.response.zerocopysend"})
_SHUTDOWN_ANSWERS = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


class RecordingMiddleware:
    """Records sampled HTTP exchanges of an ASGI app (see docs/recording.md).

    ``recorder`` is a ``Recorder`` or the path of the file, and then ``options`` are the
    ``Recorder``'s (``sample_rate``, ``include``, ``exclude``, ``redaction``, ``max_body``,
    ``queue_size``, ``max_bytes``, ``backups``, ...). Works with Starlette's
    ``app.add_middleware(RecordingMiddleware, recorder="traffic.jsonl")`` too.
    """

    def __init__(
        self, app: ASGIApp, recorder: Recorder | str | os.PathLike[str], **options: Any
    ) -> None:
        self.app = app
        self.recorder = recorder_of(recorder, options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            capture = self._begin(scope)
            if capture is None:
                await self.app(scope, receive, send)
            else:
                await self._recorded(capture, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:  # websocket, or a scope type from an extension: not ours to look at
            await self.app(scope, receive, send)

    def _begin(self, scope: Scope) -> Capture | None:
        recorder = self.recorder
        try:
            method, path = scope["method"], scope["path"]
            offset = recorder.begin(method, path)
            if offset is None:
                return None
            raw = scope.get("raw_path")
            target = raw.decode("latin-1") if raw else quote(path, safe=PATH_SAFE)
            query = scope.get("query_string")
            if query:
                target = f"{target}?{query.decode('latin-1')}"
            return recorder.capture(offset, method, target, list(scope.get("headers") or ()))
        except Exception as exc:
            recorder.fail(exc)
            return None

    async def _recorded(self, capture: Capture, scope: Scope, receive: Receive, send: Send) -> None:
        recorder = self.recorder

        async def receive_recorded() -> Message:
            message = await receive()
            if not capture.submitted:
                try:
                    _received(capture, message)
                except Exception as exc:
                    recorder.fail(exc, capture)
            return message

        async def send_recorded(message: Message) -> None:
            done = False
            if not capture.submitted:
                try:
                    done = _sent(capture, message)
                except Exception as exc:
                    recorder.fail(exc, capture)
            try:
                await send(message)
            finally:
                if done:
                    recorder.submit(capture)

        try:
            await self.app(scope, receive_recorded, send_recorded)
        except BaseException as exc:
            if not capture.submitted:
                capture.app_raised(exc)
            raise
        finally:
            recorder.submit(capture)  # a no-op when the response already handed it over

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        last: list[str] = []  # the type of the last message the app received
        answered = False

        async def receive_seen() -> Message:
            message = await receive()
            last[:] = [message.get("type", "")]
            return message

        async def send_seen(message: Message) -> None:
            nonlocal answered
            answered = True
            if message.get("type") in _SHUTDOWN_ANSWERS:
                await self._close()
            await send(message)

        await self.app(scope, receive_seen, send_seen)
        if answered:
            return
        # The app returned without answering lifespan events: answer them for it, so that the
        # server's shutdown still closes the recorder.
        kind = last[0] if last else (await receive()).get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            kind = (await receive()).get("type")
        if kind == "lifespan.shutdown":
            await self._close()
            await send({"type": "lifespan.shutdown.complete"})

    async def _close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.recorder.close)
        except Exception as exc:
            self.recorder.fail(exc)


def _received(capture: Capture, message: Message) -> None:
    kind = message.get("type")
    if kind == "http.request":
        capture.body.add(message.get("body", b""))
    elif kind == "http.disconnect" and capture.status is None:
        capture.error = "the client disconnected before the response started"


def _sent(capture: Capture, message: Message) -> bool:
    """Note one message the app sends; True when the capture is complete."""
    kind = message.get("type")
    if kind == "http.response.start":
        capture.status = int(message["status"])
        capture.response_headers = list(message.get("headers") or ())
        return False
    if kind == "http.response.body":
        if message.get("more_body", False):
            capture.streamed = True
        else:
            capture.response_body.add(message.get("body", b""))
        return True
    if kind in _STREAM_MESSAGES:
        capture.streamed = True
        return True
    return False
