"""The native traffic format: JSON Lines, one exchange per line (docs/traffic-formats.md).

    # comments and blank lines are ignored
    {"offset": 0.0, "method": "GET", "url": "/products?page=2", "headers": {"Accept": "*/*"}}
    {"offset": 0.125, "method": "POST", "url": "http://shop.local/cart", "body": "{\\"id\\": 1}",
     "response": {"status": 201, "headers": [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]}}

(each exchange on one line). ``method`` and ``url`` are required; ``url`` is a path or an
absolute http(s) URL (its host becomes ``Exchange.host``). ``offset`` is seconds, on every line
or on none (then every exchange is at 0.0). ``headers`` is an object or a list of
``[name, value]`` pairs (for repeated names); ``body`` is UTF-8 text, ``body_b64`` base64 bytes.
Keys starting with ``_`` are ignored; any other key is an error (it is probably a typo).
``Exchange.source`` is ``"line N"``, 1-based. ``dumps`` writes this format.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import re
from collections.abc import Iterable
from typing import TypeVar

import msgspec

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import (
    host_and_target,
    is_header_value,
    is_token,
    json_kind,
    lines,
    quote,
)
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Shared, Skipped

LOOKS_LIKE = (
    'JSON Lines, one exchange per line: {"offset": 0.5, "method": "GET", "url": "/path?q=1", '
    '"headers": {...}, "body": "...", "response": {"status": 200}}'
)

_EXCHANGE_KEYS = frozenset({"offset", "method", "url", "headers", "body", "body_b64", "response"})
_RESPONSE_KEYS = frozenset({"status", "headers", "body", "body_b64"})
_SNIFF = re.compile(rb'\s*\{\s*"(%s)"\s*:' % "|".join(sorted(_EXCHANGE_KEYS)).encode())
_BOM = b"\xef\xbb\xbf"
T = TypeVar("T")
_EXPECTED: dict[type, str] = {str: "a string", int: "a whole number"}
_DECODE = msgspec.json.Decoder().decode


class _Invalid(Exception):
    """The line is malformed: the message names the key and what is wrong."""


def sniff(head: bytes) -> bool:
    """The first line that is not blank or a ``#`` comment starts with one of our keys."""
    for line in head.removeprefix(_BOM).split(b"\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            return _SNIFF.match(stripped) is not None
    return False


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    shared = Shared()
    exchanges: list[Exchange] = []
    timed: tuple[int, bool] | None = None  # (line, has an offset) of the first exchange
    for number, raw in enumerate(lines(data), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            fields = _load(line)
            exchange = _exchange(fields, f"line {number}", shared)
        except _Invalid as exc:
            raise TrafficFormatError(f"{path}: line {number}: {exc}") from None
        has_offset = "offset" in fields
        if timed is None:
            timed = (number, has_offset)
        elif timed[1] != has_offset:
            raise TrafficFormatError(
                f"{path}: line {number}: 'offset' is {'given' if has_offset else 'missing'}, "
                f"unlike on line {timed[0]}; give every line an offset, or none (then all "
                "exchanges are at 0.0)"
            )
        exchanges.append(exchange)
    return exchanges, []


def dumps(exchanges: Iterable[Exchange]) -> str:
    """The exchanges as native JSON Lines (``parse`` reads them back equal, but for ``source``)."""
    return "".join(json.dumps(_fields(exchange)) + "\n" for exchange in exchanges)


def _load(line: bytes) -> dict[str, object]:
    try:
        value = _DECODE(line)  # msgspec: what it decodes, json.loads decodes the same
    except (msgspec.DecodeError, RecursionError):  # json.loads has it (NaN), or words it
        value = _load_json(line)
    if not isinstance(value, dict):
        raise _Invalid(f"is {json_kind(value)}, not a JSON object {{...}}")
    _check_keys(value, _EXCHANGE_KEYS, "")
    return value


def _load_json(line: bytes) -> object:
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Invalid(
            f"is not UTF-8 (byte {exc.start}: {exc.reason}); save the file as UTF-8"
        ) from None
    except json.JSONDecodeError as exc:
        raise _Invalid(
            f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one "
            "complete JSON object"
        ) from None
    except RecursionError:
        raise _Invalid("JSON is nested too deeply") from None


def _exchange(fields: dict[str, object], source: str, shared: Shared) -> Exchange:
    method = _required(fields, "method", str)
    if not is_token(method):
        raise _Invalid(f"'method' {method!r} is not an HTTP method")
    host, target = _url(_required(fields, "url", str))
    return Exchange(
        _offset(fields.get("offset", 0.0)),
        shared.text(method.upper()),
        target,
        _headers(fields.get("headers", {}), "headers", shared),
        _body(fields, ""),
        _response(fields.get("response"), shared),
        None if host is None else shared.text(host),
        source,
    )


def _url(url: str) -> tuple[str | None, str]:
    try:
        return host_and_target(url)
    except ValueError:
        raise _Invalid(
            f"'url' {quote(url)} is neither a path ('/cart?id=1') nor an absolute http(s) URL"
        ) from None


def _offset(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"'offset' {quote(value)} is not a number of seconds")
    if not math.isfinite(value):
        raise _Invalid(f"'offset' {value} is not a finite number of seconds")
    return float(value)


def _headers(value: object, key: str, shared: Shared) -> Headers:
    pairs: list[tuple[object, object]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [(name, text) for name, text in value]
    else:
        raise _Invalid(
            f'\'{key}\' is {json_kind(value)}; write an object {{"Name": "value"}} or a list of '
            '[name, value] pairs [["Name", "value"]]'
        )
    headers: list[tuple[str, str]] = []
    known = shared.pairs.get
    for name, text in pairs:
        pair = known((name, text)) if isinstance(name, str) and isinstance(text, str) else None
        if pair is None:  # not seen before: check it
            if not isinstance(name, str) or not is_token(name):
                raise _Invalid(f"'{key}' has {quote(name)}, which is not a header name")
            if not isinstance(text, str) or not is_header_value(text):
                raise _Invalid(f"'{key}' {name!r} has value {quote(text)}, not a one-line string")
            pair = shared.add(name, text)
        headers.append(pair)
    return tuple(headers)


def _body(fields: dict[str, object], prefix: str) -> bytes:
    if "body" in fields and "body_b64" in fields:
        raise _Invalid(f"'{prefix}body' and '{prefix}body_b64' are both given; keep one")
    if "body_b64" in fields:
        encoded = _required(fields, "body_b64", str, prefix)
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Invalid(f"'{prefix}body_b64' is not valid base64 ({exc})") from None
    text = _required(fields, "body", str, prefix) if "body" in fields else ""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid(f"'{prefix}body' has a lone surrogate; use '{prefix}body_b64'") from None


def _response(value: object, shared: Shared) -> RecordedResponse | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"'response' is {json_kind(value)}, not an object {{\"status\": 200, ...}}")
    _check_keys(value, _RESPONSE_KEYS, "response.")
    status = _required(value, "status", int, "response.")
    if isinstance(status, bool) or not 100 <= status <= 999:
        raise _Invalid(f"'response.status' {status!r} is not an HTTP status (100-999)")
    headers = _headers(value.get("headers", {}), "response.headers", shared)
    return RecordedResponse(status, headers, _body(value, "response."))


def _required(fields: dict[str, object], key: str, kind: type[T], prefix: str = "") -> T:
    if key not in fields:
        raise _Invalid(f"'{prefix}{key}' is missing")
    value = fields[key]
    if not isinstance(value, kind):
        raise _Invalid(f"'{prefix}{key}' is {json_kind(value)}, not {_EXPECTED[kind]}")
    return value


def _check_keys(fields: dict[str, object], known: frozenset[str], prefix: str) -> None:
    for key in fields:
        if key in known or key.startswith("_"):
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
        raise _Invalid(
            f"unknown key '{prefix}{key}'; {hint}known keys: {', '.join(sorted(known))} "
            "(keys starting with '_' are ignored)"
        )


def _fields(exchange: Exchange) -> dict[str, object]:
    fields: dict[str, object] = {"offset": exchange.offset, "method": exchange.method}
    fields["url"] = f"http://{exchange.host}{exchange.target}" if exchange.host else exchange.target
    if exchange.headers:
        fields["headers"] = _dump_headers(exchange.headers)
    fields.update(_dump_body(exchange.body))
    if exchange.response is not None:
        response: dict[str, object] = {"status": exchange.response.status}
        if exchange.response.headers:
            response["headers"] = _dump_headers(exchange.response.headers)
        response.update(_dump_body(exchange.response.body))
        fields["response"] = response
    if exchange.source:
        fields["_source"] = exchange.source
    return fields


def _dump_headers(headers: Headers) -> dict[str, str] | list[list[str]]:
    names = [name for name, _ in headers]
    if len(set(names)) == len(names):
        return dict(headers)
    return [[name, value] for name, value in headers]


def _dump_body(body: bytes) -> dict[str, str]:
    if not body:
        return {}
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode("ascii")}
