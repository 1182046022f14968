"""The date-times recordings carry, as seconds since the Unix epoch: ISO 8601 / RFC 3339
(Speedscale, proxymock, Envoy's ``START_TIME``) and the access-log time of nginx and Apache
(``10/Oct/2000:13:55:36 -0700``). Both return ``None`` for text that is not one, so each parser
words its own message."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone

_ISO8601 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?"
    r"(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_ACCESS_LOG = re.compile(
    r"([0-9]{2})/([A-Za-z]{3})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?"
    r" ([+-][0-9]{4})"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}


def iso8601(text: str) -> float | None:
    """``2026-06-12T18:12:15.100561Z`` (any zone; none means UTC; up to nanoseconds)."""
    match = _ISO8601.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    return _seconds(
        (int(year), int(month), int(day), int(hour), int(minute), int(second)), fraction, zone
    )


@functools.lru_cache(maxsize=4096)  # a busy log repeats each second many times
def log_time(text: str) -> float | None:
    """``10/Oct/2000:13:55:36 -0700`` (nginx ``$time_local``, Apache ``%t``; a fraction of a
    second is accepted too)."""
    match = _ACCESS_LOG.fullmatch(text.strip())
    if match is None:
        return None
    day, month_name, year, hour, minute, second, fraction, zone = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    return _seconds(
        (int(year), month, int(day), int(hour), int(minute), int(second)), fraction, zone
    )


def _seconds(fields: tuple[int, int, int, int, int, int], fraction: str | None,
             zone: str | None) -> float | None:  # fmt: skip
    year, month, day, hour, minute, second = fields
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone_of(zone))
        seconds = moment.timestamp()
    except (ValueError, OverflowError):
        return None  # 31 February, hour 25, a zone of a day or more
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


@functools.lru_cache(maxsize=64)
def zone_of(text: str | None) -> timezone:
    """The zone of an RFC 3339 offset (``Z``, ``+02:00``, ``-0530``; ``None`` is UTC).

    Raises ``ValueError`` for an offset of a day or more."""
    if text is None or text in ("Z", "z"):
        return timezone.utc
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if text[0] == "-" else offset)  # ValueError from a day or more
