"""The recorder: which requests to keep, a bounded queue, and one writer thread that redacts,
formats and writes them, with size-based rotation.

The request path only samples, copies what it saw into a ``Capture`` and appends it to a
bounded queue (a ``deque`` and a length check: no lock, no wake-up): a full queue drops the
capture and counts it, so a slow disk never blocks a request. A dedicated daemon thread wakes
every ``flush_interval`` seconds, takes everything queued, turns each capture into a redacted
JSON line, writes the lines and flushes. A thread of our own rather than the event loop's
executor: the same writer serves the ASGI and the WSGI middleware (and any number of event
loops), it costs no future and no callback per record, and it neither waits behind the app's
own ``run_in_executor`` work nor holds up that work while a disk is slow. Waking on a timer
rather than per record keeps thread switches (and GIL hand-overs) to a few a second.

Memory held is bounded by ``queue_size`` captures (plus the one being written; a WSGI server's
threads may overshoot by one each) of at most ``2 * max_body`` bytes of body each, plus
headers: nothing grows per request but counters.
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_soak.errors import SoakError
from pytest_soak.record.capture import Body, Capture, RawHeaders
from pytest_soak.record.lines import record_line
from pytest_soak.record.rotation import RotatingFile
from pytest_soak.record.sampling import Sampler
from pytest_soak.traffic.redaction import DEFAULT_REDACTION, Redaction
from pytest_soak.units import parse_size

#: The writer works for at most this many seconds at a time, then sleeps for ``PAUSE``: a
#: thread that keeps the GIL holds it for the interpreter's whole switch interval (5 ms) each
#: time the event loop lets go of it for I/O, which would add milliseconds to requests.
SLICE = 0.001
PAUSE = 0.001


@dataclass(frozen=True)
class RecorderStats:
    """Counts since the recorder started.

    ``seen``: HTTP requests that reached the middleware; ``sampled``: of those, chosen for
    recording; ``written``: lines written to the file(s); ``dropped``: sampled requests not
    written because the queue was full (or the recorder was closed); ``failed``: requests not
    recorded because of an error inside the recorder (the request itself went on).
    """

    seen: int
    sampled: int
    written: int
    dropped: int
    failed: int
    bytes_written: int
    rotations: int
    last_error: str | None


class Recorder:
    """Samples requests into native JSON Lines at ``path`` (see docs/recording.md).

    ``path`` may contain ``{pid}`` (replaced by the process id when the first line is written):
    give each worker process its own file. Sizes take bytes or strings such as ``"64KiB"``.
    ``close()`` flushes and closes the file; the middleware calls it on ASGI lifespan
    shutdown, and ``atexit`` does as a fallback.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: float = 1.0,
        seed: int | None = None,
        include: str | Iterable[str] = (),
        exclude: str | Iterable[str] = (),
        redaction: Redaction = DEFAULT_REDACTION,
        max_body: int | str = "64KiB",
        queue_size: int = 1000,
        max_bytes: int | str = "100MiB",
        backups: int = 5,
        flush_interval: float = 0.1,
        close_timeout: float = 5.0,
    ) -> None:
        self.sampler = Sampler(sample_rate, seed=seed, include=include, exclude=exclude)
        if not isinstance(redaction, Redaction):
            raise SoakError(
                f"redaction={redaction!r} is not a Redaction; build one with "
                "Redaction.of(headers=[...], cookies=[...], query=[...], fields=[...])"
            )
        self.redaction = redaction
        self.max_body = int(parse_size(max_body, name="max_body"))
        self.max_bytes = int(parse_size(max_bytes, name="max_bytes"))
        if self.max_bytes < 1024:
            raise SoakError(f"max_bytes={max_bytes!r} is too small; give at least '1KiB'")
        for name, value, least in (("queue_size", queue_size, 1), ("backups", backups, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SoakError(f"{name}={value!r} must be a whole number of at least {least}")
        self.queue_size = queue_size
        self.backups = backups
        if not 0.001 <= flush_interval <= 60:
            raise SoakError(f"flush_interval={flush_interval!r} must be from 0.001 to 60 seconds")
        self.flush_interval = flush_interval
        self.close_timeout = close_timeout
        self._path_template = os.fspath(path)
        self._file: RotatingFile | None = None
        self._queue: collections.deque[Capture] = collections.deque()
        self._wake = threading.Event()  # set by close(): the writer drains now and stops
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._started = time.monotonic()
        self._wall = time.time()
        self._seen = self._sampled = self._written = self._dropped = self._failed = 0
        self._bytes = 0
        self._last_error: str | None = None
        # What the file has not been told yet: (count, offset of the last one).
        self._unnoted_drops = (0, 0.0)
        self._unnoted_failures = (0, 0.0)

    # --- the request path (any thread) ----------------------------------------------------

    def offset(self) -> float:
        """Seconds since the recorder started."""
        return time.monotonic() - self._started

    def begin(self, method: str, path: str) -> float | None:
        """Count a request; its offset when it is to be recorded, else ``None``."""
        try:
            wanted = not self._closed and self.sampler.wants(method, path)
        except Exception as exc:  # a recorder error must never reach the request
            self.fail(exc)
            wanted = False
        with self._lock:
            self._seen += 1
            if wanted:
                self._sampled += 1
        return self.offset() if wanted else None

    def capture(self, offset: float, method: str, target: str, headers: RawHeaders) -> Capture:
        """A new capture for a request ``begin`` chose."""
        return Capture(offset, method, target, headers, Body(self.max_body), Body(self.max_body))

    def submit(self, capture: Capture) -> None:
        """Hand a finished capture to the writer; drops it (counted) when the queue is full.
        Never blocks, never raises. Only the first call for a capture counts."""
        if capture.submitted:
            return
        capture.submitted = True
        try:
            if self._thread is None:
                self._start()
            if not self._closed and len(self._queue) < self.queue_size:
                self._queue.append(capture)
                return
            with self._lock:
                self._dropped += 1
                self._unnoted_drops = (self._unnoted_drops[0] + 1, self.offset())
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: BaseException, capture: Capture | None = None) -> None:
        """Count an error inside the recorder; ``capture`` (if any) is given up."""
        if capture is not None:
            capture.submitted = True
        with self._lock:
            self._failed += 1
            self._unnoted_failures = (self._unnoted_failures[0] + 1, self.offset())
            self._last_error = f"{type(exc).__name__}: {exc}"[:200]

    # --- state ------------------------------------------------------------------------------

    @property
    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                seen=self._seen,
                sampled=self._sampled,
                written=self._written,
                dropped=self._dropped,
                failed=self._failed,
                bytes_written=self._bytes,
                rotations=self._file.rotations if self._file else 0,
                last_error=self._last_error,
            )

    @property
    def path(self) -> Path:
        """The file being written (``{pid}`` filled in for this process)."""
        return Path(self._path_template.replace("{pid}", str(os.getpid())))

    def paths(self) -> list[Path]:
        """The files of this recording that exist, newest first (``traffic.jsonl``,
        ``traffic.1.jsonl``, ...)."""
        if self._file is None:
            return []
        return self._file.paths()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, note drops and errors, close the file. Idempotent; gives up
        after ``timeout`` (default ``close_timeout``) seconds if the disk does not take the
        lines (the writer is a daemon thread: it never holds the process up)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        atexit.unregister(self.close)
        if thread is None:
            return
        self._wake.set()
        thread.join(self.close_timeout if timeout is None else timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Recorder {self._path_template!r} sample_rate={self.sampler.rate} {state}>"

    # --- the writer thread ------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._file = RotatingFile(self.path, self.max_bytes, self.backups, self._header)
            thread = threading.Thread(target=self._run, name="pytest-soak-recorder", daemon=True)
            thread.start()
            self._thread = thread
        atexit.register(self.close)

    def _run(self) -> None:
        assert self._file is not None
        stop = False
        while not stop:
            stop = self._wake.wait(self.flush_interval)
            began = time.perf_counter()
            while True:
                try:
                    capture = self._queue.popleft()
                except IndexError:
                    break
                self._record(capture)
                if not stop and time.perf_counter() - began > SLICE:
                    time.sleep(PAUSE)  # let the app's threads have the GIL
                    began = time.perf_counter()
            self._write_notes()
            if stop:
                self._write(self._closing_note(), line=False)
            try:
                if stop:
                    self._file.close()
                else:
                    self._file.flush()
            except Exception as exc:
                self.fail(exc)

    def _record(self, capture: Capture) -> None:
        try:
            line = record_line(capture, self.redaction)
        except Exception as exc:
            self.fail(exc)
            return
        self._write(line, line=True)

    def _write(self, text: str, *, line: bool) -> None:
        assert self._file is not None
        try:
            size = self._file.write(text, note=not line)
        except Exception as exc:
            if line:
                self.fail(exc)
            return
        with self._lock:
            self._bytes += size
            if line:
                self._written += 1

    def _write_notes(self) -> None:
        with self._lock:
            drops, drop_at = self._unnoted_drops
            failures, failed_at = self._unnoted_failures
            self._unnoted_drops = (0, 0.0)
            self._unnoted_failures = (0, 0.0)
            dropped, failed, error = self._dropped, self._failed, self._last_error
        if drops:
            self._write(
                f"# dropped {drops} record{'s' * (drops != 1)} (queue full, "
                f"queue_size={self.queue_size}) up to offset {drop_at:.3f} "
                f"({self._when(drop_at)}); {dropped} in all\n",
                line=False,
            )
        if failures:
            self._write(
                f"# {failures} record{'s' * (failures != 1)} lost to recorder errors up to "
                f"offset {failed_at:.3f} ({self._when(failed_at)}); {failed} in all; last: "
                f"{_one_line(error or '')}\n",
                line=False,
            )

    def _closing_note(self) -> str:
        offset = self.offset()
        with self._lock:
            return (
                f"# closed at offset {offset:.3f} ({self._when(offset)}): {self._seen} requests "
                f"seen, {self._sampled} sampled, {self._written} written, {self._dropped} "
                f"dropped (queue full), {self._failed} lost to recorder errors\n"
            )

    def _header(self) -> str:
        offset = self.offset()
        return (
            f"# pytest_soak.record: recording started {self._when(0.0)}, offsets are seconds "
            f"since then; this file from offset {offset:.3f}; sample_rate={self.sampler.rate}, "
            f"max_body={self.max_body}\n"
        )

    def _when(self, offset: float) -> str:
        moment = datetime.fromtimestamp(self._wall + offset, timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recorder_of(recorder: Recorder | str | os.PathLike[str], options: dict[str, Any]) -> Recorder:
    """The recorder a middleware was given, or a new one at that path with ``options``."""
    if isinstance(recorder, Recorder):
        if options:
            raise SoakError(
                f"{', '.join(sorted(options))}: options go to Recorder(...) when a Recorder is "
                "given; pass either a Recorder or a path with options"
            )
        return recorder
    return Recorder(recorder, **options)


def _one_line(text: str) -> str:
    return " ".join(text.split())
