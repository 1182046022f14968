"""HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), as browsers and Playwright write it.

``Exchange.source`` is ``"entry N"`` with N the 0-based index in ``log.entries``, so
``jq '.log.entries[N]' file.har`` shows it. Offsets come from ``startedDateTime`` (ISO 8601; no
zone means UTC). HTTP/2 pseudo-headers are dropped (``:authority`` becomes ``host``); timings,
cookies arrays and ``_``-prefixed fields are not used. Failed requests (status 0 or -1,
``_failureText``/``_error``, no response) keep their request with ``response=None``. Entries that
cannot be replayed as HTTP (``data:``, ``blob:``, ``ws:``, extension URLs, multipart bodies saved
as params only) are skipped with a reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import (
    is_header_value,
    is_target,
    is_token,
    json_kind,
    quote,
    split_url,
)
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped

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
            _zone(zone),
        )
    except ValueError as exc:
        raise _Invalid(f"startedDateTime {text!r} is not a valid date-time ({exc})") from None


def _zone(text: str | None) -> timezone:
    if text is None or text in ("Z", "z"):
        return timezone.utc
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if text[0] == "-" else offset)


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
