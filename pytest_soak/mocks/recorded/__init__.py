"""Automatic mocks from recorded outbound traffic: ``grouping`` turns recordings into stubs, and
one module per format reads them (``har``, ``goreplay``, ``rrpair``, ``jsonl``, ``proxymock``,
``vcr``; registered in ``pytest_soak.mocks.formats``), or they come from a loaded ``Traffic``.
"""

from __future__ import annotations

from pytest_soak.mocks.recorded.grouping import (
    Recording,
    SignatureOptions,
    Skips,
    definitions,
    from_traffic,
    stubs_from_recordings,
)

__all__ = [
    "Recording",
    "SignatureOptions",
    "Skips",
    "definitions",
    "from_traffic",
    "stubs_from_recordings",
]
