"""HAR 1.2 (``.har``, or JSON starting with ``{"log"``): recorded exchanges with a response,
their bodies decoded, the ``wait`` timing (or ``time``) as latency."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_soak.mocks.recorded.grouping import (
    Recording,
    Skips,
    from_traffic,
    read_traffic,
    starts_like,
)

LOOKS_LIKE = "HAR"
SUFFIXES = (".har", ".json")
sniff = starts_like(rb'\{\s*"log"\s*:')


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    data, traffic = read_traffic(path, shown, "har")
    latencies: dict[str, float] = {}
    try:
        entries = json.loads(data.decode("utf-8-sig"))["log"]["entries"]
        for index, entry in enumerate(entries):
            wait = (entry.get("timings") or {}).get("wait")
            total = entry.get("time")
            value = wait if isinstance(wait, (int, float)) and wait >= 0 else total
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                latencies[f"entry {index}"] = float(value)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # the parser above has accepted the file; latency is a bonus
    return from_traffic(traffic, skips, latencies, decoded=True)
