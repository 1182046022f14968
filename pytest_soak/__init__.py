"""pytest-soak: memory soak tests of web services inside pytest."""

from __future__ import annotations

__version__ = "0.1.0"
