"""Parsing and formatting of sizes ("5MB", "64B"), durations ("90s", "10m") and rates."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_soak.errors import BaselineError, SoakError

_SIZE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size(value: str | int | float, *, name: str = "size") -> float:
    """Bytes for ``value``: a number of bytes or a string like ``"64B"``, ``"5MB"``, ``"1.5MiB"``.

    ``KB``/``MB`` are decimal (1000), ``KiB``/``MiB`` binary (1024), as in pytest-memray's docs.
    """
    if isinstance(value, bool):
        raise SoakError(
            f"{name}={value!r} is not a size; use bytes or a string like '64B' or '5MB'"
        )
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SoakError(f"{name}={value!r} must be a finite, non-negative number of bytes")
        return float(value)
    match = _SIZE_RE.match(str(value))
    if match is None or match.group(2).lower() not in _SIZE_FACTORS:
        raise SoakError(
            f"{name}={value!r} is not a size; use a number of bytes or a string like "
            "'64B', '512KB', '5MB', '1.5MiB'"
        )
    amount = float(match.group(1))
    if amount < 0:
        raise SoakError(f"{name}={value!r} must not be negative")
    return amount * _SIZE_FACTORS[match.group(2).lower()]


def parse_duration(value: str | int | float, *, name: str = "duration") -> float:
    """Seconds for ``value``: a number or a string like ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise SoakError(f"{name}={value!r} is not a duration; use seconds or '90s', '10m', '2h'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise SoakError(f"{name}={value!r} must be a positive number of seconds")
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    else:
        pos = 0
        seconds = 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos and text[pos : match.start()].strip():
                break
            seconds += float(match.group(1)) * _DURATION_FACTORS[match.group(2).lower()]
            pos = match.end()
        if pos == 0 or text[pos:].strip():
            raise SoakError(
                f"{name}={value!r} is not a duration; use seconds or a string like "
                "'500ms', '90s', '10m', '1h30m'"
            )
    if seconds <= 0:
        raise SoakError(f"{name}={value!r} must be longer than zero")
    return seconds


def format_bytes(value: float, *, signed: bool = False) -> str:
    """Human binary units: ``format_bytes(3_300_000) == '3.1 MiB'``."""
    sign = ""
    if value < 0:
        sign = "-"
    elif signed and value > 0:
        sign = "+"
    magnitude = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if magnitude < 1024 or unit == "GiB":
            if unit == "B":
                return f"{sign}{magnitude:.0f} {unit}"
            return f"{sign}{magnitude:.1f} {unit}"
        magnitude /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_figure(value: float, unit: str, *, signed: bool = False) -> str:
    """A figure in its metric's unit: bytes in KiB/MiB, anything else as a number and the unit."""
    if unit == "bytes":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.1f} {unit}" if abs(value) < 100 else f"{sign}{value:,.0f} {unit}"


def format_duration(seconds: float) -> str:
    """``format_duration(5400) == '1h30m'``; below a minute, seconds with one decimal."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def format_ms(seconds: float) -> str:
    """Latency in milliseconds with a precision that fits its size."""
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.2f}ms"
    if ms < 100:
        return f"{ms:.1f}ms"
    return f"{ms:.0f}ms"


_TOLERANCE_FORMS = "'20%', '1MB', '20% + 1MB' or ('20%', '1MB')"


@dataclass(frozen=True)
class Tolerance:
    """How much worse than its baseline a result may be: a share of the expected growth plus
    an amount. Both, because a share alone is nothing when the baseline is near zero, and an
    amount alone does not scale with a long nightly run."""

    relative: float
    absolute: float

    @classmethod
    def parse(
        cls,
        value: str | float | Sequence[str] | Tolerance | None,
        *,
        name: str = "tolerance",
    ) -> Tolerance:
        if value is None:
            return DEFAULT_TOLERANCE
        if isinstance(value, Tolerance):
            return value
        parts: list[Any]
        if isinstance(value, str):
            parts = value.split("+")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parts = [value]
        elif isinstance(value, Sequence) and value:
            parts = list(value)
        else:
            parts = [None]

        def bad(why: str = "") -> BaselineError:
            return BaselineError(
                f"{name}={value!r} is not a tolerance{why}; use a percentage of the baseline, "
                f"a size, or both: {_TOLERANCE_FORMS}"
            )

        def share(text: str) -> float:
            try:
                relative = float(text[:-1]) / 100
            except ValueError:
                raise bad() from None
            if not math.isfinite(relative) or relative < 0:
                raise bad(" (the percentage must be finite and >= 0)")
            return relative

        def size(part: str | float) -> float:
            try:
                return parse_size(part, name=name)
            except SoakError:
                raise bad() from None

        relative, absolute = share_plus_amount(parts, share, size, bad, amounts="sizes")
        return cls(relative=relative, absolute=absolute)

    def __str__(self) -> str:
        shown = []
        if self.relative:
            shown.append(f"{self.relative * 100:g}%")
        if self.absolute:
            shown.append(format_bytes(self.absolute))
        return " + ".join(shown) or "0%"


def share_plus_amount(
    parts: Sequence[Any],
    share: Callable[[str], float],
    amount: Callable[[str | float], float],
    bad: Callable[[str], Exception],
    *,
    amounts: str,
    numbers: bool = True,
) -> tuple[float, float]:
    """A tolerance's parts (``"20% + 1MB"`` split at ``+``): at most one percentage, read by
    ``share`` (the text ends in ``%``), and at most one amount, read by ``amount`` (a size, a
    time; a bare number too when ``numbers``): ``(relative, absolute)``, 0 for the one not
    given. ``bad(why)`` is the error for anything else (``why``: `` (two percentages)``,
    `` (two <amounts>)`` or empty)."""
    relative: float | None = None
    absolute: float | None = None
    for part in parts:
        text = part.strip() if isinstance(part, str) else None
        if text is not None and text.endswith("%"):
            if relative is not None:
                raise bad(" (two percentages)")
            relative = share(text)
        elif text or (numbers and isinstance(part, (int, float)) and not isinstance(part, bool)):
            if absolute is not None:
                raise bad(f" (two {amounts})")
            absolute = amount(part)
        else:
            raise bad("")
    return relative or 0.0, absolute or 0.0


DEFAULT_TOLERANCE = Tolerance(relative=0.25, absolute=0.0)
