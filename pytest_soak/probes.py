"""Memory probes: psutil RSS/USS of a process tree, the in-process Python heap (tracemalloc,
allocated blocks, gc counts), memory *floors* taken while nothing is in flight, allocation
sites from tracemalloc snapshots, and a sampler thread whose memory is bounded.
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import fnmatch
import functools
import gc
import linecache
import math
import os
import sys
import sysconfig
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil

from pytest_soak.errors import DriverError

# Allocations whose innermost frame is in these files are the harness's, not the service's.
HARNESS_PATTERNS = (
    "*/pytest_soak/*",
    "*/httpx/*",
    "*/httpcore/*",
    "*/h11/*",
    "*/_pytest/*",
    "*/pluggy/*",
    "*/psutil/*",
    "*/scipy/*",
    "*/numpy/*",
    "*/tracemalloc.py",
)
# Allocations made while importing a module (the import system, setuptools' import hook) are
# one-off costs of code being loaded, never the service's retained growth.
IMPORT_PATTERNS = (
    "<frozen importlib.*",
    "<frozen zipimport>",
    "*/importlib/*",
    "*/_distutils_hack/*",
    "*/pkgutil.py",
)
_STDLIB_DIRS = tuple(
    {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
)


class ProcessTree:
    """RSS (and optionally USS) summed over a set of processes and all their children."""

    def __init__(self, pids: Sequence[int], *, children: bool = True) -> None:
        self._roots = []
        for pid in pids:
            try:
                self._roots.append(psutil.Process(pid))
            except psutil.Error as exc:
                raise DriverError(
                    f"pid={pid}: cannot watch that process ({type(exc).__name__}); pass the pid "
                    "of the running service (e.g. from its pid file or `pgrep -f`)"
                ) from exc
        self._children = children
        self._members: list[psutil.Process] = list(self._roots)
        self._refreshed = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if not self._children or now - self._refreshed < 1.0:
            return
        members: dict[int, psutil.Process] = {}
        for root in self._roots:
            try:
                members[root.pid] = root
                for child in root.children(recursive=True):
                    members.setdefault(child.pid, child)
            except psutil.Error:
                continue
        self._members = list(members.values())
        self._refreshed = now

    def read(self, *, uss: bool = False) -> dict[str, float]:
        self._refresh()
        rss = 0.0
        unique = 0.0
        for proc in self._members:
            try:
                if uss:
                    info = proc.memory_full_info()
                    unique += info.uss
                    rss += info.rss
                else:
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue  # a child that exited between listing and reading
        result = {"rss": rss}
        if uss:
            result["uss"] = unique
        return result


class PythonHeap:
    """The Python heap of this process: tracemalloc's traced size, allocated blocks, gc counts."""

    def __init__(self, frames: int = 25, service_dirs: Sequence[str] = ()) -> None:
        self.frames = frames
        self._owned = False
        self.service_dirs = tuple(os.path.realpath(d) for d in service_dirs)

    def start(self) -> None:
        if self.frames > 0 and not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
            self._owned = True

    def stop(self) -> None:
        if self._owned:
            tracemalloc.stop()
            self._owned = False

    def restart(self, frames: int) -> None:
        """Trace afresh with ``frames`` frames (only when we own tracing: a user's own
        tracemalloc session is never reset)."""
        if self._owned:
            tracemalloc.stop()
            tracemalloc.start(frames)

    def read(self) -> dict[str, float]:
        gen0, _gen1, gen2 = gc.get_count()
        result = {"blocks": float(sys.getallocatedblocks()), "gc0": float(gen0), "gc2": float(gen2)}
        if tracemalloc.is_tracing():
            result["heap"] = float(tracemalloc.get_traced_memory()[0])
        return result

    def sites(self) -> tuple[dict[Site, int], int]:
        """Bytes held now per allocation site of the service, and the bytes the harness holds.

        Grouping is tracemalloc's own (``statistics``, in C); each group is then classified by
        its frames, innermost first: standard-library frames are skipped, the first other frame
        decides — the harness's (dropped, counted as harness) or the service's (the site).
        """
        if not tracemalloc.is_tracing():
            return {}, 0
        sizes: dict[Site, int] = {}
        harness = 0
        for stat in tracemalloc.take_snapshot().statistics("traceback"):
            site = _site_of(stat.traceback, self.service_dirs)
            if site is None:
                harness += stat.size
            else:
                sizes[site] = sizes.get(site, 0) + stat.size
        return sizes, harness


