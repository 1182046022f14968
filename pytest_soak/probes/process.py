"""Memory of processes as the OS counts it (psutil): RSS, and USS for a served service.

Out of process the USS of the service's process tree decides the verdict and its RSS is
secondary; in process RSS includes the harness, so it is only secondary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import psutil

from pytest_soak.errors import DriverError
from pytest_soak.probes.metrics import RSS, USS
from pytest_soak.probes.probe import IN_PROCESS, SERVED, Probe, Service


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


def own_rss() -> float:
    """RSS of this process (the harness's, in the JSON result)."""
    return float(psutil.Process(os.getpid()).memory_info().rss)


class _ProcessTreeProbe(Probe):
    """Memory of the service's processes as the OS counts it; subclasses say where, whether
    children count, and whether USS is read."""

    children = False
    uss = False

    def __init__(self) -> None:
        self.tree: ProcessTree | None = None

    def start(self, service: Service) -> None:
        self.tree = ProcessTree(service.pids, children=self.children)

    def read(self) -> dict[str, float]:
        assert self.tree is not None, "read() before start()"
        return self.tree.read(uss=self.uss)


class ServedProcessTreeProbe(_ProcessTreeProbe):
    """A served service: the USS of its processes and all their children (pages no other
    process shares) decides; their RSS is secondary."""

    name = "process-tree"
    where = frozenset({SERVED})
    metrics = (USS, RSS)
    judged = frozenset({"uss"})
    secondary_reason = "RSS counts pages shared with other processes; USS is judged"
    children = True
    uss = True


class InProcessRssProbe(_ProcessTreeProbe):
    """An in-process service: the RSS of this process, secondary (the harness shares it)."""

    name = "process-rss"
    where = frozenset({IN_PROCESS})
    metrics = (RSS,)
    secondary_reason = "in process, RSS includes the harness"
