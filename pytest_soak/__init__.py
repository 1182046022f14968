"""pytest-soak: memory soak tests of web services inside pytest.

Replay recorded production traffic against a service, shaped by a ramp profile and compressed
into a minute on pull requests or hours at night; sample memory per phase; fail the test when
memory grows like a leak. See README.md.

``import pytest_soak`` stays cheap: names that pull in the driver or SciPy load on first use, and
``__version__`` is read from the installed package's metadata (pyproject.toml holds it) then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_soak.errors import (
    BaselineError,
    DriverError,
    MockDefinitionError,
    MockError,
    ProbeError,
    ProfileError,
    SoakError,
    SoakFailure,
    TrafficFormatError,
)
from pytest_soak.profiles import Phase, Profile

if TYPE_CHECKING:
    from pytest_soak.mocks import Chaos, MockSet
    from pytest_soak.result import SoakResult
    from pytest_soak.traffic import Exchange, RecordedResponse, Traffic, load_traffic

    __version__: str

__all__ = [
    "BaselineError",
    "Chaos",
    "DriverError",
    "Exchange",
    "MockDefinitionError",
    "MockError",
    "MockSet",
    "Phase",
    "ProbeError",
    "Profile",
    "ProfileError",
    "RecordedResponse",
    "SoakError",
    "SoakFailure",
    "SoakResult",
    "Traffic",
    "TrafficFormatError",
    "__version__",
    "load_traffic",
]

_LAZY = {
    "Chaos": "pytest_soak.mocks",
    "MockSet": "pytest_soak.mocks",
    "Exchange": "pytest_soak.traffic",
    "RecordedResponse": "pytest_soak.traffic",
    "SoakResult": "pytest_soak.result",
    "Traffic": "pytest_soak.traffic",
    "load_traffic": "pytest_soak.traffic",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_soak' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("pytest-soak")
    except PackageNotFoundError:  # a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
