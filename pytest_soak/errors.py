"""Errors raised by pytest-soak.

Every error names what was wrong (``name=value`` or ``file: entry N``), why, and what to do.
``SoakFailure`` is the verdict of a failed soak test; it is an ``AssertionError`` so that
pytest reports it as a test failure, not an error.
"""

from __future__ import annotations


class SoakError(Exception):
    """Base class of every error pytest-soak raises for bad input or a broken run."""


class TrafficFormatError(SoakError):
    """A traffic file could not be read: names the file, the entry or line, and what is wrong."""


class MockError(SoakError):
    """A mock definition could not be used."""


class MockDefinitionError(MockError):
    """A mock definition file is malformed or asks for what is not supported: names the file,
    the mapping (index or name), the field, what is wrong and what to do."""


class ProfileError(SoakError):
    """A ramp profile or its arguments are invalid."""


class DriverError(SoakError):
    """The load could not be driven: target refused, service died, not ready in time."""


class ProbeError(SoakError):
    """A probe cannot be used: a name or metric two probes share, or a probe that is not one."""


class BaselineError(SoakError):
    """A baseline file is missing, corrupt or could not be written."""


class SoakFailure(AssertionError):
    """The soak verdict failed (a leak, or growth over the limits)."""
