"""Recorded outbound calls grouped into stubs: one stub per request signature.

Each recorded exchange with a response becomes one response of the stub for its request
signature: method, host (when ``match_host``), path, the exact set of query parameters, and
optionally the JSON body (``match_body``) and named headers (``match_headers``). Several
recordings of one signature are served in recorded order, then again from the first. Recorded
latency is replayed times ``latency_factor`` when one is given.

The readers (``har``, ``goreplay``, ``rrpair``, ``jsonl``, ``proxymock``, ``vcr``) turn a file
into ``Recording`` s; ``Skips`` lists what they could not use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_soak.errors import MockDefinitionError, SoakError
from pytest_soak.mocks.definitions import (
    Delay,
    MockDefinitions,
    RequestPattern,
    Response,
    Stub,
    UrlPattern,
    ValuePattern,
    canonical_json,
)
from pytest_soak.traffic.model import Exchange, Traffic

#: Skipped exchanges listed by name before the rest are only counted.
_SHOWN_SKIPS = 20
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded outbound call. ``decoded``: the body is stored decompressed (a recorded
    ``Content-Encoding`` header no longer applies to it)."""

    method: str
    host: str | None
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    latency_ms: float | None = None
    decoded: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SignatureOptions:
    match_host: bool = True
    match_body: bool = False
    match_headers: tuple[str, ...] = ()
    latency_factor: float | None = None


def stubs_from_recordings(
    recordings: Iterable[Recording], options: SignatureOptions
) -> tuple[Stub, ...]:
    """One stub per signature, its responses in recorded order."""
    groups: dict[tuple[Any, ...], list[Recording]] = {}
    for recording in recordings:
        groups.setdefault(_signature(recording, options), []).append(recording)
    stubs: list[Stub] = []
    names: dict[str, int] = {}
    for recorded in groups.values():
        first = recorded[0]
        base = f"{first.method} {_bare(first.host) if options.match_host and first.host else ''}"
        base += urlsplit(first.target).path or "/"
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base} #{names[base]}"
        stubs.append(
            Stub(
                name=name,
                request=_pattern(first, options),
                responses=tuple(_response(r, options) for r in recorded),
            )
        )
    return tuple(stubs)


def _signature(r: Recording, options: SignatureOptions) -> tuple[Any, ...]:
    split = urlsplit(r.target)
    return (
        r.method.upper(),
        _bare(r.host) if options.match_host and r.host else None,
        split.path or "/",
        tuple(sorted(parse_qsl(split.query, keep_blank_values=True))),
        _body_key(r.body) if options.match_body else None,
        tuple(_header(r.headers, name) for name in options.match_headers),
    )


def _body_key(body: bytes) -> str:
    try:
        return "json:" + canonical_json(json.loads(body))
    except (ValueError, RecursionError):
        return "text:" + body.decode("utf-8", "replace")


def _pattern(r: Recording, options: SignatureOptions) -> RequestPattern:
    split = urlsplit(r.target)
    body: tuple[ValuePattern, ...] = ()
    if options.match_body:
        key = _body_key(r.body)
        if key.startswith("json:"):
            body = (ValuePattern("equalToJson", json.loads(key[5:])),)
        elif r.body:
            body = (ValuePattern("equalTo", key[5:]),)
        else:
            body = (ValuePattern("absent", True),)
    headers: list[tuple[str, ValuePattern]] = []
    for name in options.match_headers:
        value = _header(r.headers, name)
        headers.append(
            (
                name,
                ValuePattern("absent", True) if value is None else ValuePattern("equalTo", value),
            )
        )
    return RequestPattern(
        method=r.method.upper(),
        url=UrlPattern("urlPath", split.path or "/"),
        headers=tuple(headers),
        body=body,
        host=_bare(r.host) if options.match_host and r.host else None,
        query_exact=tuple(sorted(parse_qsl(split.query, keep_blank_values=True))),
    )


def _response(r: Recording, options: SignatureOptions) -> Response:
    headers = []
    for name, value in r.response_headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if lowered == "content-encoding" and (
            r.decoded
            or (value.strip().lower() == "gzip" and not r.response_body.startswith(b"\x1f\x8b"))
        ):
            continue
        headers.append((name, value))
    delays: tuple[Delay, ...] = ()
    if options.latency_factor and r.latency_ms:
        delays = (Delay("fixed", max(0.0, r.latency_ms * options.latency_factor)),)
    return Response(r.status, tuple(headers), r.response_body, r.reason, delays)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _bare(host: str | None) -> str:
    host = (host or "").lower()
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Skips:
    """Exchanges that cannot be mocks (no response, inbound…), listed briefly."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.lines) < _SHOWN_SKIPS:
            self.lines.append(line)
        else:
            self.more += 1

    def listed(self) -> tuple[str, ...]:
        if self.more:
            return (*self.lines, f"… and {self.more} more not used")
        return tuple(self.lines)


def from_traffic(traffic: Traffic, skips: Skips, latencies: dict[str, float] | None = None,
                 decoded: bool = False) -> list[Recording]:  # fmt: skip
    recordings: list[Recording] = []
    for exchange in traffic:
        recording = _from_exchange(exchange, latencies or {}, decoded)
        if recording is None:
            skips.add(f"{traffic.path}: {exchange.source or exchange.target}: no recorded response")
        else:
            recordings.append(recording)
    return recordings


def _from_exchange(
    exchange: Exchange, latencies: dict[str, float], decoded: bool
) -> Recording | None:
    response = exchange.response
    if response is None:
        return None
    return Recording(
        method=exchange.method,
        host=exchange.host or exchange.header("host"),
        target=exchange.target,
        headers=exchange.headers,
        body=exchange.body,
        status=response.status,
        response_headers=response.headers,
        response_body=response.body,
        latency_ms=latencies.get(exchange.source),
        decoded=decoded,
    )


def read_traffic(path: Path, shown: str, format: str) -> tuple[bytes, Traffic]:
    """A file in one of the traffic formats (``pytest_soak.traffic``): its bytes and what they
    parse to; errors are ``MockDefinitionError``."""
    from pytest_soak.traffic import parse_traffic

    data = read_bytes(path, shown)
    try:
        return data, parse_traffic(data, shown, format)
    except SoakError as exc:
        raise MockDefinitionError(f"{exc}") from None


def starts_like(pattern: bytes) -> Callable[[bytes], bool]:
    """A ``sniff``: the file's first bytes match the regular expression ``pattern``."""
    start = re.compile(pattern)
    return lambda head: start.match(head) is not None


def read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MockDefinitionError(f"{shown}: could not be read ({exc.strerror or exc})") from None


def definitions(
    recordings: list[Recording],
    skips: Skips,
    *,
    source: str,
    format: str,
    options: SignatureOptions,
) -> MockDefinitions:
    if not recordings:
        shown = skips.listed()
        listed = "".join(f"\n  - {line}" for line in shown[:5])
        if len(shown) > 5 or skips.more:
            listed += f"\n  - … and {len(shown) - 5 + skips.more} more"
        raise MockDefinitionError(
            f"{source}: has no recorded outbound exchange with a response to mock{listed}"
        )
    return MockDefinitions(
        stubs_from_recordings(recordings, options),
        source=source,
        format=format,
        ignored=skips.listed(),
    )
