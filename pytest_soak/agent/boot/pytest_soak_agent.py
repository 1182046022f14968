"""pytest-soak's agent: runs inside a served Python service (one per interpreter; after a
fork, a fresh one in the child), loaded by the ``sitecustomize`` next to it. Standard library
only: the service's environment need not have pytest-soak installed.

It connects to the harness at ``PYTEST_SOAK_AGENT`` (``127.0.0.1:PORT:TOKEN``, loopback only),
says hello with the token, and answers one-line JSON commands on a daemon thread:

- ``read``: the Python heap (bytes in pymalloc's allocated blocks), malloc's in-use bytes
  (glibc ``mallinfo2``), allocated blocks, gc counts, and the agent's own bytes;
- ``settle``: ``gc.collect()`` and ``malloc_trim(0)`` (a checkpoint: nothing in flight);
- ``trace``: trace with N frames (0: stop) for the attribution pass: memray when the
  service's environment has it (native allocations included), else tracemalloc;
- ``mark``, ``marked``: a snapshot point after each replayed cycle; the memory held at each
  mark, grouped by traceback, largest first.

Any failure is answered as an error or, at worst, ends the agent; the service never sees it.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any

ENV = "PYTEST_SOAK_AGENT"
#: Traceback groups sent for one mark (the largest).
MAX_GROUPS = 400

_started_in: list[int] = []


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


class _Libc:
    """glibc's allocator statistics and trim; absent elsewhere (then malloc reads 0)."""

    def __init__(self) -> None:
        self.libc: Any = None
        self.stderr: Any = None
        self.mallinfo2: Any = None
        self.stats_fd = -1
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.fdopen.restype = ctypes.c_void_p
            libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
            libc.fflush.argtypes = [ctypes.c_void_p]
            libc.fclose.argtypes = [ctypes.c_void_p]
            self.stderr = ctypes.c_void_p.in_dll(libc, "stderr")
            self.libc = libc
        except (OSError, AttributeError, ValueError):
            return
        try:
            libc.mallinfo2.restype = _MallInfo2
            self.mallinfo2 = libc.mallinfo2
        except AttributeError:  # glibc < 2.33
            self.mallinfo2 = None

    def malloc_in_use(self) -> int:
        if self.mallinfo2 is None:
            return 0
        info = self.mallinfo2()
        return int(info.uordblks + info.hblkhd)

    def trim(self) -> None:
        if self.libc is not None:
            self.libc.malloc_trim(0)

    def pymalloc_stats(self) -> bytes:
        """What ``sys._debugmallocstats()`` writes to C's ``stderr``, caught by pointing C's
        ``stderr`` at a file for the call (Python's own ``sys.stderr`` is not touched). The
        file is made once, unlinked at once, and rewritten in place: a read keeps nothing."""
        if self.libc is None or not hasattr(sys, "_debugmallocstats"):
            return b""
        if self.stats_fd < 0:
            fd, path = tempfile.mkstemp(prefix="pytest-soak-agent-")
            os.unlink(path)
            self.stats_fd = fd
        fd = self.stats_fd
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        handle = self.libc.fdopen(os.dup(fd), b"w")
        if not handle:
            return b""
        saved = self.stderr.value
        self.stderr.value = handle
        try:
            sys._debugmallocstats()
        finally:
            self.libc.fflush(handle)
            self.stderr.value = saved
            self.libc.fclose(handle)
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)


_ALLOCATED = re.compile(rb"# bytes in allocated blocks\s*=\s*([\d,]+)")


