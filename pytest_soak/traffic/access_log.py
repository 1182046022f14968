"""Access logs, one request per line: nginx/Apache **combined** (and common) log format, and
**Envoy**'s default format. Lower fidelity than a capture: a log has the method, the target, the
status and when the request started; no request body, no response body and no headers but the
few it names (``User-Agent``, ``Referer``). ``MISSING_*`` say so, and the report repeats it.

Combined (nginx's default ``combined``, Apache's ``%h %l %u %t \\"%r\\" %>s %b
\\"%{Referer}i\\" \\"%{User-agent}i\\"``; common log format lines lack the last two fields;
fields after them, such as nginx's ``"$http_x_forwarded_for"``, are ignored)::

    203.0.113.7 - - [12/Jun/2026:18:12:15 +0000] "GET /search?q=1 HTTP/1.1" 200 612 "-" "curl/8"

Envoy's default format (``[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%
%PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% … "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"``); formats that start the same
way, as Istio's does, are read too (the user agent and host from its last five quoted fields)::

    [2026-06-12T18:12:15.310Z] "POST /cart HTTP/1.1" 201 - 154 0 26 25 "-" "shop-ios/4.2" \
        "7c1d0f2e-…" "shop.local" "10.0.2.1:80"

(on one line)

Lines that record no request the service could be sent again are skipped with the reason: no
request line (``"-"``, a client that sent nothing), bytes that are not HTTP (a TLS handshake sent
to a plain-HTTP port), ``CONNECT`` tunnels, ``*`` and ``host:port`` targets, other protocols.
A line that is not in the format at all is an error. Quoted fields are unescaped as nginx and
Apache escape them (``\\xHH``, ``\\"``, ``\\\\``); a status of 0 (Envoy: no response was sent)
keeps the request with ``response=None``. ``Exchange.source`` is ``"line N"``, 1-based.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import host_and_target, is_header_value, is_token, lines, quote
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped
from pytest_soak.traffic.timestamps import iso8601, log_time

COMBINED_LOOKS_LIKE = (
    "nginx/Apache combined access log, one request per line: "
    '203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] "GET /path HTTP/1.1" 200 2326 "-" "curl/8.5.0"'
)
ENVOY_LOOKS_LIKE = (
    "Envoy access log in the default format, one request per line: "
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 '
    '"10.0.35.28" "nsq2http" "cc21d9b0-…" "locations" "tcp://10.0.2.1:80"'
)
MISSING_COMBINED = (
    "request bodies",
    "request headers other than User-Agent and Referer",
    "response headers and bodies",
)
MISSING_ENVOY = (
    "request bodies",
    "request headers other than User-Agent",
    "response headers and bodies",
)

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_COMBINED = re.compile(
    rf"(\S+) (\S+) (\S+) \[([^\]]*)\] {_QUOTED} ([0-9]{{3}}) ([0-9]+|-)"
    rf"(?: {_QUOTED} {_QUOTED})?(?: .*)?"
)
# Envoy writes values as they came, quotes included: the request ends at '" <status>', and the
# user agent is whatever lies between the forwarded-for field and the last three fields.
_ENVOY = re.compile(r'\[([0-9]{4}-[^\]]*)\] "(.*?)" ([0-9]{1,3})(?: (.*))?')
_ENVOY_DEFAULT_TAIL = re.compile(r'\S+ \S+ \S+ \S+ \S+ "[^"]*" "(.*)" "[^"]*" "([^"]*)" "[^"]*"')
_FIVE_QUOTED = re.compile(r'"([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"')
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_C_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f", "b": b"\b"}
_PROTOCOL = re.compile(r"HTTP/[0-9](?:\.[0-9])?")
_BOM = b"\xef\xbb\xbf"
_Reader = Callable[[str, str], Exchange]


class _Invalid(Exception):
    """The line is malformed: the message says what is wrong."""


class _Skip(Exception):
    """The line is well formed but records no request that can be sent again: says why."""


def sniff_combined(head: bytes) -> bool:
    """The first line that is not blank is a combined (or common) log line."""
    line = _first_line(head)
    return line is not None and _COMBINED.fullmatch(line) is not None


def sniff_envoy(head: bytes) -> bool:
    """The first line that is not blank starts like Envoy's default format."""
    line = _first_line(head)
    return line is not None and _ENVOY.fullmatch(line) is not None


