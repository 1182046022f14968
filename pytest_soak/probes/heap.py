"""The Python heap of this process (tracemalloc's traced size, allocated blocks, gc counts),
and the probe that judges it when the service runs in this process."""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
from collections.abc import Sequence

from pytest_soak.probes.floors import settle_in_process
from pytest_soak.probes.metrics import BLOCKS, GC0, GC2, HEAP
from pytest_soak.probes.probe import IN_PROCESS, Probe, Service, SiteSource
from pytest_soak.probes.sites import Site, site_of


class PythonHeap:
    """The Python heap of this process: tracemalloc's traced size, allocated blocks, gc counts."""

    def __init__(self, frames: int = 25, service_dirs: Sequence[str] = ()) -> None:
        self.frames = frames
        self.engine = ""  # tracemalloc in this process: the default, not worth saying
        self._owned = False
        self._marks: list[dict[Site, int]] = []
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
        tracemalloc session is never reset); the marks start afresh too."""
        self._marks = []
        if self._owned:
            tracemalloc.stop()
            tracemalloc.start(frames)

    def settle(self) -> None:
        settle_in_process()

    def read(self) -> dict[str, float]:
        gen0, _gen1, gen2 = gc.get_count()
        result = {"blocks": float(sys.getallocatedblocks()), "gc0": float(gen0), "gc2": float(gen2)}
        if tracemalloc.is_tracing():
            result["heap"] = float(tracemalloc.get_traced_memory()[0])
        return result

    def mark(self) -> None:
        self._marks.append(self.sites()[0])

    def marked(self) -> list[dict[Site, int]]:
        return list(self._marks)

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
            site = site_of(stat.traceback, self.service_dirs)
            if site is None:
                harness += stat.size
            else:
                sizes[site] = sizes.get(site, 0) + stat.size
        return sizes, harness


class PythonHeapProbe(Probe):
    """In process the traced Python heap decides the verdict: the harness keeps nothing in it
    across checkpoints (docs/architecture.md), so its growth is the service's. Allocated
    blocks and gc counts are recorded beside it."""

    name = "python-heap"
    where = frozenset({IN_PROCESS})
    metrics = (HEAP, BLOCKS, GC0, GC2)
    judged = frozenset({"heap"})
    recorded = frozenset({"blocks", "gc0", "gc2"})

    def __init__(self) -> None:
        self.heap: PythonHeap | None = None

    def start(self, service: Service) -> None:
        self.heap = PythonHeap(service.tracemalloc_frames, service_dirs=service.source_dirs)
        self.heap.start()

    def stop(self) -> None:
        if self.heap is not None:
            self.heap.stop()

    def settle(self) -> None:
        settle_in_process()

    def attribution(self) -> SiteSource | None:
        return self.heap

    def read(self) -> dict[str, float]:
        assert self.heap is not None, "read() before start()"
        return self.heap.read()
