"""Speedscale RRPair JSON Lines: one request/response pair per line, as a Speedscale snapshot
export holds them (and as proxymock keeps each pair in its ``INTERNAL`` block).

    {"msgType": "rrpair", "ts": "2026-06-12T18:12:15.211241Z", "direction": "IN",
     "l7protocol": "http", "http": {"req": {"method": "GET", "uri": "/search?q=widget",
     "host": "localhost:8080", "headers": {"Accept": ["*/*"]}, "bodyBase64": "..."},
     "res": {"statusCode": 200, "headers": {...}, "bodyBase64": "..."}}}

(each pair on one line). ``direction`` says whose traffic a pair is: ``IN`` is a request the
recorded service received, and becomes an ``Exchange``; ``OUT`` is a call the service made to a
dependency, skipped here (it is a mock: ``soak_mocks`` reads the same file). A file with no
``IN`` pair at all is an error saying so. Pairs of other protocols (no ``http``) are skipped.

The target is ``http.req.uri`` (path and query; ``url`` holds the path only), the offset comes
from ``ts``, headers map a name to a list of values, bodies are ``bodyBase64``. HTTP/2
pseudo-headers are dropped (``:authority`` is the host when ``host`` is absent). A pair tagged
``decoded`` stores its request body decompressed, so its ``Content-Encoding`` header is dropped.
``Exchange.source`` is ``"line N"``, 1-based.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import (
    host_and_target,
    is_header_value,
    is_token,
    json_kind,
    lines,
    quote,
)
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped
from pytest_soak.traffic.timestamps import iso8601

LOOKS_LIKE = (
    'Speedscale RRPair JSON Lines, one pair per line: {"msgType": "rrpair", "direction": "IN", '
    '"ts": "...", "http": {"req": {"method": "GET", "uri": "/path"}, "res": {"statusCode": 200}}}'
)
OUTBOUND = "outbound call (direction OUT): use it as a mock with soak_mocks"

_SNIFF = re.compile(rb'\s*\{.*"msgType"\s*:')
_BOM = b"\xef\xbb\xbf"
_DIRECTIONS = ("IN", "OUT")


class _Invalid(Exception):
    """The pair is malformed: the message names the field and what is wrong."""


class _Skip(Exception):
    """The pair is well formed but is not the service's HTTP traffic: the message says why."""


def sniff(head: bytes) -> bool:
    """The first line that is not blank is a JSON object with a ``"msgType"`` key."""
    for line in head.removeprefix(_BOM).split(b"\n"):
        if line.strip():
            return _SNIFF.match(line) is not None
    return False


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    exchanges: list[Exchange] = []  # offsets: seconds since the epoch (loading rebases them)
    skipped: list[Skipped] = []
    for number, raw in enumerate(lines(data), start=1):
        if not raw.strip():
            continue
        source = f"line {number}"
        try:
            exchanges.append(pair(_load(raw), source))
        except _Skip as skip:
            skipped.append(Skipped(source, str(skip)))
        except _Invalid as exc:
            raise TrafficFormatError(f"{path}: {source}: {exc}; fix or delete this line") from None
    if not exchanges:
        no_inbound(path, skipped)
    return exchanges, skipped


def no_inbound(path: str, skipped: list[Skipped]) -> None:
    """Raise the error of a recording with no inbound pair when some of its pairs are outbound
    (else ``parse_traffic`` lists what was skipped)."""
    outbound = sum(skip.reason == OUTBOUND for skip in skipped)
    if not outbound:
        return
    other = [skip for skip in skipped if skip.reason != OUTBOUND]
    also = (
        f" ({len(other)} more skipped, e.g. {other[0].source}: {other[0].reason})" if other else ""
    )
    raise TrafficFormatError(
        f"{path}: holds no inbound traffic to replay, only {outbound} outbound "
        f"call{'s' * (outbound != 1)} (direction OUT): the service's own requests to its "
        f"dependencies{also}. Use it as mocks with soak_mocks(...), and record the service's "
        "inbound requests (direction IN) to replay them"
    )


