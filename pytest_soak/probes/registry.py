"""The probes there are: ``PROBES``, the built-in probes by name, and the checks the probes of
every run pass (a probe is one; names and metric names are unique; roles name its metrics).

Adding a built-in probe is one module in this package plus one ``PROBES.register(...)`` line
at the end of this one. A test suite adds its own through the ``pytest_soak_probes`` hook
(docs/probes.md); they are checked here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_soak.errors import ProbeError
from pytest_soak.probes.agent import AgentProbe
from pytest_soak.probes.heap import PythonHeapProbe
from pytest_soak.probes.metrics import Metric
from pytest_soak.probes.probe import EVERYWHERE, Probe, Service
from pytest_soak.probes.process import InProcessRssProbe, ServedProcessTreeProbe

#: What a probe has (``Probe``): a class naming ``Probe`` as its base gets defaults for all but
#: the first two and ``read``.
MEMBERS = (
    "name", "metrics", "read", "where", "judged", "recorded", "secondary_reason", "start", "stop",
    "settle", "attribution", "sample_gap",
)  # fmt: skip
#: How a probe is registered: a class (or any callable) making a fresh probe for one run.
ProbeMaker = Callable[[], Probe]


class ProbeRegistry:
    """Probe makers by probe name, in registration order (the order probes are read in)."""

    def __init__(self) -> None:
        self._makers: dict[str, ProbeMaker] = {}

    def register(self, make: ProbeMaker) -> ProbeMaker:
        """Add a probe (checked now: a bad one fails at import, not in a run)."""
        probe = check_probe(make(), f"registered probe {make!r}")
        if probe.name in self._makers:
            raise ProbeError(
                f"probe name={probe.name!r} is registered twice ({self._makers[probe.name]!r}, "
                f"then {make!r}); give each probe a name of its own"
            )
        self._makers[probe.name] = make
        return make

    @property
    def names(self) -> list[str]:
        return list(self._makers)

    def probes_for(self, service: Service) -> list[Probe]:
        """Fresh probes, in registration order, of those that measure where ``service`` runs."""
        probes = [make() for make in self._makers.values()]
        return [probe for probe in probes if service.where in probe.where]


def check_probe(probe: object, source: str) -> Probe:
    """``probe`` if it is a usable probe, else a ``ProbeError`` naming ``source``."""
    if not isinstance(probe, Probe):
        missing = ", ".join(member for member in MEMBERS if not hasattr(probe, member))
        raise ProbeError(
            f"{source} gave {probe!r}, which is not a probe: it has no {missing}; subclass "
            "pytest_soak.probes.Probe (then name, metrics and read() are all it needs; "
            "docs/probes.md)"
        )
    name = probe.name
    if not isinstance(name, str) or not name:
        raise ProbeError(f"{source} gave a probe with name={name!r}; name it with a word")
    metrics = list(probe.metrics)
    names = [metric.name for metric in metrics if isinstance(metric, Metric)]
    if len(names) != len(metrics) or not metrics:
        raise ProbeError(
            f"probe {name!r}: metrics={probe.metrics!r} must be one or more Metric(name, label, "
            "unit, noise, step)"
        )
    if len(set(names)) != len(names):
        raise ProbeError(f"probe {name!r}: reads the metrics {names} (a name twice)")
    unknown = set(probe.where) - EVERYWHERE
    if unknown or not probe.where:
        raise ProbeError(
            f"probe {name!r}: where={sorted(probe.where)!r} must name 'in-process', 'served' "
            "or both"
        )
    for role in ("judged", "recorded"):
        strays = set(getattr(probe, role)) - set(names)
        if strays:
            raise ProbeError(
                f"probe {name!r}: {role}={sorted(strays)!r} are not among its metrics {names}"
            )
    both = set(probe.judged) & set(probe.recorded)
    if both:
        raise ProbeError(f"probe {name!r}: {sorted(both)!r} cannot be judged and only recorded")
    return probe


def check_unique(probes: Sequence[Probe]) -> None:
    """A run's probes have names of their own and read metrics of their own (their readings
    share one row per floor: a metric two probes read would be one overwriting the other)."""
    by_name: dict[str, Probe] = {}
    by_metric: dict[str, Probe] = {}
    for probe in probes:
        if probe.name in by_name:
            raise ProbeError(
                f"two probes are named {probe.name!r} ({_kind(by_name[probe.name])} and "
                f"{_kind(probe)}); give each probe a name of its own"
            )
        by_name[probe.name] = probe
        for metric in probe.metrics:
            other = by_metric.setdefault(metric.name, probe)
            if other is not probe:
                raise ProbeError(
                    f"metric {metric.name!r} is read by two probes ({other.name!r} and "
                    f"{probe.name!r}); name the metric of your own probe differently"
                )


def _kind(probe: Probe) -> str:
    return type(probe).__qualname__


#: The built-in probes.
PROBES = ProbeRegistry()
PROBES.register(PythonHeapProbe)
PROBES.register(InProcessRssProbe)
PROBES.register(AgentProbe)
PROBES.register(ServedProcessTreeProbe)
