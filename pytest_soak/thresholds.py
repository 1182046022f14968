"""Thresholds: k6-style performance limits a soak run must keep, per phase or over the run.

``@pytest.mark.soak(thresholds={"p99": "250ms", "p95[spike]": "150ms", "errors": "1%",
"late": "0.5%", "rps[sustained]": ">= 0.98"})``. Each key names a figure and, in brackets, a
phase of the profile (none: the whole run); each value is a limit with its unit, optionally
after a comparison. Parsed here when the settings are resolved (before any load); judged by
``analysis.thresholds`` on the run's merged per-phase data.

- ``p50``, ``p90``, ``p95``, ``p99``, ``p99.9``: latency percentiles, ``"250ms"``, ``"0.3s"``;
- ``errors``: requests without a good answer over requests sent, ``"1%"`` or ``"0.01"``;
- ``late``: requests sent later than the late threshold over requests sent, the same;
- ``rps``: achieved over intended send rate, a ratio, ``">= 0.98"`` (or ``"98%"``).

The default comparison of latency, errors and late is ``<=`` (the figure may reach the limit:
``errors: "0%"`` means no error at all), that of ``rps`` is ``>=``. A comparison may be written
(``"< 250ms"``, ``"> 0.95"``), only in the figure's own direction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_soak.errors import SoakError
from pytest_soak.units import format_ms, share_plus_amount

Kind = Literal["latency", "share", "ratio"]
Comparison = Literal["<", "<=", ">=", ">"]


@dataclass(frozen=True)
class Figure:
    """One figure a threshold can limit: its kind (unit) and which way is good."""

    name: str
    kind: Kind
    meaning: str
    percentile: float | None = None  # latency figures: which percentile

    @property
    def upper(self) -> bool:
        """The limit is an upper bound (smaller is better): latency, errors, late."""
        return self.kind != "ratio"


#: Every figure a threshold can name: the registry the parser, the judge and the help share.
FIGURES: dict[str, Figure] = {
    **{
        f"p{q:g}": Figure(f"p{q:g}", "latency", f"{q:g}th percentile of latency", q)
        for q in (50.0, 90.0, 95.0, 99.0, 99.9)
    },
    "errors": Figure("errors", "share", "share of requests without a good answer"),
    "late": Figure("late", "share", "share of requests sent late"),
    "rps": Figure("rps", "ratio", "achieved over intended send rate"),
}

FORMS = (
    "keys p50, p90, p95, p99, p99.9, errors, late or rps, each optionally with a phase in "
    "brackets ('p95[spike]'); values '250ms' or '0.3s' (latency), '1%' or '0.01' (errors, "
    "late), '>= 0.98' (rps), optionally after '<', '<=', '>=' or '>'"
)

_KEY_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9.]*)\s*(?:\[\s*([^\[\]]+?)\s*\])?\s*$")
_VALUE_RE = re.compile(r"^\s*(<=|>=|<|>|=<|=>)?\s*(.*?)\s*$")
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LATENCY_RE = re.compile(rf"^({_NUMBER})\s*(us|µs|ms|s)$", re.IGNORECASE)
_LATENCY_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_SHARE_RE = re.compile(rf"^({_NUMBER})\s*(%?)$")


class ThresholdError(SoakError):
    """A threshold the marker (or ``soak.run``, or ini ``soak_defaults``) got is not one."""


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold: ``figure`` (a key of ``FIGURES``) of ``phase`` (None: the whole
    run) compared by ``comparison`` with ``limit`` (seconds, a share 0..1, or a ratio)."""

    key: str  # as written, normalised: "p95[spike]"
    figure: str
    phase: str | None
    comparison: Comparison
    limit: float

    @property
    def kind(self) -> Kind:
        return FIGURES[self.figure].kind

    def holds(self, observed: float) -> bool:
        """``observed`` keeps the threshold."""
        if math.isnan(observed):
            return False
        return {
            "<": observed < self.limit,
            "<=": observed <= self.limit,
            ">=": observed >= self.limit,
            ">": observed > self.limit,
        }[self.comparison]

    def to_text(self) -> str:
        """The value as it could be written again (``parse`` gives this threshold back)."""
        return f"{self.comparison} {format_value(self.kind, self.limit, exact=True)}"


