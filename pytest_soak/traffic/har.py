"""HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), as browsers and Playwright write it.

``Exchange.source`` is ``"entry N"`` with N the 0-based index in ``log.entries``, so
``jq '.log.entries[N]' file.har`` shows it. Offsets come from ``startedDateTime`` (ISO 8601; no
zone means UTC). HTTP/2 pseudo-headers are dropped (``:authority`` becomes ``host``); timings,
cookies arrays and ``_``-prefixed fields are not used. Failed requests (status 0 or -1,
``_failureText``/``_error``, no response) keep their request with ``response=None``. Entries that
cannot be replayed as HTTP (``data:``, ``blob:``, ``ws:``, extension URLs, multipart bodies saved
as params only) are skipped with a reason.

Two paths give the same result. ``parse`` decodes the file with msgspec straight into typed
structs that hold only the fields used here (the rest of the JSON is skipped, never built), at
several hundred MB/s, then checks each entry. Anything that path cannot vouch for, a JSON type
it did not expect or a value that fails a check, sends the whole file to ``parse_checked``: the
standard-library decoder and the field-by-field checks whose messages name the entry, the field
and what is wrong. A file that loads is loaded by the fast path; a file with a problem is
reported by the checked one, so the messages do not depend on the speed-up.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import msgspec

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import (
    is_header_value,
    is_target,
    is_token,
    json_kind,
    quote,
    split_url,
)
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Shared, Skipped
from pytest_soak.traffic.timestamps import zone_of

LOOKS_LIKE = (
    'HAR 1.2 JSON, {"log": {"version": "1.2", "entries": [{"startedDateTime": ..., '
    '"request": {...}, "response": {...}}]}} (browser dev tools: "Save all as HAR")'
)

_SNIFF = re.compile(rb'(?:\xef\xbb\xbf)?\s*\{\s*"log"\s*:')
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
    r"\s*(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_NOT_HTTP = frozenset(
    {
        "about",
        "blob",
        "chrome",
        "chrome-extension",
        "data",
        "devtools",
        "file",
        "ftp",
        "javascript",
        "moz-extension",
        "safari-extension",
        "safari-web-extension",
        "ws",
        "wss",
    }
)
_FAILED_STATUSES = (0, -1)


class _Invalid(Exception):
    """The entry is malformed: the message names the field and what is wrong."""


class _Skip(Exception):
    """The entry is well formed but cannot be replayed: the message says why."""


def sniff(head: bytes) -> bool:
    """A JSON document whose first key is ``log``."""
    return _SNIFF.match(head) is not None


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    """The exchanges of a HAR file in entry order, and the entries skipped (and why)."""
    fast = _parse_typed(data)
    return fast if fast is not None else parse_checked(data, path)


def parse_checked(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    """``parse`` by the standard-library decoder and field-by-field checks: slower, and the
    path that words every error (``parse`` falls back to it for any file with a problem)."""
    entries = _entries(_load_json(data, path), path)
    started: list[tuple[datetime, Exchange]] = []
    skipped: list[Skipped] = []
    for index, entry in enumerate(entries):
        source = f"entry {index}"
        try:
            started.append(_exchange(entry, source))
        except _Skip as skip:
            skipped.append(Skipped(source, str(skip)))
        except _Invalid as exc:
            raise TrafficFormatError(
                f"{path}: {source}: {exc}; fix or delete this entry (jq '.log.entries[{index}]')"
            ) from None
    first = min((moment for moment, _ in started), default=None)
    if first is None:
        return [], skipped
    second = timedelta(seconds=1)
    return [replace(item, offset=(moment - first) / second) for moment, item in started], skipped


def _load_json(data: bytes, path: str) -> object:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrafficFormatError(
            f"{path}: is not UTF-8 (byte {exc.start}: {exc.reason}); HAR files are UTF-8: "
            "export it again from the browser or tool that recorded it"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (
            "fix the JSON there"
            if text.rstrip().endswith("}")
            else "the file looks truncated: export or copy it again completely"
        )
        raise TrafficFormatError(
            f"{path}: is not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); {hint}"
        ) from None
    except RecursionError:
        raise TrafficFormatError(
            f"{path}: JSON is nested too deeply to be a HAR file; check it is the file you meant"
        ) from None


def _entries(root: object, path: str) -> list[object]:
    log = root.get("log") if isinstance(root, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise TrafficFormatError(
            f'{path}: has no list at log.entries; a HAR file is {{"log": {{"entries": [...]}}}}: '
            "export it again with 'Save all as HAR'"
        )
    return entries


def _exchange(value: object, source: str) -> tuple[datetime, Exchange]:
    """When the request started, and the exchange (at offset 0, set by ``parse``)."""
    entry = _object(value, "the entry")
    request = _object(entry.get("request"), "request")
    url = _string(request.get("url"), "request.url")
    url_host, target = _split(url)
    method = _string(request.get("method"), "request.method")
    if not is_token(method):
        raise _Invalid(f"request.method {method!r} is not an HTTP method")
    pseudo, headers = _headers(request.get("headers", []), "request.headers")
    return _started(entry.get("startedDateTime")), Exchange(
        offset=0.0,
        method=method,
        target=target,
        headers=headers,
        body=_post_data(request.get("postData")),
        response=_response(entry.get("response")),
        host=pseudo.get(":authority") or url_host,
        source=source,
    )


def _split(url: str) -> tuple[str, str]:
    try:
        scheme, host, target = split_url(url)
    except ValueError:
        scheme, host, target = "", None, ""
    if scheme in _NOT_HTTP:
        raise _Skip(f"{scheme}: URL {quote(url)} is not an HTTP request; only http(s) is replayed")
    if scheme not in ("http", "https") or not host or not is_target(target):
        raise _Invalid(f"request.url {quote(url)} is not an absolute http(s) URL")
    return host, target


def _headers(value: object, field: str) -> tuple[dict[str, str], Headers]:
    """The pseudo-headers (``:authority`` …) and the real headers, in recorded order."""
    pseudo: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for index, item in enumerate(_list(value, field)):
        header = _object(item, f"{field}[{index}]")
        name = _string(header.get("name"), f"{field}[{index}].name")
        text = _string(header.get("value"), f"{field}[{index}].value")
        if name.startswith(":"):
            pseudo[name.lower()] = text
        elif not is_token(name) or not is_header_value(text):
            raise _Invalid(f"{field}[{index}] {name!r}: {quote(text)} is not a valid header")
        else:
            headers.append((name, text))
    return pseudo, tuple(headers)


def _post_data(value: object) -> bytes:
    if value is None:
        return b""
    post = _object(value, "request.postData")
    if "text" in post:
        return _decode(post, "request.postData")
    params = _list(post.get("params", []), "request.postData.params")
    if not params:
        return b""
    mime = _string(post.get("mimeType", ""), "request.postData.mimeType")
    if not mime.lower().startswith("application/x-www-form-urlencoded"):
        raise _Skip(
            f"request body {mime!r} was saved as params without text; it cannot be rebuilt "
            "byte for byte: record the HAR with request bodies (text)"
        )
    pairs = []
    for index, item in enumerate(params):
        param = _object(item, f"request.postData.params[{index}]")
        name = _string(param.get("name"), f"request.postData.params[{index}].name")
        value = _string(param.get("value", ""), f"request.postData.params[{index}].value")
        pairs.append((name, value))
    return urlencode(pairs).encode()


def _response(value: object) -> RecordedResponse | None:
    if value is None:
        return None
    response = _object(value, "response")
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise _Invalid(f"response.status {quote(status)} is not a whole number")
    if status in _FAILED_STATUSES or response.get("_failureText") or response.get("_error"):
        return None
    if not 100 <= status <= 999:
        raise _Invalid(f"response.status {status} is not an HTTP status (100-999, or 0/-1)")
    _, headers = _headers(response.get("headers", []), "response.headers")
    content = response.get("content")
    body = b"" if content is None else _decode(_object(content, "content"), "response.content")
    return RecordedResponse(status, headers, body)


def _decode(holder: dict[str, object], field: str) -> bytes:
    text = _string(holder.get("text", ""), f"{field}.text")
    encoding = _string(holder.get("encoding", ""), f"{field}.encoding")
    if not encoding:
        return text.encode("utf-8", "surrogatepass")
    if encoding.lower() != "base64":
        raise _Invalid(f"{field}.encoding {encoding!r} is not supported (only 'base64')")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Invalid(f"{field}.text is not valid base64 ({exc})") from None


def _started(value: object) -> datetime:
    """The aware datetime of an ISO 8601 ``startedDateTime``."""
    text = _string(value, "startedDateTime")
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise _Invalid(f"startedDateTime {text!r} is not an ISO 8601 date-time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micros,
            zone_of(zone),
        )
    except ValueError as exc:
        raise _Invalid(f"startedDateTime {text!r} is not a valid date-time ({exc})") from None


def _object(value: object, field: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Invalid(f"{field} is {json_kind(value)}, not an object")
    return value


def _list(value: object, field: str) -> list[object]:
    if not isinstance(value, list):
        raise _Invalid(f"{field} is {json_kind(value)}, not a list")
    return value


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{field} is {json_kind(value)}, not a string")
    return value


# -- the fast path: typed decoding ------------------------------------------------------------
# The structs mirror what the checked path reads, with the same defaults; a field of another
# JSON type fails the decode and the file goes to the checked path.


class _Header(msgspec.Struct, gc=False):
    name: str
    value: str


class _Param(msgspec.Struct, gc=False):
    name: str
    value: str = ""


class _PostData(msgspec.Struct, gc=False):
    text: str | msgspec.UnsetType = msgspec.UNSET  # "text" in postData picks text over params
    encoding: str = ""
    params: list[_Param] = []
    mimeType: str = ""


class _Content(msgspec.Struct, gc=False):
    text: str = ""
    encoding: str = ""


class _Response(msgspec.Struct, gc=False):
    status: int
    headers: list[_Header] = []
    content: _Content | None = None
    failure_text: Any = msgspec.field(default=None, name="_failureText")
    error: Any = msgspec.field(default=None, name="_error")


class _Request(msgspec.Struct, gc=False):
    method: str
    url: str
    headers: list[_Header] = []
    postData: _PostData | None = None


class _Entry(msgspec.Struct, gc=False):
    startedDateTime: str
    request: _Request
    response: _Response | None = None


class _Entries(msgspec.Struct, gc=False):
    entries: list[msgspec.Raw]  # each entry's JSON text, decoded one at a time


class _Outline(msgspec.Struct, gc=False):
    log: _Entries


_OUTLINE = msgspec.json.Decoder(_Outline)
_ENTRY = msgspec.json.Decoder(_Entry)
_BOM = codecs.BOM_UTF8
_UTF8_SLICE = 1 << 22
_MICROS = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _parse_typed(data: bytes) -> tuple[list[Exchange], list[Skipped]] | None:
    """``parse`` by typed decoding, or ``None`` when the checked path must decide."""
    body = data[3:] if data.startswith(_BOM) else data
    if not body.isascii() and not _is_utf8(body):
        return None  # msgspec does not look inside the strings it skips
    decode = _ENTRY.decode
    shared = Shared()
    days: dict[tuple[str, str, str, str | None], int] = {}
    started: list[tuple[int, str, str, Headers, bytes, RecordedResponse | None, str, str]] = []
    skipped: list[Skipped] = []
    try:
        # The outline holds each entry as the place of its JSON text; an entry's structs live
        # only while it is read, so the whole document is never in memory as objects.
        entries = _OUTLINE.decode(body).log.entries
        entries.reverse()  # popped from the end, each freed once read
        for index in range(len(entries)):
            source = f"entry {index}"
            try:
                started.append(_typed_exchange(decode(entries.pop()), source, shared, days))
            except _Skip as skip:
                skipped.append(Skipped(source, str(skip)))
    except (msgspec.DecodeError, RecursionError, _Invalid, ValueError, OverflowError):
        return None  # ValidationError is a DecodeError
    if not started:
        return [], skipped
    first = min(item[0] for item in started)
    # (moment - first) / timedelta(seconds=1) of the checked path is this same integer division
    return [
        Exchange((micros - first) / 1_000_000, method, target, headers, body, response, host, src)
        for micros, method, target, headers, body, response, host, src in started
    ], skipped


def _is_utf8(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _UTF8_SLICE):
            decoder.decode(view[start : start + _UTF8_SLICE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _typed_exchange(
    entry: _Entry, source: str, shared: Shared, days: dict[tuple[str, str, str, str | None], int]
) -> tuple[int, str, str, Headers, bytes, RecordedResponse | None, str, str]:
    """The checked path's ``_exchange`` on typed fields, its checks in the same order (so a
    skipped entry is skipped for the same reason); ``_Invalid`` means: ask the checked path."""
    request = entry.request
    url_host, target = _split(request.url)
    method = request.method
    if not is_token(method):
        raise _Invalid(method)
    method = shared.text(method)
    authority, headers = _typed_headers(request.headers, shared)
    micros = _micros(entry.startedDateTime, days)
    body = _typed_post_data(request.postData)
    response = _typed_response(entry.response, shared)
    host = shared.text(authority or url_host)
    return micros, method, target, headers, body, response, host, source


def _typed_headers(items: list[_Header], shared: Shared) -> tuple[str | None, Headers]:
    """The ``:authority`` pseudo-header (the last one) and the real headers, shared."""
    get = shared.pairs.get
    authority = None
    headers = []
    for item in items:
        name, value = item.name, item.value
        pair = get((name, value))
        if pair is None:
            if name.startswith(":"):
                if name.lower() == ":authority":
                    authority = value
                continue
            if (name not in shared.names and not is_token(name)) or not is_header_value(value):
                raise _Invalid(name)
            pair = shared.add(name, value)
        headers.append(pair)
    return authority, tuple(headers)


def _typed_post_data(post: _PostData | None) -> bytes:
    if post is None:
        return b""
    if not isinstance(post.text, msgspec.UnsetType):
        return _typed_decode(post.text, post.encoding)
    if not post.params:
        return b""
    if not post.mimeType.lower().startswith("application/x-www-form-urlencoded"):
        raise _Skip(
            f"request body {post.mimeType!r} was saved as params without text; it cannot be "
            "rebuilt byte for byte: record the HAR with request bodies (text)"
        )
    return urlencode([(param.name, param.value) for param in post.params]).encode()


def _typed_response(response: _Response | None, shared: Shared) -> RecordedResponse | None:
    if response is None:
        return None
    status = response.status
    if status in _FAILED_STATUSES or response.failure_text or response.error:
        return None
    if not 100 <= status <= 999:
        raise _Invalid(status)
    _, headers = _typed_headers(response.headers, shared)
    content = response.content
    body = b"" if content is None else _typed_decode(content.text, content.encoding)
    return RecordedResponse(status, headers, body)


def _typed_decode(text: str, encoding: str) -> bytes:
    if not encoding:
        return text.encode("utf-8", "surrogatepass")
    if encoding.lower() != "base64":
        raise _Invalid(encoding)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(text) from None


def _micros(text: str, days: dict[tuple[str, str, str, str | None], int]) -> int:
    """Microseconds since the epoch of an ISO 8601 ``startedDateTime`` (as ``_started``; the
    midnight of each day and zone is computed once)."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise _Invalid(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    key = (year, month, day, zone)
    midnight = days.get(key)
    if midnight is None:
        moment = datetime(int(year), int(month), int(day), tzinfo=zone_of(zone))
        midnight = days[key] = (moment - _EPOCH) // _MICROS
    hours, minutes, seconds = int(hour), int(minute), int(second or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise _Invalid(text)
    clock = (hours * 3600 + minutes * 60 + seconds) * 1_000_000
    return midnight + clock + int((fraction or "0")[:6].ljust(6, "0"))