def pair(item: dict[str, object], source: str) -> Exchange:
    """The exchange of an inbound HTTP pair, at its ``ts`` in seconds since the epoch; raises
    ``_Skip`` for outbound and non-HTTP pairs."""
    if _direction(item) == "OUT":
        raise _Skip(OUTBOUND)
    if item.get("http") is None:
        raise _Skip(
            f"not an HTTP pair (l7protocol {quote(item.get('l7protocol'))}): only HTTP is replayed"
        )
    http = _object(item["http"], "http")
    request = _object(http.get("req"), "http.req")
    method = _string(request.get("method"), "http.req.method")
    if not is_token(method):
        raise _Invalid(f"'http.req.method' {quote(method)} is not an HTTP method")
    key = "uri" if "uri" in request else "url"  # uri: path and query; url: the path only
    url_host, target = _target(_string(request.get(key), f"http.req.{key}"), f"http.req.{key}")
    pseudo, headers = _headers(request.get("headers"), "http.req.headers")
    if _tag(item, "decoded") == "true":  # the body is stored decompressed
        headers = tuple((k, v) for k, v in headers if k.lower() != "content-encoding")
    host = request.get("host")
    if host is not None and not isinstance(host, str):
        raise _Invalid(f"'http.req.host' is {json_kind(host)}, not a string")
    return Exchange(
        offset=_moment(item.get("ts")),
        method=method,
        target=target,
        headers=headers,
        body=_body(request.get("bodyBase64"), "http.req.bodyBase64"),
        response=_response(http.get("res")),
        host=host or pseudo.get(":authority") or url_host,
        source=source,
    )


def _load(line: bytes) -> dict[str, object]:
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Invalid(f"is not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise _Invalid(
            f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one complete "
            "RRPair object"
        ) from None
    except RecursionError:
        raise _Invalid("JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise _Invalid(f"is {json_kind(value)}, not an RRPair object {{...}}")
    return value


def _direction(item: dict[str, object]) -> str:
    direction = item.get("direction")
    if direction is None:  # older pairs: the tag says where the proxy sat
        location = _tag(item, "proxyLocation")
        direction = location.upper() if location else None
    if direction not in _DIRECTIONS:
        raise _Invalid(
            f"'direction' {quote(direction)} is neither 'IN' (a request the service received) "
            "nor 'OUT' (a call it made)"
        )
    return str(direction)


def _tag(item: dict[str, object], name: str) -> str | None:
    tags = item.get("tags")
    value = tags.get(name) if isinstance(tags, dict) else None
    return value if isinstance(value, str) else None


def _target(url: str, field: str) -> tuple[str | None, str]:
    try:
        return host_and_target(url)
    except ValueError:
        raise _Invalid(
            f"'{field}' {quote(url)} is neither a path ('/cart?id=1') nor an absolute http(s) URL"
        ) from None


def _headers(value: object, field: str) -> tuple[dict[str, str], Headers]:
    """The pseudo-headers and the headers in recorded order (``{"Name": ["v1", "v2"]}``)."""
    if value is None:
        return {}, ()
    pseudo: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for name, values in _object(value, field).items():
        for text in values if isinstance(values, list) else [values]:
            if not isinstance(text, str) or not is_header_value(text):
                raise _Invalid(f"'{field}' {name!r} has value {quote(text)}, not a one-line string")
            if name.startswith(":"):
                pseudo[name.lower()] = text
            elif not is_token(name):
                raise _Invalid(f"'{field}' has {quote(name)}, which is not a header name")
            else:
                headers.append((name, text))
    return pseudo, tuple(headers)


def _body(value: object, field: str) -> bytes:
    if value is None:
        return b""
    text = _string(value, field)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Invalid(f"'{field}' is not valid base64 ({exc})") from None


def _response(value: object) -> RecordedResponse | None:
    if value is None:
        return None
    response = _object(value, "http.res")
    status = response.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise _Invalid(f"'http.res.statusCode' {quote(status)} is not an HTTP status (100-999)")
    _, headers = _headers(response.get("headers"), "http.res.headers")
    return RecordedResponse(
        status, headers, _body(response.get("bodyBase64"), "http.res.bodyBase64")
    )


def _moment(value: object) -> float:
    text = _string(value, "ts")
    moment = iso8601(text)
    if moment is None:
        raise _Invalid(f"'ts' {quote(text)} is not an RFC 3339 date-time")
    return moment


def _object(value: object, field: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Invalid(f"'{field}' is {json_kind(value)}, not an object")
    return value


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"'{field}' is {json_kind(value)}, not a string")
    return value
