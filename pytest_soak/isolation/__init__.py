"""Leak isolation by the exclusion method: which endpoint, and which kind of request, leaks.

A person with filters replays the load without endpoint A, then without B, ... until the leak
goes away, then removes kinds of request until the leaking kind is pinned. This package does it
in fewer replays, and names a culprit only when it is confirmed both ways (docs/isolation.md):

- ``search``: which sets of endpoints to replay — group testing, a pure function of an oracle;
- ``trials``: one *trial* is a replay of part of the traffic, a full soak run judged by the
  same leak rule; how big each trial is, and the budget they run within;
- ``culprits``: the isolation end to end (``isolate``): endpoints, kinds of request, mutations,
  the report;
- ``repro``: the reproduction file of the confirmed culprit traffic, secrets redacted.
"""

from __future__ import annotations

from pytest_soak.isolation.culprits import isolate
from pytest_soak.isolation.repro import REDACTED, redact, repro_path, write_repro
from pytest_soak.isolation.search import EndpointSearch, Exhausted, find_culprits
from pytest_soak.isolation.trials import Trial, Trials, TrialSizing

__all__ = [
    "REDACTED",
    "EndpointSearch",
    "Exhausted",
    "Trial",
    "TrialSizing",
    "Trials",
    "find_culprits",
    "isolate",
    "redact",
    "repro_path",
    "write_repro",
]
