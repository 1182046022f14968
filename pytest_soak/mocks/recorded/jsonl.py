"""pytest-soak's native traffic JSON Lines (``docs/traffic-formats.md``) with recorded
responses: each exchange with a ``response`` is a recording."""

from __future__ import annotations

from pathlib import Path

from pytest_soak.mocks.recorded.grouping import Recording, Skips, from_traffic, read_traffic
from pytest_soak.traffic import jsonl

LOOKS_LIKE = "native traffic JSONL"
SUFFIXES = (".jsonl", ".ndjson")
sniff = jsonl.sniff


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    return from_traffic(read_traffic(path, shown, "jsonl")[1], skips)
