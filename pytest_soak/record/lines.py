"""A capture becomes one line of native JSON Lines, redacted, that ``load_traffic`` reads back.

The exchange is built as the traffic layer models it (``Exchange``, ``RecordedResponse``),
redacted with the project's one rule (``redact_exchange``) and written with ``jsonl.dumps``, so
the recorder cannot drift from the format. What a reader should know but the format has no
field for goes in keys starting with ``_``, which the parser ignores:

- ``"_truncated": {"body": {"size": 200000, "kept": 65536}, "response.body": {...}}``: the
  stored body is the first ``kept`` bytes of ``size``. A cut JSON body cannot be parsed, so its
  secret fields could not be redacted: it is not stored at all (``kept`` is 0).
- ``"_streamed": true``: the response body came in more than one piece; it is not stored.
- ``"_error": "..."``: the app raised, or the client went away, before the response ended.
- ``"_omitted_headers": ["X-Bad"]``: headers whose name or value the format cannot hold.
"""

from __future__ import annotations

import functools
import json

from pytest_soak.record.capture import Body, Capture, RawHeaders
from pytest_soak.traffic.fields import is_header_value, is_target, is_token
from pytest_soak.traffic.jsonl import dumps
from pytest_soak.traffic.model import Exchange, RecordedResponse
from pytest_soak.traffic.redaction import Redaction, redact_exchange


class Unrecordable(Exception):
    """The exchange cannot be written as a line ``load_traffic`` would read (a target such as
    ``*``, a method that is not a token); the message says why."""


def record_line(capture: Capture, redaction: Redaction) -> str:
    """The capture as one redacted JSON line, ending in a newline."""
    if not is_token(capture.method):
        raise Unrecordable(f"method {capture.method!r} is not an HTTP method")
    if not is_target(capture.target):
        raise Unrecordable(f"target {capture.target[:80]!r} is not a path ('/x?y=1')")
    notes: dict[str, object] = {}
    omitted: list[str] = []
    headers = _headers(capture.headers, omitted)
    request_type = _content_type(headers)
    truncated: dict[str, object] = {}
    body = _body(capture.body, request_type, "body", truncated)
    response = None
    if capture.status is not None:
        response_headers = _headers(capture.response_headers, omitted)
        response_body = _body(
            capture.response_body, _content_type(response_headers), "response.body", truncated
        )
        response = RecordedResponse(capture.status, response_headers, response_body)
    if truncated:
        notes["_truncated"] = truncated
    if capture.streamed:
        notes["_streamed"] = True
    if capture.error:
        notes["_error"] = capture.error
    if omitted:
        notes["_omitted_headers"] = omitted
    exchange = Exchange(
        offset=round(capture.offset, 6),
        method=capture.method.upper(),
        target=capture.target,
        headers=headers,
        body=body,
        response=response,
    )
    line = dumps([redact_exchange(exchange, redaction)])
    if not notes:
        return line
    # dumps wrote one JSON object and a newline: add the notes inside its closing brace.
    return f"{line[:-2]}, {json.dumps(notes)[1:]}\n"


def _headers(raw: RawHeaders, omitted: list[str]) -> tuple[tuple[str, str], ...]:
    headers = []
    for name, value in raw:
        text_name = name.decode("latin-1") if isinstance(name, bytes) else name
        text_value = value.decode("latin-1") if isinstance(value, bytes) else value
        if _is_name(text_name) and (
            (text_value.isascii() and text_value.isprintable()) or is_header_value(text_value)
        ):
            headers.append((text_name, text_value))
        else:
            omitted.append(text_name[:80])
    return tuple(headers)


@functools.lru_cache(maxsize=1024)
def _is_name(name: str) -> bool:
    return is_token(name)


def _content_type(headers: tuple[tuple[str, str], ...]) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")


def _body(body: Body, content_type: str, key: str, truncated: dict[str, object]) -> bytes:
    data = bytes(body.data)
    if not body.truncated:
        return data
    if "json" in content_type.lower() or data.lstrip()[:1] in (b"{", b"["):
        data = b""  # a cut JSON document does not parse, so it could not be redacted
    else:
        data = _whole_characters(data)
    truncated[key] = {"size": body.size, "kept": len(data)}
    return data


def _whole_characters(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut at its end (so it stays text in the file)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            return data[: exc.start]
    return data
