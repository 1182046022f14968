"""GoReplay ``.gor`` captures (``gor --input-raw :80 --output-file requests.gor``).

A file is a series of payloads separated by the line ``🐵🙈🙉``. Each payload starts with a
header line ``<type> <id> <timestamp-ns>`` (older GoReplay) or ``<type> <id> <timestamp-ns>
<latency-ns>``, then raw HTTP/1.x bytes. Type 1 is a request, 2 the original response to the
request with the same id, 3 a response from a replay (not used, listed as skipped).

The raw HTTP is parsed by h11, a strict and well-tested HTTP/1.1 parser, rather than by hand:
chunked bodies, ``Content-Length``, header folding and bare-LF lines are its business. Bodies that
GoReplay truncated (bigger than its capture buffer) are kept as captured; their
``Content-Length`` header still says the original length. ``Exchange.source`` is ``"payload N"``,
1-based; messages also give the line the payload starts on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import h11

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import is_target, quote, split_url
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped

LOOKS_LIKE = (
    "GoReplay capture (gor --output-file): payloads that start with a line "
    "'<type> <id> <timestamp-ns> [latency-ns]' followed by raw HTTP/1.x, "
    "separated by lines '🐵🙈🙉'"
)
SEPARATOR = "\n🐵🙈🙉\n".encode()

_HEADER = re.compile(rb"([123]) ([0-9a-fA-F]+) (\d+)(?: (-?\d+))?")
_SNIFF = re.compile(rb"[123] [0-9a-fA-F]+ \d+(?: -?\d+)?\r?\n")
_REQUEST, _RESPONSE, _REPLAYED = b"1", b"2", b"3"
_HEADER_SHAPE = "'<type> <id> <timestamp-ns> [latency-ns]'"
_Head = TypeVar("_Head", h11.Request, h11.Response)


class _Invalid(Exception):
    """The payload is malformed: the message says what is wrong."""


class _Skip(Exception):
    """The payload is well formed but cannot be used: the message says why."""


@dataclass(frozen=True, slots=True)
class _Payload:
    number: int
    line: int
    kind: bytes
    id: bytes
    timestamp: int
    raw: bytes

    @property
    def source(self) -> str:
        return f"payload {self.number}"


def sniff(head: bytes) -> bool:
    """The first line is a GoReplay payload header."""
    return _SNIFF.match(head) is not None


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    requests: list[tuple[int, Exchange]] = []
    first_by_id: dict[bytes, int] = {}
    responses: list[_Payload] = []
    skipped: list[Skipped] = []
    for payload in _payloads(data, path):
        with _problems(payload, path, skipped):
            if payload.kind == _REPLAYED:
                raise _Skip("replayed response (type 3) is not used")
            if payload.kind == _RESPONSE:
                responses.append(payload)
                continue
            exchange = _request(payload)
            first_by_id.setdefault(payload.id, len(requests))
            requests.append((payload.timestamp, exchange))
    answered: set[int] = set()
    for payload in responses:
        with _problems(payload, path, skipped):
            index = first_by_id.get(payload.id)
            if index is None or index in answered:
                which = "no request" if index is None else "another response"
                raise _Skip(f"response (type 2) to id {payload.id.decode()} has {which} before")
            timestamp, request = requests[index]
            response = _response(payload, request.method)
            requests[index] = (timestamp, replace(request, response=response))
            answered.add(index)
    start = min((timestamp for timestamp, _ in requests), default=0)
    return [replace(e, offset=(t - start) / 1e9) for t, e in requests], skipped


def _payloads(data: bytes, path: str) -> Iterator[_Payload]:
    if data.endswith(SEPARATOR[:-1]):
        data += b"\n"
    line = 1
    for number, chunk in enumerate(data.split(SEPARATOR), start=1):
        start, line = line, line + chunk.count(b"\n") + 2
        if not chunk.strip():
            continue
        head, _, raw = chunk.partition(b"\n")
        match = _HEADER.fullmatch(head.rstrip(b"\r"))
        if match is None:
            shown = quote(head.decode("utf-8", "replace"))
            raise TrafficFormatError(
                f"{path}: payload {number} (line {start}): header {shown} is not {_HEADER_SHAPE}; "
                "every payload starts with such a line: the file is damaged or not a GoReplay "
                "capture"
            )
        kind, payload_id, timestamp, _latency = match.groups()
        yield _Payload(number, start, kind, payload_id, int(timestamp), raw)


@contextmanager
def _problems(payload: _Payload, path: str, skipped: list[Skipped]) -> Iterator[None]:
    """Records a ``_Skip`` as skipped and turns an ``_Invalid`` into a ``TrafficFormatError``."""
    try:
        yield
    except _Skip as skip:
        skipped.append(Skipped(payload.source, str(skip)))
    except _Invalid as exc:
        raise TrafficFormatError(
            f"{path}: {payload.source} (line {payload.line}): {exc}; fix or delete this payload"
        ) from None


def _request(payload: _Payload) -> Exchange:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=len(payload.raw) + 1)
    head, body = _read(connection, payload.raw, h11.Request)
    headers = _headers(head.headers.raw_items())
    target = head.target.decode("latin-1")
    host = next((value for name, value in headers if name.lower() == "host"), None)
    if not is_target(target):
        host, target = _absolute(target)
    return Exchange(
        offset=0.0,
        method=head.method.decode("latin-1"),
        target=target,
        headers=headers,
        body=body,
        host=host,
        source=payload.source,
    )


def _absolute(target: str) -> tuple[str, str]:
    try:
        scheme, host, path = split_url(target)
    except ValueError:
        scheme, host, path = "", None, ""
    if scheme not in ("http", "https") or not host or not is_target(path):
        raise _Skip(f"request target {quote(target)} is neither a path nor an http(s) URL")
    return host, path


def _response(payload: _Payload, method: str) -> RecordedResponse:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=len(payload.raw) + 1)
    # h11 frames a response by its request (a HEAD response has no body): replay the method.
    connection.send(h11.Request(method=method, target="/", headers=[("Host", "recorded")]))
    connection.send(h11.EndOfMessage())
    head, body = _read(connection, payload.raw, h11.Response)
    return RecordedResponse(head.status_code, _headers(head.headers.raw_items()), body)


def _read(connection: h11.Connection, raw: bytes, kind: type[_Head]) -> tuple[_Head, bytes]:
    """The message head and as much of its body as the payload holds (GoReplay may cut it)."""
    what = kind.__name__.lower()
    connection.receive_data(raw)
    head: _Head | None = None
    body = bytearray()
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, kind):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif not isinstance(event, h11.InformationalResponse):
                break  # EndOfMessage, or NEED_DATA when the payload was cut
    except h11.ProtocolError as exc:
        raise _Invalid(f"not a valid HTTP/1.x {what} ({exc})") from None
    if head is None:
        raise _Skip(f"no complete HTTP {what} head: GoReplay cut the payload, or it is not HTTP")
    return head, bytes(body)


def _headers(raw: list[tuple[bytes, bytes]]) -> Headers:
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)
