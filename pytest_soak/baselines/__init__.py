"""Baselines: each soak test's recorded memory growth, committed next to the tests.

One JSON file per test module, in a ``__soak_baselines__`` folder beside it, holding one entry
per test and environment. A fresh result is compared with the baseline recorded where it ran;
under ``--soak-update-baselines`` it becomes the new one.

``environment``  where a figure was measured (the key that picks a baseline)
``record``       ``Baseline``: one test's figures, read from a typed ``SoakResult``
``reader``       checks a file a person may have edited; errors name the file and key
``store``        ``BaselineFile``: one module's file, rounded for review, saved atomically
``comparison``   ``Tolerance`` and ``compare``: over, within, or much better
``apply``        what the comparison means for a result's verdict
``update``       at the session's end: write recorded baselines, prune vanished tests
"""

from __future__ import annotations

from pytest_soak.baselines.apply import BaselineContext, apply_baseline, tolerance_for
from pytest_soak.baselines.comparison import DEFAULT_TOLERANCE, Comparison, Tolerance, compare
from pytest_soak.baselines.environment import Environment
from pytest_soak.baselines.reader import FORMAT_VERSION
from pytest_soak.baselines.record import Baseline, PhaseRecord, traffic_fingerprint
from pytest_soak.baselines.store import BASELINE_DIR, BaselineFile, baseline_path
from pytest_soak.baselines.update import prune_baselines, write_baselines

__all__ = [
    "BASELINE_DIR",
    "DEFAULT_TOLERANCE",
    "FORMAT_VERSION",
    "Baseline",
    "BaselineContext",
    "BaselineFile",
    "Comparison",
    "Environment",
    "PhaseRecord",
    "Tolerance",
    "apply_baseline",
    "baseline_path",
    "compare",
    "prune_baselines",
    "tolerance_for",
    "traffic_fingerprint",
    "write_baselines",
]
