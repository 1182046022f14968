from __future__ import annotations

from pathlib import Path

import pytest

# The verdict's statistics, imported once before any in-process pytester run: pytester puts
# sys.modules back after each run, and numpy's C core refuses to be loaded a second time in
# one process ("cannot load module more than once per process").
import scipy.stats  # noqa: F401

from tests.helpers import SAMPLES, copy_test_services, item_traffic_lines


@pytest.fixture
def samples() -> Path:
    """The shared real-world samples; tests that need them skip when the folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real-world samples not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture
def soak_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir that can import the test services as ``apps.services``."""
    copy_test_services(pytester.path)
    pytester.makefile(".jsonl", items=item_traffic_lines(400))
    return pytester
