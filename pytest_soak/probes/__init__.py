"""Memory probes: what is read of the service under load, and how.

One concept a module:

- ``metrics``: ``Metric`` (a figure's label, unit and noise) and the built-in ``METRICS``;
- ``probe``: the ``Probe`` protocol and ``Service``, what a probe is told at the start of a run;
- ``registry``: ``PROBES``, the built-in probes, and the checks every run's probes pass;
- ``callables``: a plain function as a one-metric probe;
- ``http``: the base of probes that read the service over loopback HTTP; ``endpoints``: a
  Prometheus sample (``prometheus``), a number in a JSON document (``http_json``); ``envoy``:
  Envoy's admin ``/memory`` (``envoy_admin``);
- ``heap``: the Python heap (tracemalloc) and its probe; ``sites``: allocation sites;
- ``process``: RSS/USS of a process tree (psutil) and its probes;
- ``floors``: floors read at checkpoints; ``sampler``: the sampler thread;
- ``session``: ``ProbeSession``, the probes of one run, read as one.

Writing a probe: docs/probes.md.
"""

from __future__ import annotations

from pytest_soak.probes.callables import CallableProbe, callable_probe
from pytest_soak.probes.endpoints import JsonFieldProbe, PrometheusProbe, http_json, prometheus
from pytest_soak.probes.envoy import EnvoyAdminProbe, envoy_admin
from pytest_soak.probes.floors import FloorTable, settle_in_process
from pytest_soak.probes.heap import PythonHeap
from pytest_soak.probes.http import HttpProbe
from pytest_soak.probes.metrics import METRICS, Metric, metric_named
from pytest_soak.probes.probe import (
    IN_PROCESS,
    SERVED,
    Probe,
    ProbeUnavailable,
    Service,
    SiteSource,
)
from pytest_soak.probes.sampler import PhaseExtremes, Sampler
from pytest_soak.probes.session import ProbeSession
from pytest_soak.probes.sites import Site

__all__ = [
    "IN_PROCESS",
    "METRICS",
    "SERVED",
    "CallableProbe",
    "EnvoyAdminProbe",
    "FloorTable",
    "HttpProbe",
    "JsonFieldProbe",
    "Metric",
    "PhaseExtremes",
    "Probe",
    "ProbeSession",
    "ProbeUnavailable",
    "PrometheusProbe",
    "PythonHeap",
    "Sampler",
    "Service",
    "Site",
    "SiteSource",
    "callable_probe",
    "envoy_admin",
    "http_json",
    "metric_named",
    "prometheus",
    "settle_in_process",
]