@dataclass(frozen=True, slots=True)
class Site:
    """Where memory was allocated: the innermost frame in the service's own code."""

    filename: str
    lineno: int
    function: str
    line: str

    def __str__(self) -> str:
        where = f"{_short_path(self.filename)}:{self.lineno}"
        if self.function:
            where += f" in {self.function}"
        return f"{where}: {self.line}" if self.line else where


def _site_of(traceback: tracemalloc.Traceback, service_dirs: tuple[str, ...] = ()) -> Site | None:
    """The service's site of an allocation, or None when the harness made it."""
    if any(_frame_kind(frame.filename) == "import" for frame in traceback):
        return None  # code being loaded: a one-off, counted with the harness
    library: tracemalloc.Frame | None = None
    for frame in reversed(traceback):  # innermost first
        kind = _frame_kind(frame.filename)
        if kind == "library" and service_dirs and _under(frame.filename, service_dirs):
            kind = "service"  # the app's own package, pip-installed
        if kind == "stdlib":
            continue
        if kind == "harness":
            return None if library is None else _site(library.filename, library.lineno)
        if kind == "library":
            library = library or frame  # a framework's frame: look further out for user code
            continue
        return _site(frame.filename, frame.lineno)
    chosen = library or traceback[-1]
    return _site(chosen.filename, chosen.lineno)


@functools.lru_cache(maxsize=4096)
def _site(filename: str, lineno: int) -> Site:
    return Site(
        filename,
        lineno,
        _enclosing_function(filename, lineno),
        linecache.getline(filename, lineno).strip(),
    )


@functools.lru_cache(maxsize=256)
def _functions_of(filename: str) -> tuple[tuple[int, int, str], ...]:
    try:
        with open(filename, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=filename)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ()
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            name = getattr(node, "name", "<lambda>")
            spans.append((node.lineno, node.end_lineno or node.lineno, name))
    return tuple(spans)


def _enclosing_function(filename: str, lineno: int) -> str:
    best = ""
    best_width = sys.maxsize
    for start, end, name in _functions_of(filename):
        if start <= lineno <= end and end - start < best_width:
            best, best_width = name, end - start
    return best


@functools.lru_cache(maxsize=4096)
def _under(filename: str, dirs: tuple[str, ...]) -> bool:
    real = os.path.realpath(filename)
    return any(real == d or real.startswith(d + os.sep) for d in dirs)


@functools.lru_cache(maxsize=4096)
def _frame_kind(filename: str) -> str:
    """``import`` (the import system), ``harness`` (pytest-soak, its HTTP client, pytest),
    ``stdlib``, ``library`` (other
    installed packages: the service's frameworks) or ``service`` (the user's own code)."""
    if any(fnmatch.fnmatchcase(filename, pattern) for pattern in IMPORT_PATTERNS):
        return "import"
    if any(fnmatch.fnmatchcase(filename, pattern) for pattern in HARNESS_PATTERNS):
        return "harness"
    if filename.startswith("<"):
        return "stdlib"
    real = os.path.realpath(filename)
    if "site-packages" in real or "dist-packages" in real:
        return "library"
    if any(real.startswith(d + os.sep) for d in _STDLIB_DIRS):
        return "stdlib"
    return "service"


