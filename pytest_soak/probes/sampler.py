"""The sampler: a daemon thread reading the probes at a steady interval, into arrays whose
memory is bounded and allocated before the load, with each metric's extremes per phase."""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from pytest_soak.errors import ProbeError


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
        #: The latest reading (the live progress line shows it).
        self.latest: dict[str, float] = {}

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
        except (psutil.Error, OSError, ProbeError):  # a slow endpoint: the next sample
            self.errors += 1
            return
        self.series.add(time.monotonic() - self._t0, values)
        self.latest = values
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
