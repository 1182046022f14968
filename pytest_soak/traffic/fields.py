"""Checks and message helpers the traffic parsers share: HTTP tokens, header values, request
targets, URL splitting, a file's lines, and how to name a bad JSON value in an error."""

from __future__ import annotations

import re
from collections.abc import Iterator

_BOM = b"\xef\xbb\xbf"
_ABSOLUTE_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//([^/?#]*))?([^#]*)(?:#.*)?", re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"/[^\x00-\x20\x7f#\ud800-\udfff]*")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]*")
_JSON_KINDS = {
    type(None): "missing (or null)",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def is_token(text: str) -> bool:
    """Whether ``text`` is an HTTP token (a valid method or header name)."""
    return _TOKEN.fullmatch(text) is not None


def is_header_value(text: str) -> bool:
    """Whether ``text`` can be sent as a header value (no control characters but tab)."""
    return _HEADER_VALUE.fullmatch(text) is not None


def is_target(text: str) -> bool:
    """Whether ``text`` is an origin-form request target: ``/path?query``, no spaces or ``#``."""
    return _TARGET.fullmatch(text) is not None


def lines(data: bytes) -> Iterator[bytes]:
    """``data.split(b"\\n")`` after a UTF-8 BOM, one line at a time (a big file is not copied)."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    while (end := data.find(b"\n", start)) >= 0:
        yield data[start:end]
        start = end + 1
    yield data[start:]


def json_kind(value: object) -> str:
    """What a decoded JSON value is, for messages: ``"a string"``, ``"null"``, ``"a list"``…"""
    return _JSON_KINDS.get(type(value), type(value).__name__)


def quote(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, to quote bad input in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def split_url(url: str) -> tuple[str, str | None, str]:
    """``(scheme, host, target)`` of a URL, lower-case scheme, the fragment dropped.

    ``host`` is ``None`` when the URL has no ``//authority`` part; ``target`` is the path and
    query exactly as written (``/`` when empty). Raises ``ValueError`` for text without a scheme.
    """
    match = _ABSOLUTE_URL.fullmatch(url)
    if match is None:
        raise ValueError(f"{url!r} has no scheme")
    scheme, has_authority, authority, rest = match.groups()
    if has_authority is None:
        return scheme.lower(), None, rest
    host = authority.rpartition("@")[2]
    if not rest.startswith("/"):
        rest = "/" + rest
    return scheme.lower(), host, rest


def host_and_target(url: str) -> tuple[str | None, str]:
    """``(host, target)`` of a request URL that is a path or an absolute http(s) URL.

    ``host`` is ``None`` for a path (``/cart?id=1``, returned as it is). Raises ``ValueError``
    for anything else; each parser words its own message.
    """
    if is_target(url):
        return None, url
    try:
        scheme, host, target = split_url(url)
    except ValueError:
        scheme, host, target = "", None, ""
    if scheme not in ("http", "https") or not host or not is_target(target):
        raise ValueError(f"{url!r} is neither a path nor an absolute http(s) URL")
    return host, target