def _short_path(filename: str) -> str:
    """A site's file as a reader knows it: relative to the working folder, or from the package
    for installed code (``starlette/routing.py``)."""
    for marker in ("site-packages", "dist-packages"):
        _, found, rest = filename.rpartition(os.sep + marker + os.sep)
        if found:
            return rest
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def settle_in_process() -> None:
    """Collect garbage (three passes: finalizers can free more) and give freed heap back to the
    OS where glibc allows, so a floor reads what is really retained."""
    for _ in range(3):
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def read_floor(
    reads: Sequence[Callable[[], dict[str, float]]], *, repeat: int = 3, pause: float = 0.01
) -> dict[str, float]:
    """The minimum of each metric over ``repeat`` reads: one stray allocation does not count."""
    floor: dict[str, float] = {}
    for attempt in range(repeat):
        if attempt:
            time.sleep(pause)
        for read in reads:
            for name, value in read().items():
                floor[name] = min(value, floor.get(name, value))
    return floor


class FloorTable:
    """Floors per checkpoint in arrays allocated before the load: storing one allocates
    nothing, so in process the harness's records never read as the service's growth."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._columns: dict[str, array[float]] = {}
        self.size = 0

    def store(self, values: dict[str, float]) -> None:
        if not self._columns:  # the first floor is taken before any load is sent
            self._columns = {name: array("d", bytes(8 * self.capacity)) for name in values}
        if self.size >= self.capacity:
            for column in self._columns.values():
                column.append(math.nan)
        for name, column in self._columns.items():
            column[self.size] = values.get(name, math.nan)
        self.size += 1

    def rows(self) -> list[dict[str, float]]:
        return [
            {name: col[i] for name, col in self._columns.items() if not math.isnan(col[i])}
            for i in range(self.size)
        ]


@dataclass
class PhaseExtremes:
    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)

    def add(self, values: dict[str, float]) -> None:
        if not self.start:
            self.start = dict(values)
        self.end = dict(values)
        for name, value in values.items():
            self.low[name] = min(value, self.low.get(name, value))
            self.high[name] = max(value, self.high.get(name, value))


class SampleSeries:
    """Samples ``(t, metrics)`` for charts in arrays allocated once, at most ``capacity``: when
    full, every other sample is dropped and the stride doubles. Hours of sampling cost the same
    memory as a minute, and none of it is allocated while the service is being measured."""

    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._columns: dict[str, array[float]] = {}
        self._size = 0
        self._stride = 1
        self._skipped = 0

    def add(self, t: float, values: dict[str, float]) -> None:
        self._skipped += 1
        if self._skipped < self._stride:
            return
        self._skipped = 0
        if not self._columns:
            self._columns = {name: array("d", bytes(8 * self.capacity)) for name in values}
        index = self._size
        self._times[index] = t
        for name, column in self._columns.items():
            column[index] = values.get(name, math.nan)
        self._size += 1
        if self._size == self.capacity:
            half = self.capacity // 2
            for column in (self._times, *self._columns.values()):
                column[:half] = column[0 : self.capacity : 2]
            self._size = half
            self._stride *= 2

    @property
    def points(self) -> list[tuple[float, dict[str, float]]]:
        return [
            (
                self._times[i],
                {name: col[i] for name, col in self._columns.items() if not math.isnan(col[i])},
            )
            for i in range(self._size)
        ]


class Sampler:
    """Reads cheap metrics at a steady interval in a daemon thread, per phase."""

    def __init__(
        self,
        read: Callable[[], dict[str, float]],
        phase: Callable[[], int],
        interval: float,
        capacity: int = 2048,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        self._paused = paused
        self._read = read
        self._phase = phase
        self.interval = interval
        self.series = SampleSeries(capacity)
        self.phases: dict[int, PhaseExtremes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)
        self._t0 = 0.0
        self.errors = 0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def sample(self) -> None:
        try:
            values = self._read()
        except (psutil.Error, OSError):
            self.errors += 1
            return
        self.series.add(time.monotonic() - self._t0, values)
        phase = self._phase()
        extremes = self.phases.get(phase)
        if extremes is None:  # not setdefault: that would build one on every sample
            extremes = self.phases[phase] = PhaseExtremes()
        extremes.add(values)

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            if not self._paused():  # checkpoints read floors: keep out of their way
                self.sample()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
