"""The traffic format registry, detection by content, and ``load_traffic`` / ``parse_traffic``.

A gzip-compressed file (magic bytes ``1f 8b``) is decompressed first, whatever its name. Then each
registered format sniffs the first 64 KiB, in registration order, and the first that recognises
it parses the whole file. When none does, the file name's suffix picks the format, so a damaged
``.har`` still gets the HAR parser's precise error instead of "unknown format".
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest_soak.traffic.cache as traffic_cache
from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import goreplay, har, jsonl
from pytest_soak.traffic.model import Exchange, Skipped, Traffic

SNIFF_BYTES = 64 * 1024
_SHOWN_SKIPS = 5


@dataclass(frozen=True)
class TrafficFormat:
    """A traffic file format: how to recognise it and how to parse it.

    ``parse(data, path)`` returns the exchanges in file order with offsets in seconds from any
    origin, and what it deliberately skipped; it raises ``TrafficFormatError`` for anything else.
    ``looks_like`` is shown to users whose file was not recognised.
    """

    name: str
    sniff: Callable[[bytes], bool]
    parse: Callable[[bytes, str], tuple[list[Exchange], list[Skipped]]]
    looks_like: str
    suffixes: tuple[str, ...] = ()


FORMATS: dict[str, TrafficFormat] = {}


def register(traffic_format: TrafficFormat) -> None:
    """Add a format to ``FORMATS`` (it is sniffed after those registered before it)."""
    if traffic_format.name in FORMATS:
        raise ValueError(f"traffic format name={traffic_format.name!r} is already registered")
    FORMATS[traffic_format.name] = traffic_format


register(TrafficFormat("har", har.sniff, har.parse, har.LOOKS_LIKE, (".har",)))
register(TrafficFormat("jsonl", jsonl.sniff, jsonl.parse, jsonl.LOOKS_LIKE, (".jsonl", ".ndjson")))
register(TrafficFormat("goreplay", goreplay.sniff, goreplay.parse, goreplay.LOOKS_LIKE, (".gor",)))


def load_traffic(
    path: str | os.PathLike[str], format: str | None = None, *, cache: bool | None = None
) -> Traffic:
    """Read and validate a traffic file; ``format`` (a ``FORMATS`` name) skips detection.

    A file of 1 MiB or more is parsed once: the result is kept in ``.soak-cache/`` beside it
    and read from there next time (``traffic/cache.py``). ``cache=False`` (or
    ``PYTEST_SOAK_TRAFFIC_CACHE=0`` when ``cache`` is not given) turns that off; ``cache=True``
    caches a file of any size."""
    shown = os.fspath(path)
    parsers = [(name, fmt.parse) for name, fmt in FORMATS.items()]
    stored = traffic_cache.entry(Path(path).absolute(), format, parsers, cache)
    cached = stored.load(shown) if stored is not None else None
    if cached is not None:
        return cached
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise TrafficFormatError(
            f"{shown}: no such traffic file (looked in {os.path.abspath(shown)}); check the path"
        ) from None
    except IsADirectoryError:
        raise TrafficFormatError(
            f"{shown}: is a directory, not a traffic file; pass one file inside it"
        ) from None
    except OSError as exc:
        raise TrafficFormatError(
            f"{shown}: could not be read ({exc.strerror or exc}); check its permissions"
        ) from exc
    with traffic_cache.gc_paused():  # no collections over the objects being made
        traffic = parse_traffic(data, shown, format)
    if stored is not None:
        stored.save(data, traffic)
    return traffic


def parse_traffic(data: bytes, path: str = "<memory>", format: str | None = None) -> Traffic:
    """Parse traffic file content; ``path`` is only used in messages and for the suffix hint."""
    data = _decompress(data, path)
    if not data or data.isspace():  # (data.strip() would copy a big file)
        raise TrafficFormatError(f"{path}: is empty; record some traffic into it first")
    chosen = _choose(data, path, format)
    exchanges, skipped = chosen.parse(data, path)
    if not exchanges:
        raise TrafficFormatError(f"{path}: has no usable exchanges{_skip_summary(skipped)}")
    ordered = sorted(exchanges, key=lambda exchange: exchange.offset)
    start = ordered[0].offset
    rebased = tuple(replace(exchange, offset=exchange.offset - start) for exchange in ordered)
    return Traffic(rebased, path=path, format=chosen.name, skipped=tuple(skipped))


def _decompress(data: bytes, path: str) -> bytes:
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise TrafficFormatError(
            f"{path}: starts like gzip but does not decompress ({exc}); the file looks truncated "
            "or corrupt: check it with 'gzip -t' and copy it again"
        ) from exc


def _choose(data: bytes, path: str, name: str | None) -> TrafficFormat:
    if name is not None:
        if name.lower() not in FORMATS:
            raise TrafficFormatError(
                f"{path}: format={name!r} is not a traffic format; use one of {sorted(FORMATS)} "
                "or None to detect it"
            )
        return FORMATS[name.lower()]
    head = data[:SNIFF_BYTES]
    for candidate in FORMATS.values():
        if candidate.sniff(head):
            return candidate
    base = path.lower().removesuffix(".gz")
    for candidate in FORMATS.values():
        if base.endswith(candidate.suffixes):
            return candidate
    kinds = "\n".join(f"  - {fmt.name}: {fmt.looks_like}" for fmt in FORMATS.values())
    raise TrafficFormatError(
        f"{path}: is not a traffic file pytest-soak can read; it starts with {head[:40]!r}. "
        f"Tried {', '.join(FORMATS)}:\n{kinds}\nConvert it to one of these, or pass format= "
        "to force one."
    )


def _skip_summary(skipped: list[Skipped]) -> str:
    if not skipped:
        return "; add at least one request to it"
    lines = [f"  - {skip.source}: {skip.reason}" for skip in skipped[:_SHOWN_SKIPS]]
    if len(skipped) > _SHOWN_SKIPS:
        lines.append(f"  - … and {len(skipped) - _SHOWN_SKIPS} more")
    return "; every entry was skipped:\n" + "\n".join(lines)
