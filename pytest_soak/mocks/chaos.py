"""Chaos: mocks that misbehave on purpose, per request, reproducibly.

``Chaos(error_rate=0.05, statuses=[500, 503], latency="lognormal(50ms, 0.5)",
faults={"reset": 0.01}, seed=None)``. Every matched request draws the same number of random
numbers from one ``random.Random(seed)``, so the decision for the k-th request is a function of
``(seed, k)`` alone: two runs with the same seed inject the same things into the same positions
of the request sequence.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from pytest_soak.errors import MockError
from pytest_soak.mocks.definitions import FAULT_KINDS, FAULTS, Delay
from pytest_soak.units import parse_duration

#: Seed when neither ``Chaos(seed=...)`` nor the soak marker's ``seed`` says: runs are
#: reproducible by default.
DEFAULT_SEED = 20240501
_LATENCY = re.compile(r"\s*(fixed|uniform|lognormal)\s*\(([^()]*)\)\s*", re.IGNORECASE)
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Chaos:
    """What to inject into a share of matched requests.

    ``error_rate``: share answered with one of ``statuses`` (chosen uniformly) instead of the
    stub's response. ``latency``: added to ``latency_rate`` of requests (all by default):
    ``"20ms"``, ``"fixed(20ms)"``, ``"uniform(10ms, 80ms)"`` or ``"lognormal(50ms, 0.5)"``
    (median, sigma). ``faults``: share per fault, ``reset`` (connection reset by peer),
    ``empty`` (closed without an answer), ``malformed_chunk``, ``random_data`` (WireMock's names
    are accepted too). Faults and errors exclude each other: their rates add up to at most 1.
    ``seed``: ``None`` takes the soak marker's ``seed`` (or a fixed default).
    """

    error_rate: float = 0.0
    statuses: Sequence[int] = (500, 503)
    latency: str | None = None
    latency_rate: float = 1.0
    faults: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        _rate(self.error_rate, "error_rate")
        _rate(self.latency_rate, "latency_rate")
        statuses = tuple(self.statuses)
        if not statuses or any(
            isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599 for s in statuses
        ):
            raise MockError(
                f"Chaos(statuses={list(self.statuses)!r}): give one or more HTTP statuses "
                "(100-599), e.g. statuses=[500, 503]"
            )
        object.__setattr__(self, "statuses", statuses)
        faults: dict[str, float] = {}
        for name, rate in dict(self.faults).items():
            kind = FAULTS.get(name, name)
            if kind not in FAULT_KINDS:
                raise MockError(
                    f"Chaos(faults={{{name!r}: ...}}): unknown fault; use "
                    f"{', '.join(FAULT_KINDS)} (or WireMock's {', '.join(FAULTS)})"
                )
            faults[kind] = faults.get(kind, 0.0) + _rate(rate, f"faults[{name!r}]")
        object.__setattr__(self, "faults", faults)
        total = self.error_rate + sum(faults.values())
        if total > 1.0 + 1e-9:
            raise MockError(f"Chaos: error_rate + fault rates = {total:g} is over 1; lower them")
        if self.latency is not None:
            parse_latency(self.latency)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise MockError(f"Chaos(seed={self.seed!r}) must be a whole number or None")

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "statuses": list(self.statuses),
            "latency": self.latency,
            "latency_rate": self.latency_rate,
            "faults": dict(self.faults),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chaos:
        return cls(**dict(data))


def _rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise MockError(f"Chaos({name}={value!r}) must be a share between 0 and 1 (0.05 is 5%)")
    return float(value)


def parse_latency(text: str) -> Delay:
    """``"20ms"`` / ``"fixed(20ms)"`` / ``"uniform(10ms, 80ms)"`` / ``"lognormal(50ms, 0.5)"``."""
    match = _LATENCY.fullmatch(text)
    try:
        if match is None:
            return Delay("fixed", _ms(text))
        kind = match.group(1).lower()
        args = [a.strip() for a in match.group(2).split(",")]
        if kind == "fixed" and len(args) == 1:
            return Delay("fixed", _ms(args[0]))
        if kind == "uniform" and len(args) == 2:
            low, high = _ms(args[0]), _ms(args[1])
            if high >= low:
                return Delay("uniform", low, high)
        if kind == "lognormal" and len(args) == 2:
            sigma = float(args[1])
            if math.isfinite(sigma) and sigma >= 0:
                return Delay("lognormal", _ms(args[0]), sigma)
    except (ValueError, MockError):
        pass
    raise MockError(
        f"Chaos(latency={text!r}) is not a latency; write '20ms', 'fixed(20ms)', "
        "'uniform(10ms, 80ms)' or 'lognormal(50ms, 0.5)' (median, sigma)"
    )


def _ms(text: str) -> float:
    try:
        return parse_duration(text, name="latency") * 1000.0
    except Exception as exc:
        raise ValueError(str(exc)) from None


def sample_delay(delay: Delay, u: float) -> float:
    """Milliseconds of ``delay`` for the uniform draw ``u`` in [0, 1)."""
    if delay.kind == "fixed":
        return delay.a
    if delay.kind == "uniform":
        return delay.a + (delay.b - delay.a) * u
    u = min(max(u, 1e-12), 1 - 1e-12)
    return delay.a * math.exp(delay.b * _NORMAL.inv_cdf(u))  # lognormal: median a, sigma b


@dataclass(frozen=True, slots=True)
class Decision:
    """What chaos does to one request: answer ``status`` instead, or a ``fault``; plus delay."""

    status: int | None = None
    fault: str | None = None
    delay_ms: float = 0.0


NO_CHAOS = Decision()


class ChaosDecider:
    """Decisions in request order: always four draws per request, so decision k depends on
    ``(seed, k)`` only."""

    def __init__(self, chaos: Chaos | None, seed: int) -> None:
        self.chaos = chaos
        self.seed = chaos.seed if chaos is not None and chaos.seed is not None else seed
        self._latency = parse_latency(chaos.latency) if chaos and chaos.latency else None
        self._faults = sorted(chaos.faults.items()) if chaos else []
        self._rng = random.Random(self.seed)

    def reset(self) -> None:
        self._rng = random.Random(self.seed)

    def decide(self) -> Decision:
        chaos = self.chaos
        if chaos is None:
            return NO_CHAOS
        rng = self._rng
        pick, which, apply_latency, latency_u = (
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
        )
        delay = 0.0
        if self._latency is not None and apply_latency < chaos.latency_rate:
            delay = sample_delay(self._latency, latency_u)
        edge = 0.0
        for kind, rate in self._faults:
            edge += rate
            if pick < edge:
                return Decision(fault=kind, delay_ms=delay)
        if pick < edge + chaos.error_rate:
            status = chaos.statuses[min(int(which * len(chaos.statuses)), len(chaos.statuses) - 1)]
            return Decision(status=status, delay_ms=delay)
        return Decision(delay_ms=delay) if delay else NO_CHAOS
