"""What a probe is: ``Probe``, the protocol every probe meets, and ``Service``, what a probe is
told about the service it measures when a run starts.

A probe reads figures of the service under load. The session (``probes/session.py``) reads
every probe that applies to the target about ten times a second (the samples: charts and the
per-phase table) and at every checkpoint (the floors: what the leak rule judges). Each figure
a probe reads is a ``Metric``, and has one of three roles:

- **judged**: a leak of it fails the test (the Python heap in process, USS out of process);
- **secondary** (the default): judged by the same rule, but at most *suspicious*, with the
  probe's ``secondary_reason`` saying why it does not decide (RSS: it counts pages the
  service shares, or the harness's own memory);
- **recorded**: kept with the floors and samples, not judged (allocated blocks, gc counts).

Writing one (docs/probes.md): a class with a ``name``, its ``metrics`` and ``read()``; the
other members have defaults when the class names ``Probe`` as its base. At a checkpoint every
probe's ``settle`` runs first, then the reads; a probe with allocation sites gives the
attribution pass its ``SiteSource``. ``start`` raising ``ProbeUnavailable`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pytest_soak.agent import AgentHub
from pytest_soak.probes.metrics import Metric
from pytest_soak.probes.sites import Site

#: The service is an ASGI or WSGI app called in this process.
IN_PROCESS = "in-process"
#: The service runs in processes of its own (``soak.serve``, ``soak.url(pid=...)``).
SERVED = "served"
EVERYWHERE: frozenset[str] = frozenset({IN_PROCESS, SERVED})


@dataclass(frozen=True)
class Service:
    """The service a run measures, as a probe is told at ``start``: where it runs, the
    processes whose memory is its own (in process: this one), the folders of its own code
    (allocation sites), how deep tracemalloc traces during the run, and its loopback ports by
    name (``""`` the traffic's, ``"admin"`` for ``{port:admin}``: ``pytest_soak.ports``)."""

    in_process: bool
    pids: tuple[int, ...]
    source_dirs: tuple[str, ...] = ()
    tracemalloc_frames: int = 1
    ports: Mapping[str, int] = field(default_factory=dict)
    #: The channel to the agents inside a served Python service (``soak.serve``), if any.
    agent: AgentHub | None = None

    @property
    def where(self) -> str:
        return IN_PROCESS if self.in_process else SERVED


class ProbeUnavailable(Exception):
    """Raised by ``Probe.start`` when the probe cannot measure this run (no agent answered):
    the run goes on without it. ``quiet``: nothing to say (it does not apply here at all);
    otherwise the message is a note of the run."""

    def __init__(self, message: str = "", *, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class SiteSource(Protocol):
    """What the attribution pass reads (``attribution.py``): memory held per allocation site
    at marks taken after each replayed cycle, traced with deep tracebacks for the pass only."""

    #: The traceback depth of the measured run, restored after the pass (0: not traced).
    frames: int
    #: What traced the pass, once restarted (said in the report when not the default).
    engine: str

    def restart(self, frames: int) -> None:
        """Trace afresh with ``frames`` frames per traceback."""

    def settle(self) -> None:
        """Collect garbage and trim the allocator before a snapshot."""

    def mark(self) -> None:
        """A snapshot point: the service's memory by site now (read now or at the end)."""

    def marked(self) -> list[dict[Site, int]]:
        """Bytes held per site of the service at each mark since the restart, in order."""
        ...


@runtime_checkable
class Probe(Protocol):
    """A source of figures about the service under load, for one run at a time (``start`` is
    called again for a later run). Attributes with a value here are defaults for a class that
    names ``Probe`` as its base."""

    #: Unique among a run's probes (``python-heap``, ``process-tree``, ...).
    name: str
    #: Every figure ``read`` returns, each with its label, unit and noise.
    metrics: Sequence[Metric]
    #: Where it can measure: ``IN_PROCESS``, ``SERVED`` or both (the default).
    where: Set[str] = EVERYWHERE
    #: Names of its metrics whose leak fails the test (default: none).
    judged: Set[str] = frozenset()
    #: Names of its metrics only recorded, not judged (default: none). Its other metrics are
    #: secondary: judged, at most suspicious.
    recorded: Set[str] = frozenset()
    #: Why its secondary metrics do not decide the verdict (shown beside a demoted leak).
    secondary_reason: str = "a custom probe's metric: reported, not judged"
    #: Seconds between two of its samples while the load runs (0: every sample, about ten a
    #: second); in between, its last figures stand. Checkpoints always read it afresh.
    sample_gap: float = 0.0

    def start(self, service: Service) -> None:
        """Called before the run's first reading (the default does nothing)."""
        return None

    def stop(self) -> None:
        """Called after the run's last reading, whatever happened (the default does nothing)."""
        return None

    def settle(self) -> None:
        """Called at each checkpoint before the floor is read, nothing in flight: make the
        figures settle (collect garbage, trim the allocator). The default does nothing."""
        return None

    def attribution(self) -> SiteSource | None:
        """Where the attribution pass reads allocation sites, if this probe can say (the
        in-process heap, the agent). The default: none."""
        return None

    def read(self) -> dict[str, float]:
        """The figures now, by metric name. Called from the sampler's thread and, at
        checkpoints, from the run's; it should be quick and, in process, allocate nothing
        that it keeps (it would read as the service's growth)."""
        ...
