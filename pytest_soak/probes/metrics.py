"""What a measured figure is: ``Metric`` (its label, unit and noise), and the built-in ones.

A probe names the metrics it reads (``Probe.metrics``); the leak rule judges a metric's floors
against its noise (``analysis.rule.judge_metric``), and the reports label and format it by its unit.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    """A figure a probe reads: its name (the key of its readings), label and unit, and the
    noise its floors carry.

    ``noise``: growth over the measured cycles below this is noise whatever the trend says
    (LEAK-RULE.md: RSS ≥ 1 MiB); ``step``: one cycle's growth at or below this is noise, so
    "grew in every cycle" needs more than that in each. A unit of ``"bytes"`` is shown in
    KiB/MiB; any other unit is shown as a number followed by it."""

    name: str
    label: str
    unit: str
    noise: float
    step: float


HEAP = Metric("heap", "Python heap (tracemalloc)", "bytes", 16 * KiB, KiB)
BLOCKS = Metric("blocks", "allocated blocks", "blocks", 1000, 20)
GC0 = Metric("gc0", "gc generation-0 count", "objects", 0.0, 0.0)
GC2 = Metric("gc2", "gc generation-2 count", "collections", 0.0, 0.0)
RSS = Metric("rss", "RSS", "bytes", MiB, 64 * KiB)
USS = Metric("uss", "USS", "bytes", MiB, 64 * KiB)
# Read by the agent inside a served Python service (probes/agent.py).
SERVICE_HEAP = Metric(
    "service_heap", "service heap (pymalloc + malloc, agent)", "bytes", 16 * KiB, KiB
)
PYMALLOC = Metric("pymalloc", "Python objects in pymalloc (agent)", "bytes", 16 * KiB, KiB)
MALLOC = Metric("malloc", "malloc in use (agent)", "bytes", 16 * KiB, KiB)
AGENT_OWN = Metric("agent_own", "the agent's own memory", "bytes", 0.0, 0.0)

#: The built-in metrics by name: the one table of their labels, units and noise.
METRICS: dict[str, Metric] = {
    m.name: m for m in (HEAP, BLOCKS, GC0, GC2, RSS, USS, SERVICE_HEAP, PYMALLOC, MALLOC, AGENT_OWN)
}


def metric_named(name: str) -> Metric:
    """The built-in metric ``name``; for any other name a bare one (its name for a label, no
    unit, no noise of its own: the leak rule then judges the noise from the floors alone)."""
    found = METRICS.get(name)
    return found if found is not None else Metric(name, name, "", 0.0, 0.0)
