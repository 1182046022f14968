"""``ProbeSession``: the probes of one run, composed from the registry — those that measure
where the service runs, then the test suite's own — read as one: a sample, a floor.

In process that is the Python heap (judged) and this process's RSS (secondary: it includes the
harness); for a served service the agent's heap inside a Python service (judged, when an agent
answers), and the USS (judged) and RSS (secondary) of its process tree. At a checkpoint every
probe settles first, then all are read. The harness's own RSS is taken at the start and end of
the run, beside the probes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from pytest_soak.probes.callables import as_probe
from pytest_soak.probes.floors import read_floor
from pytest_soak.probes.metrics import Metric
from pytest_soak.probes.probe import Probe, ProbeUnavailable, Service, SiteSource
from pytest_soak.probes.process import own_rss
from pytest_soak.probes.registry import PROBES, ProbeRegistry, check_probe, check_unique

#: How a note about a probe that could not measure the run begins (the terminal summary shows
#: those notes even on a pass).
PROBE_NOTE = "probe "


class ProbeSession:
    """The probes of one run of ``service``: the registered ones that apply, then ``extra``
    (``probes=`` of the marker or ``soak.run``, then the ``pytest_soak_probes`` hook's; a plain
    function is a one-metric probe) that apply. Raises ``ProbeError`` when one is not a
    probe, or two share a name or a metric."""

    def __init__(
        self, service: Service, extra: Sequence[object] = (), registry: ProbeRegistry = PROBES
    ) -> None:
        added = [check_probe(as_probe(probe), "probes=") for probe in extra]
        self.service = service
        self.probes: list[Probe] = [
            *registry.probes_for(service),
            *(probe for probe in added if service.where in probe.where),
        ]
        check_unique(self.probes)
        self.harness: dict[str, float] = {}
        #: What the run should say about its probes (one that could not measure, and why).
        self.notes: list[str] = []
        self._started: list[Probe] = []
        #: A probe with a sample gap: when it was last sampled, and what it read.
        self._sampled: dict[int, tuple[float, dict[str, float]]] = {}
        self._tables()

    def _tables(self) -> None:
        #: Metrics whose leak fails the test, in probe order (the first is the one sampled
        #: for the phase table and charts).
        self.judged_metrics: list[str] = []
        #: Metrics judged at most suspicious, each with why it does not decide.
        self.secondary_metrics: dict[str, str] = {}
        #: Every metric read, by name: its label, unit and noise for the verdict.
        self.metric_table: dict[str, Metric] = {}
        for probe in self.probes:
            for metric in probe.metrics:
                self.metric_table[metric.name] = metric
                if metric.name in probe.judged:
                    self.judged_metrics.append(metric.name)
                elif metric.name not in probe.recorded:
                    self.secondary_metrics[metric.name] = probe.secondary_reason
        first = self.probes[0].metrics[0].name if self.probes else ""
        self.sample_metric = self.judged_metrics[0] if self.judged_metrics else first

    def attribution(self) -> SiteSource | None:
        """Where the attribution pass reads allocation sites (once started): the first probe
        that has them (the in-process heap, or the agent inside a served Python service)."""
        for probe in self._started:
            source = probe.attribution()
            if source is not None:
                return source
        return None

    def start(self) -> None:
        """Start every probe; one that cannot measure this run (``ProbeUnavailable``) is left
        out, and what it said becomes a note."""
        for probe in list(self.probes):
            try:
                probe.start(self.service)
            except ProbeUnavailable as why:
                self.probes.remove(probe)
                if not why.quiet:
                    self.notes.append(f"{PROBE_NOTE}{probe.name!r}: {why}")
                continue
            except BaseException:
                self.stop()
                raise
            self._started.append(probe)
        self._tables()
        self.harness["rss_start"] = own_rss()

    def stop(self) -> None:
        self.harness["rss_end"] = own_rss()
        while self._started:
            self._started.pop().stop()

    def sample(self) -> dict[str, float]:
        """What the sampler reads: the judged metric too, so the phase table and the charts
        show the figure the verdict used (USS out of process, the heap in process). A probe
        with a ``sample_gap`` is read at most that often; its last figures stand between."""
        values: dict[str, float] = {}
        now = time.monotonic()
        for index, probe in enumerate(self.probes):
            gap = probe.sample_gap
            if gap > 0:
                read_at, last = self._sampled.get(index, (-math.inf, {}))
                if now - read_at < gap:
                    values.update(last)
                    continue
                last = probe.read()
                self._sampled[index] = (now, last)
                values.update(last)
            else:
                values.update(probe.read())
        return values

    def floor(self) -> dict[str, float]:
        """Each metric's lowest of a few reads, nothing in flight, once every probe settled
        (in process and in a served service's agent: garbage collected, allocator trimmed)."""
        if not self.probes:
            return {}
        for probe in self.probes:
            probe.settle()
        return read_floor([probe.read for probe in self.probes])
