"""GoReplay (``.gor``): requests with their original response (type 2 payloads), the response
payload's latency field as latency."""

from __future__ import annotations

from pathlib import Path

from pytest_soak.mocks.recorded.grouping import (
    Recording,
    Skips,
    from_traffic,
    read_traffic,
    starts_like,
)
from pytest_soak.traffic.goreplay import SEPARATOR

LOOKS_LIKE = "GoReplay"
SUFFIXES = (".gor",)
sniff = starts_like(rb"[123] [0-9a-fA-F]+ \d+(?: -?\d+)?\r?\n")


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    data, traffic = read_traffic(path, shown, "goreplay")
    latencies: dict[str, float] = {}
    request_ids: dict[str, str] = {}
    response_latency: dict[str, float] = {}
    for number, payload in enumerate(data.split(SEPARATOR), start=1):
        head = payload.lstrip(b"\n").split(b"\n", 1)[0].split()
        if len(head) < 3:
            continue
        kind, ident = head[0], head[1].decode("ascii", "replace")
        if kind == b"1":
            request_ids[f"payload {number}"] = ident
        elif kind == b"2" and len(head) >= 4 and head[3].lstrip(b"-").isdigit():
            response_latency[ident] = int(head[3]) / 1e6
    for source, ident in request_ids.items():
        if ident in response_latency and response_latency[ident] >= 0:
            latencies[source] = response_latency[ident]
    return from_traffic(traffic, skips, latencies)
