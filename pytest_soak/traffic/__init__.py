"""Recorded traffic: the model, the format registry and ``load_traffic``."""

from __future__ import annotations

from pytest_soak.traffic.formats import FORMATS, TrafficFormat, load_traffic, parse_traffic
from pytest_soak.traffic.model import Exchange, RecordedResponse, Skipped, Traffic

__all__ = [
    "FORMATS",
    "Exchange",
    "RecordedResponse",
    "Skipped",
    "Traffic",
    "TrafficFormat",
    "load_traffic",
    "parse_traffic",
]
