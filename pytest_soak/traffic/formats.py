"""The traffic format registry, detection by content, and ``load_traffic`` / ``parse_traffic``.

A gzip-compressed file (magic bytes ``1f 8b``) is decompressed first, whatever its name. Then each
registered format sniffs the first 64 KiB, in registration order, and the first that recognises
it parses the whole file. When none does, the file name's suffix picks the format, so a damaged
``.har`` still gets the HAR parser's precise error instead of "unknown format". A folder is read
by the first format with a ``read_folder`` that finds its files in it (a proxymock recording).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

import pytest_soak.traffic.cache as traffic_cache
from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import access_log, goreplay, har, jsonl, proxymock, rrpair
from pytest_soak.traffic.model import Exchange, Skipped, Traffic

SNIFF_BYTES = 64 * 1024
_SHOWN_SKIPS = 5


@dataclass(frozen=True)
class TrafficFormat:
    """A traffic file format: how to recognise it and how to parse it.

    ``parse(data, path)`` returns the exchanges in file order with offsets in seconds from any
    origin, and what it deliberately skipped; it raises ``TrafficFormatError`` for anything else.
    ``looks_like`` is shown to users whose file was not recognised. ``missing`` names what the
    format does not record (``"request bodies"``…): ``Traffic.missing``, repeated in the report.
    ``read_folder(folder, shown)`` parses a folder of the format's files like ``parse``, or
    returns ``None`` when the folder holds none.
    """

    name: str
    sniff: Callable[[bytes], bool]
    parse: Callable[[bytes, str], tuple[list[Exchange], list[Skipped]]]
    looks_like: str
    suffixes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    read_folder: Callable[[Path, str], tuple[list[Exchange], list[Skipped]] | None] | None = None


FORMATS: dict[str, TrafficFormat] = {}


def register(traffic_format: TrafficFormat) -> None:
    """Add a format to ``FORMATS`` (it is sniffed after those registered before it)."""
    if traffic_format.name in FORMATS:
        raise ValueError(f"traffic format name={traffic_format.name!r} is already registered")
    FORMATS[traffic_format.name] = traffic_format


register(TrafficFormat("har", har.sniff, har.parse, har.LOOKS_LIKE, (".har",)))
register(TrafficFormat("jsonl", jsonl.sniff, jsonl.parse, jsonl.LOOKS_LIKE, (".jsonl", ".ndjson")))
register(TrafficFormat("goreplay", goreplay.sniff, goreplay.parse, goreplay.LOOKS_LIKE, (".gor",)))
register(TrafficFormat("rrpair", rrpair.sniff, rrpair.parse, rrpair.LOOKS_LIKE))
register(
    TrafficFormat(
        "proxymock", proxymock.sniff, proxymock.parse, proxymock.LOOKS_LIKE, (".md",),
        read_folder=proxymock.read_folder,
    )
)  # fmt: skip
register(
    TrafficFormat(
        "combined-log", access_log.sniff_combined, access_log.parse_combined,
        access_log.COMBINED_LOOKS_LIKE, (".log",), missing=access_log.MISSING_COMBINED,
    )
)  # fmt: skip
register(
    TrafficFormat(
        "envoy-log", access_log.sniff_envoy, access_log.parse_envoy, access_log.ENVOY_LOOKS_LIKE,
        (".log",), missing=access_log.MISSING_ENVOY,
    )
)  # fmt: skip


def load_traffic(
    path: str | os.PathLike[str], format: str | None = None, *, cache: bool | None = None
) -> Traffic:
    """Read and validate a traffic file; ``format`` (a ``FORMATS`` name) skips detection.

    A file of 1 MiB or more is parsed once: the result is kept in ``.soak-cache/`` beside it
    and read from there next time (``traffic/cache.py``). ``cache=False`` (or
    ``PYTEST_SOAK_TRAFFIC_CACHE=0`` when ``cache`` is not given) turns that off; ``cache=True``
    caches a file of any size. A ``Traffic`` from the cache (the first load that writes it
    too) reads its exchanges from the cache file a chunk at a time (``traffic/stored.py``):
    it holds a few bytes per chunk of 256 exchanges, and what is read of it is built then."""
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
        return _load_folder(Path(path), shown, format)
    except OSError as exc:
        raise TrafficFormatError(
            f"{shown}: could not be read ({exc.strerror or exc}); check its permissions"
        ) from exc
    with traffic_cache.gc_paused():  # no collections over the objects being made
        traffic = parse_traffic(data, shown, format)
    if stored is not None:  # the stored Traffic reads its exchanges from the cache file
        return stored.save(data, traffic) or traffic
    return traffic


def parse_traffic(data: bytes, path: str = "<memory>", format: str | None = None) -> Traffic:
    """Parse traffic file content; ``path`` is only used in messages and for the suffix hint."""
    data = _decompress(data, path)
    if not data or data.isspace():  # (data.strip() would copy a big file)
        raise TrafficFormatError(f"{path}: is empty; record some traffic into it first")
    chosen = _choose(data, path, format)
    exchanges, skipped = chosen.parse(data, path)
    return _traffic(exchanges, skipped, path, chosen)


def _load_folder(folder: Path, shown: str, name: str | None) -> Traffic:
    for candidate in FORMATS.values():
        if candidate.read_folder is None or (name and name.lower() != candidate.name):
            continue
        found = candidate.read_folder(folder, shown)
        if found is not None:
            return _traffic(*found, shown, candidate)
    kinds = ", ".join(f.name for f in FORMATS.values() if f.read_folder is not None)
    raise TrafficFormatError(
        f"{shown}: is a directory, not a traffic file; pass one file inside it (a folder is "
        f"read only as a recording of {kinds})"
    )


def _traffic(
    exchanges: list[Exchange], skipped: list[Skipped], path: str, chosen: TrafficFormat
) -> Traffic:
    """The exchanges sorted by offset (stably) and rebased to start at 0."""
    if not exchanges:
        raise TrafficFormatError(f"{path}: has no usable exchanges{_skip_summary(skipped)}")
    ordered = sorted(exchanges, key=attrgetter("offset"))
    start = ordered[0].offset
    if start == 0:
        rebased = tuple(ordered)  # already from 0: no copy of every exchange
    else:
        rebased = tuple(replace(exchange, offset=exchange.offset - start) for exchange in ordered)
    return Traffic(
        rebased, path=path, format=chosen.name, skipped=tuple(skipped), missing=chosen.missing
    )


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