def parse_combined(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    return _parse(data, path, _combined)


def parse_envoy(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    return _parse(data, path, _envoy)


def _first_line(head: bytes) -> str | None:
    for line in head.removeprefix(_BOM).split(b"\n"):
        if line.strip():
            return line.rstrip(b"\r").decode("utf-8", "replace")
    return None


def _parse(data: bytes, path: str, read: _Reader) -> tuple[list[Exchange], list[Skipped]]:
    exchanges: list[Exchange] = []  # offsets: seconds since the epoch (loading rebases them)
    skipped: list[Skipped] = []
    for number, raw in enumerate(lines(data), start=1):
        if not raw.strip():
            continue
        source = f"line {number}"
        try:
            line = raw.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TrafficFormatError(
                f"{path}: {source}: is not UTF-8 (byte {exc.start}: {exc.reason}); servers escape "
                "other bytes as \\xHH, so the file is damaged or not an access log: fix or "
                "delete this line"
            ) from None
        try:
            exchanges.append(read(line, source))
        except _Skip as skip:
            skipped.append(Skipped(source, str(skip)))
        except _Invalid as exc:
            raise TrafficFormatError(f"{path}: {source}: {exc}; fix or delete this line") from None
    return exchanges, skipped


def _combined(line: str, source: str) -> Exchange:
    match = _COMBINED.fullmatch(line)
    if match is None:
        raise _Invalid(
            f"{quote(line)} is not a combined (or common) log line: "
            '\'<client> <ident> <user> [<time>] "<request line>" <status> <bytes> "<referer>" '
            '"<user agent>"\''
        )
    _, _, _, when, request, status, _, referer, agent = match.groups()
    moment = log_time(when)
    if moment is None:
        raise _Invalid(f"time [{when}] is not a log time like [10/Oct/2000:13:55:36 -0700]")
    headers = _headers((("User-Agent", agent), ("Referer", referer)), escaped=True)
    return _exchange(moment, request, int(status), headers, None, source, escaped=True)


def _envoy(line: str, source: str) -> Exchange:
    match = _ENVOY.fullmatch(line)
    if match is None:
        raise _Invalid(
            f"{quote(line)} is not an Envoy access log line in the default format: "
            "'[<start time>] \"<method> <path> <protocol>\" <status> <flags> …'"
        )
    when, request, status, rest = match.groups()
    moment = iso8601(when)
    if moment is None:
        raise _Invalid(
            f"start time [{when}] is not an ISO 8601 time like [2016-04-15T20:17:00.310Z]"
        )
    tail = _ENVOY_DEFAULT_TAIL.fullmatch(rest or "")
    if tail is not None:
        agent, authority = tail.groups()
    else:  # a format that starts like the default (Istio's): its last five quoted fields
        fields = list(_FIVE_QUOTED.finditer(rest or ""))
        agent, authority = (fields[-1].group(2), fields[-1].group(4)) if fields else (None, None)
    host = authority if authority and authority != "-" else None
    headers = _headers((("User-Agent", agent),), escaped=False)
    return _exchange(moment, request, int(status), headers, host, source, escaped=False)


def _exchange(
    moment: float,
    request: str,
    status: int,
    headers: Headers,
    host: str | None,
    source: str,
    *,
    escaped: bool,
) -> Exchange:
    method, target, url_host = _request_line(request, escaped)
    return Exchange(
        offset=moment,
        method=method,
        target=target,
        headers=headers,
        response=RecordedResponse(status) if status >= 100 else None,
        host=host if host and is_header_value(host) else url_host,
        source=source,
    )


def _request_line(request: str, escaped: bool) -> tuple[str, str, str | None]:
    """Method, target and the host of an absolute-form target, or ``_Skip``. The method is
    checked as logged (escaped bytes are not a token); an ``escaped`` target is unescaped."""
    if request in ("", "-"):
        raise _Skip("no request line: the client sent none (or closed the connection first)")
    method, _, rest = request.partition(" ")
    logged, _, protocol = rest.rpartition(" ") if " " in rest else (rest, "", "")
    target = _unescape(logged) if escaped else logged
    if method == "-":
        raise _Skip(f"no request recorded ({_logged(request)}): the server could not parse one")
    if not is_token(method):
        raise _Skip(
            f"request {_logged(request)} is not HTTP (a TLS handshake or other bytes sent to an "
            "HTTP port)"
        )
    if protocol and _PROTOCOL.fullmatch(protocol) is None:
        raise _Skip(f"request {_logged(request)} is not HTTP (protocol {quote(protocol)})")
    if method == "CONNECT":
        raise _Skip(
            f"{_logged(request)}: CONNECT opens a proxy tunnel; it is not a request to replay"
        )
    try:
        host, path = host_and_target(target)
    except ValueError:
        raise _Skip(
            f"request target {quote(target)} is neither a path nor an http(s) URL"
        ) from None
    return method, path, host


def _logged(text: str) -> str:
    """``text`` quoted as the log has it (``'\\x16\\x03…'``, not doubled backslashes)."""
    return f"'{text}'" if text.isprintable() and len(text) <= 80 else quote(text)


def _headers(pairs: tuple[tuple[str, str | None], ...], *, escaped: bool) -> Headers:
    """The logged headers that are set (``-`` is unset) and can be sent (one line)."""
    headers = []
    for name, logged in pairs:
        if logged is None or logged in ("", "-"):
            continue
        value = _unescape(logged) if escaped else logged
        if is_header_value(value):
            headers.append((name, value))
    return tuple(headers)


def _unescape(text: str) -> str:
    """A quoted field as the client sent it: ``\\xHH`` bytes (nginx, Apache), ``\\"`` and
    ``\\\\`` (Apache) and C escapes such as ``\\n``; bytes that are not UTF-8 are
    percent-encoded (so a target stays a target)."""
    if "\\" not in text:
        return text
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        raw += text[position : match.start()].encode()
        escape = match.group(1)
        if escape[0] == "x" and len(escape) == 3:
            raw.append(int(escape[1:], 16))
        else:
            raw += _C_ESCAPES.get(escape, escape.encode())
        position = match.end()
    raw += text[position:].encode()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)
