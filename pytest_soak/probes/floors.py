"""Memory *floors*: each metric's lowest reading at a checkpoint, while nothing is in flight
and (in process) garbage has been collected; stored in arrays allocated before the load."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import math
import sys
import time
from array import array
from collections.abc import Callable, Sequence


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

    def last(self, name: str) -> float | None:
        """The latest floor of ``name`` (None before the first, or if it was not read)."""
        column = self._columns.get(name)
        if column is None or not self.size:
            return None
        value = column[self.size - 1]
        return None if math.isnan(value) else value

    def rows(self) -> list[dict[str, float]]:
        return [
            {name: col[i] for name, col in self._columns.items() if not math.isnan(col[i])}
            for i in range(self.size)
        ]