def format_value(kind: str, value: float, *, exact: bool = False) -> str:
    """A threshold's figure in its unit: ``212ms``, ``0.40%``, ``0.97``; ``exact``: enough
    digits to parse back to the same number."""
    if math.isnan(value):
        return "n/a"
    if kind == "latency":
        return f"{value!r}s" if exact else format_ms(value)
    if kind == "share":
        if exact:
            return repr(value)
        percent = value * 100
        return f"{percent:.2f}%" if percent < 10 else f"{percent:.1f}%"
    return repr(value) if exact else f"{value:.3f}"


def parse_thresholds(value: Any, *, phases: Sequence[str] | None = None) -> tuple[Threshold, ...]:
    """The thresholds of ``value``: a dict ``{key: limit}``, or text ``"p99: 250ms, errors:
    1%"`` (ini ``soak_defaults``), or None (none). ``phases``: the profile's phase names (every
    bracketed phase must be one of them); None: not checked. Raises ``ThresholdError``."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = _text_entries(value)
    if not isinstance(value, Mapping):
        raise ThresholdError(
            f"thresholds={value!r} must be a dict such as "
            "{'p99': '250ms', 'p95[spike]': '150ms', 'errors': '1%'}; " + FORMS
        )
    parsed = tuple(parse_threshold(key, limit) for key, limit in value.items())
    seen: dict[str, str] = {}
    for threshold, key in zip(parsed, value, strict=True):
        if threshold.key in seen:
            raise ThresholdError(
                f"thresholds: {key!r} and {seen[threshold.key]!r} are the same threshold; "
                "give each figure and phase once"
            )
        seen[threshold.key] = str(key)
    if phases is not None:
        check_phases(parsed, phases)
    return parsed


def check_phases(thresholds: Sequence[Threshold], phases: Sequence[str]) -> None:
    """Every threshold's phase is one of ``phases`` (the profile's, in its order)."""
    for threshold in thresholds:
        if threshold.phase is not None and threshold.phase not in phases:
            raise ThresholdError(
                f"thresholds: {threshold.key!r} names phase {threshold.phase!r}, which the "
                f"profile does not have; its phases: {', '.join(phases)} (or no brackets: the "
                "whole run)"
            )


def parse_threshold(key: Any, value: Any) -> Threshold:
    """One ``key: value`` of the marker's ``thresholds``."""
    where = f"thresholds: {key!r}: {value!r}"
    if not isinstance(key, str):
        raise ThresholdError(
            f"{where}: the key must be text such as 'p99' or 'p95[spike]'; {FORMS}"
        )
    match = _KEY_RE.match(key)
    figure_name = match.group(1).lower() if match else ""
    if match is None or figure_name not in FIGURES:
        raise ThresholdError(f"{where}: {key!r} is not a threshold key; {FORMS}")
    figure = FIGURES[figure_name]
    phase = match.group(2)
    normal = figure.name + (f"[{phase}]" if phase else "")
    comparison, limit = _limit(figure, value, where)
    return Threshold(normal, figure.name, phase, comparison, limit)


def _limit(figure: Figure, value: Any, where: str) -> tuple[Comparison, float]:
    default: Comparison = "<=" if figure.upper else ">="
    if isinstance(value, bool) or value is None:
        raise ThresholdError(f"{where}: not a limit; {_forms_of(figure)}")
    if isinstance(value, (int, float)):
        comparison, text = default, None
        number = float(value)
    elif isinstance(value, str):
        match = _VALUE_RE.match(value)
        assert match is not None  # the pattern matches any text
        written = {"=<": "<=", "=>": ">="}.get(match.group(1) or "", match.group(1))
        comparison = written or default  # type: ignore[assignment]
        text = match.group(2)
        number = math.nan
    else:
        raise ThresholdError(f"{where}: not a limit; {_forms_of(figure)}")
    if (comparison in ("<", "<=")) != figure.upper:
        way = "at most ('<' or '<=')" if figure.upper else "at least ('>=' or '>')"
        raise ThresholdError(
            f"{where}: {figure.name} is limited from one side only: it must be {way}; "
            + _forms_of(figure)
        )
    if figure.kind == "latency":
        number = _latency(text, number, where, figure)
    else:
        number = _share(text, number, where, figure)
    return comparison, number


