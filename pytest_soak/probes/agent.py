"""The agent's probe: a served Python service measured from inside, through the agent that
``soak.serve`` loads into each of its interpreters (``pytest_soak/agent``).

At each checkpoint every agent collects garbage and trims the allocator (``settle``), so
delayed collection is not growth; then the heap in use is read: bytes in pymalloc's allocated
blocks plus malloc's in-use bytes (``mallinfo2``: objects over 512 B, and what C extensions
allocate), summed over the service's interpreters. That sum is judged, precise to a few KiB
where the process tree's USS is precise to pages and arenas. The agent's own bytes (tracemalloc's
during attribution) are reported apart and not counted.

A service with no Python process (Envoy, a Go binary) is left to the process metrics quietly;
a Python service whose agent does not answer is too, and the run says so.
"""

from __future__ import annotations

import psutil

from pytest_soak.agent import AgentHub
from pytest_soak.probes.metrics import (
    AGENT_OWN,
    BLOCKS,
    GC0,
    GC2,
    MALLOC,
    PYMALLOC,
    SERVICE_HEAP,
)
from pytest_soak.probes.probe import SERVED, Probe, ProbeUnavailable, Service, SiteSource
from pytest_soak.probes.sites import AgentFrame, Site, site_of

#: What traced the attribution pass inside the service: memray when the service's environment
#: has it, else tracemalloc.
ENGINES = {
    "memray": "memray (native allocations included)",
    "tracemalloc": "tracemalloc (Python allocations only: pip install memray for native ones)",
}
#: Between checkpoints (the sampler's reads, ten a second) the agents are asked at most this
#: often (``Probe.sample_gap``); a read costs the service two GIL hand-offs, and at 10 a second
#: that was 4 % of a loopback service's throughput (benchmarks/agent_cost.py).
SAMPLE_GAP = 0.5
#: How long the agents of a Python service have to connect once the run starts.
CONNECT_TIMEOUT = 5.0
#: A checkpoint's garbage collection (or a snapshot) on a big heap can take a while.
SETTLE_TIMEOUT = 30.0
SITES_TIMEOUT = 60.0


class AgentProbe(Probe):
    """The heap inside a served Python service (judged), its parts and gc counts (recorded)."""

    name = "python-agent"
    where = frozenset({SERVED})
    metrics = (SERVICE_HEAP, PYMALLOC, MALLOC, BLOCKS, GC0, GC2, AGENT_OWN)
    judged = frozenset({"service_heap"})
    recorded = frozenset({"pymalloc", "malloc", "blocks", "gc0", "gc2", "agent_own"})
    sample_gap = SAMPLE_GAP

    def __init__(self) -> None:
        self.hub: AgentHub | None = None

    def start(self, service: Service) -> None:
        hub = service.agent
        if hub is None:
            raise ProbeUnavailable(quiet=True)  # soak.url, or soak.serve(agent=False)
        pythons = python_processes(service.pids)
        if not pythons:
            raise ProbeUnavailable(quiet=True)  # not a Python service
        connected = hub.wait_for(pythons, CONNECT_TIMEOUT)
        if not connected:
            said = "; ".join(hub.problems[-3:])
            raise ProbeUnavailable(
                f"no agent answered from the service's Python processes (pids "
                f"{', '.join(map(str, sorted(pythons)))}) within {CONNECT_TIMEOUT:.0f}s"
                + (f" ({said})" if said else "")
                + ": judged on process metrics (USS) only. Is PYTHONPATH replaced by the "
                "service's command, or Python started with -S or -I? (soak.serve(agent=False) "
                "turns the agent off)"
            )
        self.hub = hub

    def read(self) -> dict[str, float]:
        """The agents' figures summed; nothing when one did not answer (a partial sum would
        read as a drop)."""
        assert self.hub is not None, "read() before start()"
        asked = len(self.hub.pids())
        answers = [a for a in self.hub.ask("read").values() if "error" not in a]
        if not answers or len(answers) < asked:
            return {}
        total: dict[str, float] = {}
        for answer in answers:
            for key in ("pymalloc", "malloc", "blocks", "gc0", "gc2", "own"):
                total[key] = total.get(key, 0.0) + float(answer.get(key, 0))
        own = total.pop("own")
        total["service_heap"] = total["pymalloc"] + total["malloc"] - own
        total["agent_own"] = own
        return total

    def settle(self) -> None:
        """A checkpoint: every agent collects garbage and trims malloc."""
        if self.hub is not None:
            self.hub.ask("settle", timeout=SETTLE_TIMEOUT)

    def attribution(self) -> SiteSource | None:
        return AgentSites(self.hub) if self.hub is not None else None


class AgentSites:
    """The attribution pass inside the service: each agent traces for the pass only (memray
    when the service's environment has it, else tracemalloc); the tracebacks it holds at each
    mark are classified here, like the in-process heap's."""

    frames = 0  # the measured run is not traced inside the service: it would cost throughput

    def __init__(self, hub: AgentHub) -> None:
        self.hub = hub
        self.engine = ""

    def restart(self, frames: int) -> None:
        answers = self.hub.ask("trace", timeout=SETTLE_TIMEOUT, frames=frames).values()
        engines = sorted({str(a["engine"]) for a in answers if a.get("engine")})
        if engines:
            self.engine = " and ".join(ENGINES.get(e, e) for e in engines) + " inside the service"

    def settle(self) -> None:
        self.hub.ask("settle", timeout=SETTLE_TIMEOUT)

    def mark(self) -> None:
        self.hub.ask("mark", timeout=SETTLE_TIMEOUT)

    def marked(self) -> list[dict[Site, int]]:
        """Each mark's sites, summed over the agents (a worker's marks line up with the
        others': every agent was asked at each mark)."""
        marks: list[dict[Site, int]] = []
        for answer in self.hub.ask("marked", timeout=SITES_TIMEOUT).values():
            for index, held in enumerate(answer.get("marks", [])):
                if index == len(marks):
                    marks.append({})
                for size, frames in held:
                    site = site_of([AgentFrame(str(f), int(n)) for f, n in frames])
                    if site is not None:
                        marks[index][site] = marks[index].get(site, 0) + int(size)
        return marks


def python_processes(pids: tuple[int, ...]) -> set[int]:
    """The processes of the service's tree that run Python (each carries an agent)."""
    found: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in members:
            if _is_python(proc):
                found.add(proc.pid)
    return found


def _is_python(proc: psutil.Process) -> bool:
    try:
        exe = proc.exe() or (proc.cmdline() or [""])[0]
    except psutil.Error:
        return False
    name = exe.rsplit("/", 1)[-1]
    return name.startswith(("python", "pypy"))
