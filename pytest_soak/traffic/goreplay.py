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

For speed (a capture is often hundreds of MB), a *plain* message (CRLF lines that h11's own
grammar accepts, one ``Host``, at most one framing header, complete) is read by a few regular
expressions built from that grammar, to exactly what h11 gives for it, and header lines already
seen are not read again; every other message goes to h11, which also words every error.
``parse_checked`` reads every message with h11: the tests check the two agree.

The plain reading is one pass over the file: a payload's header line and its request or status
line are one match, its head is cut into lines once, and each line is looked up in a table of
lines already read (so a header repeated 200,000 times is checked and decoded once). Responses
are read in that pass too, as the answer to neither HEAD nor CONNECT, and matched to their
request at once when it is already read; the others wait for the end of the file (h11 frames a
response by its request's method, and responses are matched in file order). What bounds the
speed is the per-line work CPython does for that table, allocating, hashing and looking up each
line (and reading the lines it has not seen): about 40% of the time on
``benchmarks/traffic_load.py``'s capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import count
from typing import NamedTuple, TypeVar, cast

import h11

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import host_and_target, quote
from pytest_soak.traffic.model import (
    Exchange,
    Headers,
    RecordedResponse,
    Shared,
    Skipped,
    trusted_exchange,
    trusted_response,
)

LOOKS_LIKE = (
    "GoReplay capture (gor --output-file): payloads that start with a line "
    "'<type> <id> <timestamp-ns> [latency-ns]' followed by raw HTTP/1.x, "
    "separated by lines '🐵🙈🙉'"
)
SEPARATOR = "\n🐵🙈🙉\n".encode()

_HEADER = re.compile(rb"([123]) ([0-9a-fA-F]+) (\d+)(?: (-?\d+))?\r*")
_HEADER_LINE = re.compile(rb"([123]) ([0-9a-fA-F]+) (\d+)(?: -?\d+)?\r*\n")
_SNIFF = re.compile(rb"[123] [0-9a-fA-F]+ \d+(?: -?\d+)?\r?\n")
_BLANK = re.compile(rb"\s*")
_REQUEST, _RESPONSE, _REPLAYED = b"1", b"2", b"3"
_HEADER_SHAPE = "'<type> <id> <timestamp-ns> [latency-ns]'"
_Head = TypeVar("_Head", h11.Request, h11.Response)
# timestamp (ns), method, target, headers, body, host, source
_Parts = tuple[int, str, str, Headers, bytes, "str | None", str]

# A plain head, read without h11: its grammar (h11/_abnf.py) on CRLF lines. A header line is
# token ":" OWS [field-content] OWS; since field-content is visible characters with single
# spaces or tabs between, that is "anything but NUL, CR, LF, VT, FF after the colon" (the
# value is what is left once spaces and tabs are stripped from both ends).
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
# The header line of a request or response payload and its request or status line, in one step.
_PLAIN_START = re.compile(
    rb"([12]) ([0-9a-fA-F]+) (\d+)(?: -?\d+)?\r*\n"
    rb"(?:(%s) ([\x21-\x7e]+) HTTP/1\.[01]|HTTP/1\.[01] ([0-9]{3})(?: [^\x00\n\r\x0b\x0c]*)?)\r\n"
    % _TOKEN
)
_FAST_LINE = re.compile(rb"(%s):[ \t]*([^\x00\n\r\x0b\x0c]*)" % _TOKEN)  # name, value + OWS
_FAST_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,20})[ \t]*\r\n")
_FAST_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[ \t]*(chunked)[ \t]*\r\n")
_FAST_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*\r\n")
_NO_FRAMING, _CHUNKED = -1, -2
_SEEN_LINES = 100_000  # header lines remembered (then forgotten, to bound the parser's memory)


class _Invalid(Exception):
    """The payload is malformed: the message says what is wrong."""


class _Skip(Exception):
    """The payload is well formed but cannot be used: the message says why."""


class _Payload(NamedTuple):
    """A payload read by its header line (not the plain case): its HTTP bytes are
    ``data[start:end]``."""

    kind: bytes
    id: bytes
    timestamp: int
    start: int
    end: int


def sniff(head: bytes) -> bool:
    """The first line is a GoReplay payload header."""
    return _SNIFF.match(head) is not None


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    """The requests of a capture in file order with their original responses, and the
    payloads skipped (and why)."""
    return _parse(data, path, _Reader(Shared()))