def _latency(text: str | None, number: float, where: str, figure: Figure) -> float:
    if text is None:
        raise ThresholdError(
            f"{where}: a latency limit needs its unit (a bare number could be seconds or "
            f"milliseconds); {_forms_of(figure)}"
        )
    match = _LATENCY_RE.match(text)
    if match is None:
        raise ThresholdError(f"{where}: not a latency; {_forms_of(figure)}")
    seconds = float(match.group(1)) * _LATENCY_UNITS[match.group(3).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ThresholdError(f"{where}: a latency limit must be longer than zero")
    return seconds


def _share(text: str | None, number: float, where: str, figure: Figure) -> float:
    if text is not None:
        match = _SHARE_RE.match(text)
        if match is None:
            raise ThresholdError(f"{where}: not a number or a percentage; {_forms_of(figure)}")
        number = float(match.group(1)) / (100 if match.group(3) else 1)
    if not math.isfinite(number) or number < 0:
        raise ThresholdError(f"{where}: must be a finite number of at least 0")
    if figure.kind == "share" and number > 1:
        raise ThresholdError(
            f"{where}: a share of requests is at most 100% (1.0); write '1%' or '0.01' for one "
            "in a hundred"
        )
    return number


def _forms_of(figure: Figure) -> str:
    if figure.kind == "latency":
        return f"{figure.name} ({figure.meaning}) takes '250ms', '0.3s' or '< 250ms'"
    if figure.kind == "share":
        return f"{figure.name} ({figure.meaning}) takes '1%', '0.01' or '< 1%'"
    return f"{figure.name} ({figure.meaning}) takes '>= 0.98', 0.98 or '98%'"


def _text_entries(text: str) -> dict[str, str]:
    """``"p99: 250ms, p95[spike]: 150ms, errors: 1%"``: ini ``soak_defaults`` has text only."""
    entries: dict[str, str] = {}
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        key, sep, limit = part.partition(":")
        if not sep:
            raise ThresholdError(
                f"thresholds={text!r}: {part.strip()!r} is not 'key: limit'; as text write e.g. "
                "'p99: 250ms, p95[spike]: 150ms, errors: 1%'"
            )
        entries[key.strip()] = limit.strip()
    return entries


# -- latency baselines' tolerance ---------------------------------------------------------------

_LATENCY_TOLERANCE_FORMS = "'20% + 5ms', '50%', '10ms', ('20%', '5ms') or True (the default)"


@dataclass(frozen=True)
class LatencyTolerance:
    """How much slower than its committed baseline a phase's p50/p95/p99 may be: a share of
    the baseline's figure plus an amount of time (the amount keeps a few-millisecond
    percentile's noise from failing: docs/latency-variation.txt)."""

    relative: float
    absolute: float  # seconds

    @classmethod
    def parse(cls, value: Any, *, name: str = "latency_tolerance") -> LatencyTolerance:
        """``"20% + 5ms"``, ``"50%"``, ``"10ms"``, ``("20%", "5ms")``; ``True``: the default."""
        if value is None or value is True:
            return DEFAULT_LATENCY_TOLERANCE
        if isinstance(value, LatencyTolerance):
            return value
        if isinstance(value, str):
            parts: list[Any] = value.split("+")
        elif isinstance(value, (list, tuple)) and value:
            parts = list(value)
        else:
            parts = [None]

        def bad(why: str = "") -> ThresholdError:
            return ThresholdError(
                f"{name}={value!r} is not a latency tolerance{why}; use a percentage of the "
                f"baseline's figure, a time, or both: {_LATENCY_TOLERANCE_FORMS}"
            )

        def share(text: str) -> float:
            match = _SHARE_RE.match(text)
            relative = float(match.group(1)) / 100 if match is not None else math.nan
            if not math.isfinite(relative):
                raise bad()
            return relative

        def time(part: str | float) -> float:
            match = _LATENCY_RE.match(part.strip()) if isinstance(part, str) else None
            if match is None:
                raise bad()
            absolute = float(match.group(1)) * _LATENCY_UNITS[match.group(3).lower()]
            if not math.isfinite(absolute):
                raise bad()
            return absolute

        relative, absolute = share_plus_amount(
            parts, share, time, bad, amounts="times", numbers=False
        )
        return cls(relative=relative, absolute=absolute)

    def allowed(self, expected: float) -> float:
        """The most a figure of ``expected`` seconds in the baseline may be now."""
        return expected * (1 + self.relative) + self.absolute

    def __str__(self) -> str:
        shown = []
        if self.relative:
            shown.append(f"{self.relative * 100:g}%")
        if self.absolute:
            shown.append(format_ms(self.absolute))
        return " + ".join(shown) or "0%"


#: Measured (docs/latency-variation.txt): on a busy two-core machine a phase's p99 of a few
#: milliseconds moved up to 7x between identical runs (2.4 to 18 ms in process, 13 to 38 ms
#: served); 50% + 20 ms covers every run there against every other.
DEFAULT_LATENCY_TOLERANCE = LatencyTolerance(relative=0.5, absolute=0.020)
