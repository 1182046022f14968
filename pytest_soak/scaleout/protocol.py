"""What travels between the controller (pytest), the Locust master and the workers' replayers.

Every hop speaks one JSON object a line (the control connection, the replayer's pipes); Locust's
custom messages carry the same objects between master and workers. Nothing here imports Locust.

- A **job** is one replay of ``count`` cycles: the cycle's distinct requests (once each, with a
  SHA-256 the replayer checks), the order they are sent in, one cycle's arrivals and phase spans
  (the timeline slice), the target URL and the hosts it may be, and each worker's index and the
  number of workers.
- A worker's **share**: request ``p`` of every cycle goes to worker ``p mod N`` (the same share
  in every cycle, so every cycle of every worker is identical work).
- **Stats** are ``PhaseStats`` as JSON: counts, and the three histograms' non-empty buckets (they
  are fixed-size and the same everywhere, so they merge exactly; percentiles are never
  averaged). Loop-clock times are sent relative to the worker's replay start.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_soak.driver.histogram import LatencyHistogram
from pytest_soak.driver.records import PhaseStats
from pytest_soak.errors import DriverError
from pytest_soak.traffic.model import Exchange

#: Version of the messages below: a controller and workers of different versions refuse work.
PROTOCOL = 1
#: The Locust custom message types (master <-> workers).
START, RELEASE, STOP, REPORT = "soak_start", "soak_release", "soak_stop", "soak_report"
#: Default TCP port of the master's control listener (Locust's own worker port is 5557).
CONTROL_PORT = 5558


def dumps(message: Mapping[str, Any]) -> bytes:
    """One message as one line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def loads(line: bytes | str) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError(f"not a pytest-soak scale-out message: {str(line)[:120]!r}")
    return message


def parse_address(text: str, flag: str = "--soak-locust") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5558`` for IPv6) of a master's control listener."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DriverError(
            f"{flag}={text!r} is not HOST:PORT (e.g. 127.0.0.1:{CONTROL_PORT}, the control port "
            "of `python -m pytest_soak.scaleout.master`)"
        )
    return host, int(port)


# -- the job -----------------------------------------------------------------------------------


def exchange_to_json(exchange: Exchange) -> dict[str, Any]:
    return {
        "method": exchange.method,
        "target": exchange.target,
        "headers": [list(pair) for pair in exchange.headers],
        "body": base64.b64encode(exchange.body).decode("ascii"),
        "source": exchange.source,
    }


def exchange_from_json(data: Mapping[str, Any]) -> Exchange:
    return Exchange(
        0.0,
        str(data["method"]),
        str(data["target"]),
        tuple((str(k), str(v)) for k, v in data["headers"]),
        base64.b64decode(data["body"]),
        source=str(data.get("source", "")),
    )


def requests_digest(requests: Sequence[Mapping[str, Any]], order: Sequence[int]) -> str:
    """SHA-256 of the cycle's requests and their order, as they travel."""
    digest = hashlib.sha256(json.dumps([requests, list(order)], sort_keys=True).encode())
    return digest.hexdigest()


def cycle_requests(exchanges: Sequence[Exchange]) -> tuple[list[dict[str, Any]], list[int]]:
    """The cycle's distinct requests (each once, however often the cycle repeats it) and the
    order they are sent in, as indices into them."""
    seen: dict[int, int] = {}
    distinct: list[dict[str, Any]] = []
    order: list[int] = []
    for exchange in exchanges:
        index = seen.get(id(exchange))
        if index is None:
            index = seen[id(exchange)] = len(distinct)
            distinct.append(exchange_to_json(exchange))
        order.append(index)
    return distinct, order


@dataclass(frozen=True)
class Share:
    """Worker ``index`` of ``workers``: request ``p`` of a cycle is its when p ≡ index mod N."""

    index: int
    workers: int
    size: int  # requests in a cycle

    @property
    def positions(self) -> range:
        return range(self.index, self.size, self.workers)

    def before(self, position: int) -> int:
        """How many of this worker's requests come before request ``position`` of a cycle."""
        if position <= self.index:
            return 0
        return (position - self.index + self.workers - 1) // self.workers

    def local_checkpoint(self, requests: int) -> int:
        """The controller's checkpoint after ``requests`` requests of the run, counted in this
        worker's own requests (several checkpoints can fall on one: none of its requests lie
        between them)."""
        cycle, position = divmod(requests, self.size)
        return cycle * len(self.positions) + self.before(position)