def parse_checked(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    """``parse`` with every message read by h11 (``parse`` reads plain ones without it, to the
    same result): the reference the fast reading is tested against."""
    return _parse(data, path, _Reader(Shared(), fast=False))


def _parse(data: bytes, path: str, reader: _Reader) -> tuple[list[Exchange], list[Skipped]]:
    if data.endswith(SEPARATOR[:-1]):
        data += b"\n"
    requests: list[_Parts] = []
    answers: list[RecordedResponse | None] = []  # each request's response, once one is matched
    first_by_id: dict[bytes, int] = {}
    # Responses are matched to requests in file order. A plain one whose request is known is
    # matched at once; one read by h11, or to a HEAD or CONNECT request (h11 frames it by the
    # method), or whose request is not known yet, waits for the end, and so does any later one
    # with its id: (number, offset, stop, id, read without h11 or None).
    waiting: list[tuple[int, int, int, bytes, RecordedResponse | None]] = []
    waiting_ids: set[bytes] = set()
    unmatched: list[tuple[int, Skipped]] = []  # responses skipped, listed after the requests
    skipped: list[Skipped] = []
    plain = _PLAIN_START.match if reader.fast else _never
    for number, offset, stop in _places(data):
        try:
            match = plain(data, offset, stop)
            if match is not None:  # the usual case: a plain message, read without h11
                kind, payload_id, timestamp, method, target, status = match.groups()
                start = match.end() - 2  # at the CRLF that ends the request or status line
                if kind == _REQUEST and method is not None:
                    parts = reader.fast_request(
                        data, start, stop, method, target, timestamp, number
                    )
                    if parts is not None:
                        first_by_id.setdefault(payload_id, len(requests))
                        requests.append(parts)
                        answers.append(None)
                        continue
                elif kind == _RESPONSE and status is not None:
                    fast = reader.fast_response(data, start, stop, status)
                    if fast is not None:
                        index = first_by_id.get(payload_id)
                        if (
                            index is None
                            or payload_id in waiting_ids
                            or requests[index][1] in ("HEAD", "CONNECT")
                        ):
                            waiting.append((number, offset, stop, payload_id, fast))
                            waiting_ids.add(payload_id)
                        elif answers[index] is None:
                            answers[index] = fast
                        else:
                            reason = _unmatched(payload_id, index)
                            unmatched.append((number, Skipped(f"payload {number}", reason)))
                        continue
            payload = _payload(data, path, number, offset, stop)
            if payload is None:
                continue  # blank
            if payload.kind == _REPLAYED:
                raise _Skip("replayed response (type 3) is not used")
            if payload.kind == _RESPONSE:
                waiting.append((number, offset, stop, payload.id, None))
                waiting_ids.add(payload.id)
                continue
            parts = reader.request(data, payload.start, payload.end, payload.timestamp, number)
            first_by_id.setdefault(payload.id, len(requests))
            requests.append(parts)
            answers.append(None)
        except _Skip as skip:
            skipped.append(Skipped(f"payload {number}", str(skip)))
        except _Invalid as exc:
            raise _error(data, number, offset, path, exc) from None
    for number, offset, stop, payload_id, fast in waiting:
        try:
            index = first_by_id.get(payload_id)
            if index is None or answers[index] is not None:
                raise _Skip(_unmatched(payload_id, index))
            method = requests[index][1]
            if fast is None or method in ("HEAD", "CONNECT"):  # h11 frames these by the method
                payload = cast(_Payload, _payload(data, path, number, offset, stop))
                fast = reader.response(data, payload.start, stop, method)
            answers[index] = fast
        except _Skip as skip:
            unmatched.append((number, Skipped(f"payload {number}", str(skip))))
        except _Invalid as exc:
            raise _error(data, number, offset, path, exc) from None
    skipped += [skip for _, skip in sorted(unmatched, key=lambda numbered: numbered[0])]
    first = min((request[0] for request in requests), default=0)
    # Every target is a path (fields.host_and_target's, or a plain request line's "/…"), so
    # Exchange's own check of it is not made again.
    return [
        trusted_exchange((t - first) / 1e9, method, target, headers, body, answer, host, source)
        for (t, method, target, headers, body, host, source), answer in zip(
            requests, answers, strict=True
        )
    ], skipped


def _unmatched(payload_id: bytes, index: int | None) -> str:
    """Why a response is skipped: no request with its id, or one that has a response already."""
    which = "no request" if index is None else "another response"
    return f"response (type 2) to id {payload_id.decode()} has {which} before"


def _never(data: bytes, start: int, stop: int) -> None:
    """``parse_checked``'s stand-in for ``_PLAIN_START.match``: no message is plain."""
    return None


def _places(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(number, offset, stop)`` of each payload, 1-based: its bytes are ``data[offset:stop]``
    (no copies)."""
    find, offset = data.find, 0
    for number in count(1):
        end = find(SEPARATOR, offset)
        if end < 0:
            yield number, offset, len(data)
            return
        yield number, offset, end
        offset = end + len(SEPARATOR)


def _payload(data: bytes, path: str, number: int, offset: int, stop: int) -> _Payload | None:
    """The payload in ``data[offset:stop]`` by its header line, or None if it is blank."""
    match = _HEADER_LINE.match(data, offset, stop)
    if match is not None:  # the usual case, in one step
        kind, payload_id, timestamp = match.groups()
        return _Payload(kind, payload_id, int(timestamp), match.end(), stop)
    if _BLANK.fullmatch(data, offset, stop) is not None:
        return None
    newline = data.find(b"\n", offset, stop)
    head_end = stop if newline < 0 else newline
    match = _HEADER.fullmatch(data, offset, head_end)
    if match is None:
        shown = quote(data[offset:head_end].decode("utf-8", "replace"))
        raise TrafficFormatError(
            f"{path}: payload {number} (line {_line(data, offset)}): header {shown} is "
            f"not {_HEADER_SHAPE}; every payload starts with such a line: the file is "
            "damaged or not a GoReplay capture"
        )
    kind, payload_id, timestamp, _latency = match.groups()
    return _Payload(kind, payload_id, int(timestamp), head_end + 1, stop)


def _line(data: bytes, offset: int) -> int:
    """The 1-based line at ``offset`` (counted only for a message)."""
    return data.count(b"\n", 0, offset) + 1


def _error(data: bytes, number: int, offset: int, path: str, exc: _Invalid) -> TrafficFormatError:
    return TrafficFormatError(
        f"{path}: payload {number} (line {_line(data, offset)}): {exc}; fix or delete this payload"
    )


class _Reader:
    """Reads payloads into requests and responses, sharing equal header pairs (a plain message
    without h11, see the module's docstring)."""

    def __init__(self, shared: Shared, *, fast: bool = True) -> None:
        self.shared = shared
        self.fast = fast
        self.lines: dict[bytes, tuple[str, str]] = {}  # a checked header line -> its pair
        self.names: dict[bytes, str] = {}  # a header name as read -> its shared text

    def request(self, data: bytes, start: int, end: int, timestamp: int, number: int) -> _Parts:
        """The request in ``data[start:end]``, read by h11."""
        raw = data[start:end]
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=len(raw) + 1)
        head, body = _read(connection, raw, h11.Request)
        headers = self._headers(head.headers.raw_items())
        host = next((value for name, value in headers if name.lower() == "host"), None)
        method = head.method.decode("latin-1")
        return self._request(timestamp, method, head.target, headers, body, host, number)

    def response(self, data: bytes, start: int, end: int, method: str) -> RecordedResponse:
        """The response in ``data[start:end]`` to a ``method`` request, read by h11."""
        raw = data[start:end]
        connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=len(raw) + 1)
        # h11 frames a response by its request (a HEAD response has no body): replay the method.
        connection.send(h11.Request(method=method, target="/", headers=[("Host", "recorded")]))
        connection.send(h11.EndOfMessage())
        head, body = _read(connection, raw, h11.Response)
        return RecordedResponse(head.status_code, self._headers(head.headers.raw_items()), body)

    def fast_request(
        self,
        data: bytes,
        start: int,
        end: int,
        method: bytes,
        target: bytes,
        timestamp: bytes,
        number: int,
    ) -> _Parts | None:
        """The plain request whose head goes on at ``data[start]`` (the CRLF of its request
        line ``method target``), or None for h11 to read it."""
        head_end = data.find(b"\r\n\r\n", start, end)
        if head_end < 0:
            return None  # the head was cut
        lines = data[start : head_end + 2]  # "\r\nName: value\r\n…\r\n"
        lowered = lines.lower()
        framing = _framing(lines, lowered)
        if framing is None or lowered.count(b"\r\nhost:") != 1:
            return None  # h11 wants exactly one Host header in HTTP/1.1
        headers = self._fast_headers(lines)
        body = _fast_body(data, head_end + 4, end, framing)
        if headers is None or body is None:
            return None
        host = headers[lowered.count(b"\r\n", 0, lowered.find(b"\r\nhost:"))][1]
        if target[0] != 47 or b"#" in target:  # not "/…": not a path by fields.is_target
            method_text = method.decode("latin-1")
            return self._request(int(timestamp), method_text, target, headers, body, host, number)
        text = self.shared.text  # a path (the bytes of a plain request line pass is_target)
        return (
            int(timestamp),
            text(method.decode("latin-1")),
            target.decode("latin-1"),
            headers,
            body,
            text(host),
            f"payload {number}",
        )

    def fast_response(
        self, data: bytes, start: int, end: int, status: bytes
    ) -> RecordedResponse | None:
        """The plain response whose head goes on at ``data[start]`` (the CRLF of its status
        line), or None for h11 to read it. It is read as the answer to a request that is not
        HEAD or CONNECT (h11 frames those by the request: the caller sends them to h11)."""
        if status < b"200":
            return None  # 1xx: h11 reads on to the final response
        head_end = data.find(b"\r\n\r\n", start, end)
        if head_end < 0:
            return None
        lines = data[start : head_end + 2]
        framing = _framing(lines, lines.lower())
        headers = self._fast_headers(lines)
        if framing is None or headers is None:
            return None
        code = int(status)
        body_start = head_end + 4
        if code in (204, 304):
            framing = 0
        elif framing == _NO_FRAMING:
            framing = end - body_start  # the body runs until the connection closes
        body = _fast_body(data, body_start, end, framing)
        return None if body is None else trusted_response(code, headers, body)

    def _request(
        self,
        timestamp: int,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes,
        host: str | None,
        number: int,
    ) -> _Parts:
        """The request's parts, its host from an absolute-form ``target`` (else ``host``)."""
        try:
            url_host, path = host_and_target(target.decode("latin-1"))
        except ValueError:
            raise _Skip(
                f"request target {quote(target.decode('latin-1'))} is neither a path nor an "
                "http(s) URL"
            ) from None
        host = url_host or host
        text = self.shared.text
        return (
            timestamp,
            text(method),
            path,
            headers,
            body,
            host and text(host),
            f"payload {number}",
        )

    def _fast_headers(self, lines: bytes) -> Headers | None:
        """Header lines (``\\r\\nName: value…\\r\\n``) as shared pairs, or None if one is
        not a valid header line. Only a line not seen before is checked and read."""
        split = lines.split(b"\r\n")[1:-1]
        pairs = tuple(map(self.lines.get, split))
        return cast(Headers, pairs) if None not in pairs else self._new_lines(split, pairs)

    def _new_lines(
        self, split: list[bytes], found: tuple[tuple[str, str] | None, ...]
    ) -> Headers | None:
        """``_fast_headers`` when some lines were not seen before (``None`` in ``found``): those
        are checked and read (``Shared.add``'s work, inline: the name is shared, then the pair)."""
        seen, names = self.lines, self.names
        if len(seen) + len(split) > _SEEN_LINES:
            seen.clear()
        shared_names, shared_pairs = self.shared.names, self.shared.pairs
        pairs = list(found)
        for index, pair in enumerate(found):
            if pair is not None:
                continue
            line = split[index]
            match = _FAST_LINE.fullmatch(line)
            if match is None:
                return None  # folded, invalid, or with a bare CR or LF: h11's
            raw_name, value = match.groups()
            name = names.get(raw_name)
            if name is None:
                text = raw_name.decode("latin-1")
                name = names[raw_name] = shared_names.setdefault(text, text)
            new = (name, value.rstrip(b" \t").decode("latin-1"))
            pairs[index] = seen[line] = shared_pairs.setdefault(new, new)
        return tuple(cast(list[tuple[str, str]], pairs))

    def _headers(self, raw: list[tuple[bytes, bytes]]) -> Headers:
        return self.shared.headers(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
        )


def _framing(lines: bytes, lowered: bytes) -> int | None:
    """A plain head's framing from its header ``lines`` (and them in lower case): the
    Content-Length, ``_CHUNKED``, ``_NO_FRAMING``, or None for h11 to judge (repeated or both
    headers, a value h11 rewrites, like ``Chunked``)."""
    lengths = lowered.count(b"\r\ncontent-length:")
    encodings = lowered.count(b"\r\ntransfer-encoding:")
    if lengths + encodings == 0:
        return _NO_FRAMING
    if lengths + encodings > 1:
        return None
    # The one header line is found by bytes.find (a fast scan), then matched where it starts.
    if encodings:
        match = _FAST_CHUNKED.match(lowered, lowered.find(b"\r\ntransfer-encoding:"))
        return _CHUNKED if match and lines[match.start(1) : match.end(1)] == b"chunked" else None
    match = _FAST_LENGTH.match(lowered, lowered.find(b"\r\ncontent-length:"))
    return None if match is None else int(match.group(1))


def _fast_body(data: bytes, start: int, end: int, framing: int) -> bytes | None:
    """The body in ``data[start:end]`` by ``framing``, or None unless it is complete and plain
    (a cut chunked body, chunk extensions and trailers are h11's)."""
    if framing >= 0:
        return data[start : min(start + framing, end)]  # a cut body is kept, as h11 does
    if framing == _NO_FRAMING:
        return b""  # a request without framing headers has no body
    chunks: list[bytes] = []
    while True:
        match = _FAST_CHUNK.match(data, start, end)
        if match is None:
            return None
        size, start = int(match.group(1), 16), match.end()
        if size == 0:
            return b"".join(chunks) if data.startswith(b"\r\n", start, end) else None
        if start + size + 2 > end or data[start + size : start + size + 2] != b"\r\n":
            return None
        chunks.append(data[start : start + size])
        start += size + 2


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
