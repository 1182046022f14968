"""The WSGI twin: ``app = WSGIRecordingMiddleware(app, "traffic.jsonl", sample_rate=0.1)``.

For a sampled request with a body, the first ``max_body`` bytes of ``wsgi.input`` are read
before the app runs (never more than ``CONTENT_LENGTH``; a body without a length only when the
server sets ``wsgi.input_terminated``), and the app gets a fresh stream that yields those bytes
and then the rest of the original: it reads the full body, by ``read``, ``readline``,
``readlines`` or iteration, as it would have. ``start_response`` is passed through with its
``exc_info``; the ``write`` callable it returns is passed through too (its data counts as body).
The response iterable is returned as it is when it is a list or tuple or a
``wsgi.file_wrapper`` (the file is not recorded), else wrapped in an iterable that passes
every chunk on and forwards ``close()``. A body in more than one non-empty chunk is a stream:
recorded without its body, as soon as the second chunk is seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

from pytest_soak.record.capture import PATH_SAFE, Capture
from pytest_soak.record.recorder import Recorder, recorder_of

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], object]
StartResponse = Callable[..., Write]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_READ_PIECE = 65536


class _Stream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class WSGIRecordingMiddleware:
    """Records sampled HTTP exchanges of a WSGI app; ``recorder`` and ``options`` as for
    ``RecordingMiddleware``. Close the recorder when the service stops
    (``middleware.recorder.close()``); ``atexit`` does it otherwise."""

    def __init__(
        self, app: WSGIApp, recorder: Recorder | str | os.PathLike[str], **options: Any
    ) -> None:
        self.app = app
        self.recorder = recorder_of(recorder, options)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        capture = self._begin(environ)
        if capture is None:
            return self.app(environ, start_response)
        recorder = self.recorder

        def write_recorded(write: Write) -> Write:
            def write_and_record(data: bytes) -> object:
                outcome = write(data)
                _piece(recorder, capture, data)
                return outcome

            return write_and_record

        def start_recorded(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Write:
            write = start_response(status, headers, *exc_info)
            if not capture.submitted:
                try:
                    capture.status = int(status.split(None, 1)[0])
                    capture.response_headers = list(headers)
                except Exception as exc:
                    recorder.fail(exc, capture)
                    return write
            return write_recorded(write)

        try:
            result = self.app(environ, start_recorded)
        except BaseException as exc:
            if not capture.submitted:
                capture.app_raised(exc)
            recorder.submit(capture)
            raise
        try:
            file_wrapper = environ.get("wsgi.file_wrapper")
            if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
                capture.streamed = True
            elif isinstance(result, list | tuple):
                for chunk in result:
                    _piece(recorder, capture, chunk)
            else:
                return _RecordedIterable(result, capture, recorder)
        except Exception as exc:
            recorder.fail(exc, capture)
        recorder.submit(capture)
        return result

    def _begin(self, environ: Environ) -> Capture | None:
        recorder = self.recorder
        try:
            method = environ["REQUEST_METHOD"]
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            offset = recorder.begin(method, path or "/")
            if offset is None:
                return None
            capture = recorder.capture(offset, method, _target(environ, path), _headers(environ))
        except Exception as exc:
            recorder.fail(exc)
            return None
        try:
            _buffer_body(environ, capture)
        except Exception as exc:
            recorder.fail(exc, capture)
        return capture


def _target(environ: Environ, path: str) -> str:
    for key in ("REQUEST_URI", "RAW_URI"):  # uWSGI, gunicorn: the target as it was sent
        raw = environ.get(key)
        if isinstance(raw, str) and raw.startswith("/"):
            return raw
    # PEP 3333: PATH_INFO is the decoded path's bytes as latin-1 text
    target = quote(path.encode("latin-1"), safe=PATH_SAFE) or "/"
    query = environ.get("QUERY_STRING")
    return f"{target}?{query}" if query else target


def _headers(environ: Environ) -> list[tuple[str, str]]:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            headers.append((key[5:].replace("_", "-").title(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), str(value)))
    return headers


def _buffer_body(environ: Environ, capture: Capture) -> None:
    """Read the first ``max_body`` bytes of the body and give the app a stream with all of it."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    try:
        length: int | None = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if not length and environ.get("wsgi.input_terminated"):
        length = None  # read to the end of the stream
    if length == 0:
        return
    limit = capture.body.limit
    want = limit + 1 if length is None else min(length, limit)
    data = bytearray()
    try:
        while len(data) < want:
            piece = stream.read(min(_READ_PIECE, want - len(data)))
            if not piece:
                break
            data += piece
    finally:
        ended = length is None and len(data) < want
        complete = ended or (length is not None and len(data) >= length)
        environ["wsgi.input"] = ReplayedInput(bytes(data), stream, exhausted=complete)
    capture.body.add(bytes(data[:limit]))
    if length is not None and length > len(data):
        capture.body.size = length
    elif length is None and not ended:
        capture.body.size = len(data)  # more follows: at least one byte past max_body


class ReplayedInput:
    """A ``wsgi.input`` that yields ``buffered`` and then what is left of ``rest``.

    ``exhausted``: ``buffered`` is the whole body, so ``rest`` is never read again (a server's
    raw socket stream could block on a read past the body).
    """

    def __init__(self, buffered: bytes, rest: _Stream, *, exhausted: bool) -> None:
        self._buffered = buffered
        self._position = 0
        self._rest = rest
        self._exhausted = exhausted

    def read(self, size: int | None = -1) -> bytes:
        left = self._buffered[self._position :]
        if size is None or size < 0:
            self._position = len(self._buffered)
            return left if self._exhausted else left + self._rest.read()
        if size <= len(left):
            self._position += size
            return left[:size]
        self._position = len(self._buffered)
        if self._exhausted:
            return left
        return left + self._rest.read(size - len(left))

    def readline(self, size: int | None = -1) -> bytes:
        left = self._buffered[self._position :]
        limit = len(left) if size is None or size < 0 else min(size, len(left))
        newline = left.find(b"\n", 0, limit)
        if newline >= 0:
            self._position += newline + 1
            return left[: newline + 1]
        self._position += limit
        line = left[:limit]
        if self._exhausted or (size is not None and 0 <= size <= limit):
            return line
        if size is None or size < 0:
            return line + self._rest.readline()
        return line + self._rest.readline(size - limit)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class _RecordedIterable:
    """The app's response iterable, chunk for chunk; ``close()`` is forwarded (and then, or at
    its end, the capture goes to the recorder)."""

    def __init__(self, result: Iterable[bytes], capture: Capture, recorder: Recorder) -> None:
        self._result = result
        self._capture = capture
        self._recorder = recorder
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> _RecordedIterable:
        if self._iterator is None:
            self._iterator = iter(self._result)
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._result)
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._recorder.submit(self._capture)
            raise
        except BaseException as exc:
            if not self._capture.submitted:
                self._capture.app_raised(exc)
            self._recorder.submit(self._capture)
            raise
        _piece(self._recorder, self._capture, chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._recorder.submit(self._capture)


def _piece(recorder: Recorder, capture: Capture, chunk: bytes) -> None:
    """Note one chunk of the response body (a second one makes it a stream: recorded now)."""
    if capture.submitted:
        return
    try:
        if capture.response_piece(chunk):
            recorder.submit(capture)
    except Exception as exc:
        recorder.fail(exc, capture)