class Agent:
    """One connection to the harness, answered on a daemon thread."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.address = (host, port)
        self.token = token
        self.libc = _Libc()
        self.sock: socket.socket | None = None
        self.trace: PythonTrace | NativeTrace | None = None
        #: The commands, made once: a lookup by a fresh string each time kept memory (3.11).
        self.commands = {
            "read": self.do_read,
            "settle": self.do_settle,
            "trace": self.do_trace,
            "mark": self.do_mark,
            "marked": self.do_marked,
        }

    def run(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError:
            return  # no harness: the service runs on untouched
        sock.settimeout(None)
        self.sock = sock
        try:
            self._send({"hello": self.token, "pid": os.getpid()})
            reader = sock.makefile("r", encoding="utf-8")
            for line in reader:
                self._answer(line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.sendall((json.dumps(message, separators=(",", ":")) + "\n").encode())

    def _answer(self, line: str) -> None:
        request = json.loads(line)
        command = self.commands.get(request.get("do"))
        try:
            if command is None:
                raise ValueError(f"unknown command {request.get('do')!r}")
            answer = command(request.get("args") or {})
        except Exception as exc:  # a failed command is answered, the agent goes on
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answer["id"] = request.get("id")
        self._send(answer)

    def _pymalloc(self) -> int:
        match = _ALLOCATED.search(self.libc.pymalloc_stats())
        return int(match.group(1).replace(b",", b"")) if match else 0

    def do_read(self, args: dict[str, Any]) -> dict[str, Any]:
        gen0, _gen1, gen2 = gc.get_count()
        own = tracemalloc.get_tracemalloc_memory() if tracemalloc.is_tracing() else 0
        return {
            "pymalloc": self._pymalloc(),
            "malloc": self.libc.malloc_in_use(),
            "blocks": sys.getallocatedblocks(),
            "gc0": gen0,
            "gc2": gen2,
            "own": own,
        }

    def do_settle(self, args: dict[str, Any]) -> dict[str, Any]:
        for _ in range(3):
            gc.collect()
        self.libc.trim()
        return {}

    def do_trace(self, args: dict[str, Any]) -> dict[str, Any]:
        """Trace afresh with ``frames`` frames (0: stop): memray when the service's environment
        has it (every allocation, native ones included: malloc inside a C extension is
        attributed to the Python line that called it), else tracemalloc (Python's allocators
        only)."""
        frames = int(args.get("frames", 0))
        if self.trace is not None:
            self.trace.stop()
            self.trace = None
        if frames <= 0:
            return {"traced": False}
        if tracemalloc.is_tracing():
            return {"traced": False}  # the service traces memory itself: left alone
        try:
            self.trace = NativeTrace(frames)
        except Exception:  # no memray here (or it failed): tracemalloc instead
            self.trace = PythonTrace(frames)
            return {"traced": True, "engine": "tracemalloc"}
        return {"traced": True, "engine": "memray"}

    def do_mark(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.trace is not None:
            self.trace.mark()
        return {}

    def do_marked(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"marks": self.trace.marked() if self.trace is not None else []}


def _ranked(totals: dict[tuple[tuple[str, int], ...], int]) -> list[list[Any]]:
    """The largest ``MAX_GROUPS`` tracebacks (frames oldest first), each with its bytes."""
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [[size, [list(frame) for frame in key]] for key, size in ranked[:MAX_GROUPS] if key]


class PythonTrace:
    """tracemalloc for the attribution pass: a snapshot grouped by traceback at each mark."""

    def __init__(self, frames: int) -> None:
        tracemalloc.start(frames)
        self.marks: list[list[list[Any]]] = []

    def mark(self) -> None:
        totals: dict[tuple[tuple[str, int], ...], int] = {}
        for stat in tracemalloc.take_snapshot().statistics("traceback"):
            key = tuple((frame.filename, frame.lineno) for frame in stat.traceback)
            totals[key] = totals.get(key, 0) + stat.size
        self.marks.append(_ranked(totals))

    def marked(self) -> list[list[list[Any]]]:
        return self.marks

    def stop(self) -> None:
        tracemalloc.stop()
        self.marks = []


class NativeTrace:
    """memray for the attribution pass: one tracker over the whole pass (every allocator:
    pymalloc, malloc, mmap, each allocation counted once, with the Python stack that made it);
    a mark notes the time, and at the end what was live at each mark is read back from
    memray's temporal records (allocated before the mark, not freed before it)."""

    #: memray's snapshot interval; a mark waits this much twice over on each side, so the
    #: snapshot it falls between sees nothing in flight.
    INTERVAL_MS = 10

    def __init__(self, frames: int) -> None:
        import memray

        self.memray: Any = memray
        self.frames = frames
        self.folder = tempfile.mkdtemp(prefix="pytest-soak-memray-")
        self.path = os.path.join(self.folder, "attribution.bin")
        self.times: list[float] = []
        self.tracker: Any = memray.Tracker(
            self.path, trace_python_allocators=True, memory_interval_ms=self.INTERVAL_MS
        )
        self.tracker.__enter__()

    def mark(self) -> None:
        pause = 2 * self.INTERVAL_MS / 1000
        time.sleep(pause)
        self.times.append(time.time() * 1000)
        time.sleep(pause)

    def _close(self) -> None:
        if self.tracker is not None:
            tracker, self.tracker = self.tracker, None
            tracker.__exit__(None, None, None)

    def marked(self) -> list[list[list[Any]]]:
        self._close()
        reader = self.memray.FileReader(self.path)
        try:
            snapshots = [snapshot.time for snapshot in reader.get_memory_snapshots()]
            # the index of the first memray snapshot at or after each mark
            at = [bisect.bisect_left(snapshots, when) for when in self.times]
            totals: list[dict[tuple[tuple[str, int], ...], int]] = [{} for _ in at]
            for record in reader.get_temporal_allocation_records(merge_threads=True):
                stack = record.stack_trace(max_stacks=self.frames)  # innermost first
                key = tuple((filename, lineno) for _function, filename, lineno in reversed(stack))
                for interval in record.intervals:
                    born, gone = (
                        interval.allocated_before_snapshot,
                        interval.deallocated_before_snapshot,
                    )
                    for index, snapshot in enumerate(at):
                        if born <= snapshot and (gone is None or gone > snapshot):
                            held = totals[index]
                            held[key] = held.get(key, 0) + int(interval.n_bytes)
        finally:
            reader.close()
        return [_ranked(held) for held in totals]

    def stop(self) -> None:
        self._close()
        for name in os.listdir(self.folder):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.folder, name))
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)


def _launch() -> None:
    setting = os.environ.get(ENV, "")
    host, _, rest = setting.partition(":")
    port, _, token = rest.partition(":")
    if host not in ("127.0.0.1", "::1", "localhost") or not port.isdigit() or not token:
        return
    if os.getpid() in _started_in:
        return  # one agent per interpreter
    _started_in.append(os.getpid())
    agent = Agent(host, int(port), token)
    thread = threading.Thread(target=agent.run, name="pytest-soak-agent", daemon=True)
    thread.start()


def _after_fork() -> None:
    """A forked child (gunicorn's workers) has no agent thread: it gets its own."""
    with contextlib.suppress(Exception):
        _launch()


def start() -> None:
    """Start this interpreter's agent (once), and one in every child forked from it."""
    if os.environ.get(ENV) and not _started_in:
        os.register_at_fork(after_in_child=_after_fork)
    _launch()
