"""A plain callable as a probe: ``probes=[queue_depth]`` reads ``queue_depth()`` as one metric
named after the function (``callable_probe`` gives it a name, unit, noise and role)."""

from __future__ import annotations

import math
from collections.abc import Callable

from pytest_soak.errors import ProbeError
from pytest_soak.probes.metrics import Metric
from pytest_soak.probes.probe import EVERYWHERE, Probe


class CallableProbe(Probe):
    """A probe reading ``read()`` (a function of no arguments returning a number) as the
    metric ``name`` (default: the function's name). ``unit="bytes"`` shows it in KiB/MiB;
    ``judged=True`` makes its leak fail the test (otherwise secondary: at most suspicious);
    ``noise``/``step``: see ``Metric``."""

    def __init__(
        self,
        read: Callable[[], float],
        *,
        name: str | None = None,
        label: str | None = None,
        unit: str = "",
        noise: float = 0.0,
        step: float = 0.0,
        judged: bool = False,
        where: frozenset[str] = EVERYWHERE,
    ) -> None:
        metric = name or getattr(read, "__name__", "") or ""
        if not metric or metric == "<lambda>":
            raise ProbeError(
                f"probe {read!r}: a lambda has no name to read it by; use "
                "callable_probe(fn, name='queue_depth') or a named function"
            )
        self._read = read
        self.name = metric
        self.metrics = (Metric(metric, label or metric, unit, noise, step),)
        self.judged = frozenset({metric}) if judged else frozenset()
        self.where = where

    def read(self) -> dict[str, float]:
        value = self._read()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ProbeError(
                f"probe {self.name!r}: {self._read!r} returned {value!r}; return a number"
            )
        return {self.name: float(value)}


#: ``callable_probe(fn, name=..., unit="bytes", judged=True)``: the probe by the name users
#: write.
callable_probe = CallableProbe


def as_probe(candidate: object) -> object:
    """A probe from what a user gave: a probe as it is, a plain function wrapped in a
    ``CallableProbe``; anything else is left for ``check_probe`` to refuse clearly."""
    if isinstance(candidate, (Probe, type)):
        return candidate
    if callable(candidate):
        return CallableProbe(candidate)
    return candidate