# -- stats -------------------------------------------------------------------------------------


def histogram_to_json(histogram: LatencyHistogram) -> dict[str, Any]:
    return {"b": histogram.buckets(), "t": histogram.total, "m": histogram.maximum}


def histogram_from_json(data: Mapping[str, Any]) -> LatencyHistogram:
    return LatencyHistogram.from_buckets(
        ((int(i), int(n)) for i, n in data["b"]), float(data["t"]), float(data["m"])
    )


def stats_to_json(stats: PhaseStats, origin: float) -> dict[str, Any]:
    """One phase's figures; loop-clock times relative to ``origin`` (the replay's start)."""
    sent = bool(stats.sent)
    return {
        "name": stats.name,
        "sent": stats.sent,
        "late": stats.late,
        "capped": stats.capped,
        "unsent": stats.unsent,
        "statuses": {k: v for k, v in stats.statuses.items() if v},
        "errors": dict(stats.errors),
        "error_samples": list(stats.error_samples),
        "latency": histogram_to_json(stats.latency),
        "lateness": histogram_to_json(stats.lateness),
        "lag": histogram_to_json(stats.lag),
        "wall_start": stats.wall_start,
        "wall_end": stats.wall_end,
        "first_intended": stats.first_intended - origin if sent else None,
        "last_intended": stats.last_intended - origin if sent else None,
        "first_sent_at": stats.first_sent_at - origin if sent else None,
        "last_sent_at": stats.last_sent_at - origin if sent else None,
    }


def counts_to_json(stats: PhaseStats) -> list[Any]:
    """The light figures a checkpoint report carries: sent, late, unsent, errors by kind."""
    return [stats.sent, stats.late, stats.unsent, dict(stats.errors)]


def add_counts(stats: PhaseStats, counts: Sequence[Any]) -> None:
    """Add a worker's light figures (``counts_to_json``) to the controller's view of a phase."""
    sent, late, unsent, errors = counts
    stats.sent += int(sent)
    stats.late += int(late)
    stats.unsent += int(unsent)
    stats.errors.update({str(k): int(v) for k, v in errors.items()})


def stats_from_json(data: Mapping[str, Any]) -> PhaseStats:
    """A worker's figures of a phase (``stats_to_json``) as ``PhaseStats``: its counts and
    histograms (no plan, and its loop-clock times left out: ``merge_stats`` combines those)."""
    return PhaseStats(
        str(data["name"]),
        0,
        0.0,
        0.0,
        sent=int(data["sent"]),
        late=int(data["late"]),
        capped=int(data["capped"]),
        unsent=int(data["unsent"]),
        statuses=Counter({str(k): int(v) for k, v in data["statuses"].items()}),
        errors=Counter({str(k): int(v) for k, v in data["errors"].items()}),
        error_samples=[str(s) for s in data["error_samples"]],
        latency=histogram_from_json(data["latency"]),
        lateness=histogram_from_json(data["lateness"]),
        lag=histogram_from_json(data["lag"]),
    )


def merge_stats(into: PhaseStats, data: Mapping[str, Any]) -> None:
    """Add one worker's figures of a phase to ``into`` (``PhaseStats.add``: counts summed,
    histograms merged; the phase's first and last sends the earliest and latest of any
    worker, as the workers ran side by side)."""
    had = into.sent
    into.add(stats_from_json(data))
    if data["wall_start"] is not None:
        start = float(data["wall_start"])
        into.wall_start = start if into.wall_start is None else min(into.wall_start, start)
    if data["wall_end"] is not None:
        end = float(data["wall_end"])
        into.wall_end = end if into.wall_end is None else max(into.wall_end, end)
    if data["sent"]:
        first = float(data["first_intended"])
        if not had or first < into.first_intended:
            into.first_intended, into.first_sent_at = first, float(data["first_sent_at"])
        last = float(data["last_intended"])
        if not had or last > into.last_intended:
            into.last_intended, into.last_sent_at = last, float(data["last_sent_at"])
