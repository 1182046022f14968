"""Endpoint templating (``/cart/delete/c000123`` -> ``/cart/delete/{id}``) and endpoint patterns
for ``Traffic.filter``.

A path segment is id-like, and becomes ``{id}``, when it is

- a number (``42``, ``20240131``), a UUID in any case (``0B7E3D4A-6C1F-...``), 16 or more hex
  digits (hashes: md5, sha1, sha256; UUIDs without dashes) or an ISO date-time
  (``2024-01-31T10:00:00Z``);
- letters, digits, ``-`` and ``_`` with at least two digits (``c000123``, ``ord_8f3k2j9``,
  ``2024-01-15``), except API versions (``v1``, ``v10``).

A file name whose stem (the part before the first dot) is id-like keeps its suffix:
``142.json`` -> ``{id}.json``, ``abc123.tar.gz`` -> ``{id}.tar.gz``. A suffix is one or more
``.ext`` parts, each starting with a letter. Plain words, slugs without digits
(``monitoring-stein``) and other file names (``index.html``, ``authors.json``,
``bundle.c60a6d54.css``) are kept. ``template_path`` is idempotent: ``{id}`` is never id-like.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pytest_soak.errors import SoakError

ID = "{id}"

_NUMBER = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LONG_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ][0-9]{2}(?:(?::|%3[Aa])[0-9]{2}){1,2}(?:\.[0-9]+)?"
    r"(?:[Zz]|(?:[+-]|%2[Bb])[0-9]{2}(?:(?::|%3[Aa])?[0-9]{2})?)?)?"
)
_WORDISH = re.compile(r"[A-Za-z0-9_-]+")
_API_VERSION = re.compile(r"[vV][0-9]+")
_ID_SHAPES = (_NUMBER, _UUID, _LONG_HEX, _DATE_TIME)
_STEM_AND_SUFFIX = re.compile(r"([^.]+)((?:\.[A-Za-z][A-Za-z0-9]*)+)")

_PATTERN = re.compile(r"(?:([A-Za-z]+)\s+)?(\S+)")
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def is_id_like(segment: str) -> bool:
    """Whether a whole path segment (or query value) looks like an identifier (see the module
    docstring). A file name with an id stem (``142.json``) is not: see ``split_id``."""
    if any(shape.fullmatch(segment) for shape in _ID_SHAPES):
        return True
    if not _WORDISH.fullmatch(segment) or _API_VERSION.fullmatch(segment):
        return False
    return sum(char in "0123456789" for char in segment) >= 2


@functools.lru_cache(maxsize=65536)
def split_id(segment: str) -> tuple[str, str] | None:
    """The id in a path segment and the suffix after it: ``142.json`` -> ``("142", ".json")``,
    ``c000123`` -> ``("c000123", "")``; ``None`` when the segment carries no id
    (``index.html``, ``v2``)."""
    if is_id_like(segment):
        return segment, ""
    match = _STEM_AND_SUFFIX.fullmatch(segment)
    if match is not None and is_id_like(match.group(1)):
        return match.group(1), match.group(2)
    return None


def template_segment(segment: str) -> str:
    """``142.json`` -> ``{id}.json``, ``c000123`` -> ``{id}``; other segments are kept."""
    found = split_id(segment)
    return segment if found is None else ID + found[1]


@functools.lru_cache(maxsize=8192)
def template_path(path: str) -> str:
    """``/users/42/orders`` -> ``/users/{id}/orders``, ``/books/142.json`` ->
    ``/books/{id}.json``: the id in each segment becomes ``{id}``."""
    return "/".join(template_segment(segment) for segment in path.split("/"))


@dataclass(frozen=True, slots=True)
class EndpointPattern:
    """Selects requests by method and path template, e.g. ``DELETE /cart/delete/{id}``.

    Each segment of the pattern is templated like a recorded path, so a pattern selects an
    *endpoint*: ``/cart/delete/c000123`` and ``/cart/delete/{id}`` are the same pattern and match
    every ``/cart/delete/<id>``. ``{anything}`` and ``*`` match exactly one segment; a
    placeholder inside a segment matches one or more characters there (``/books/{id}.json``
    matches ``/books/142.json``, and so does ``/books/142.json``). A trailing ``/**`` matches the
    path before it and anything below it. One trailing ``/`` is ignored on both sides. To select
    single requests, use ``Traffic.where``.
    """

    method: str | None
    segments: tuple[str | None, ...]  # None: any segment; "{id}.json": a segment template
    any_rest: bool = False

    @classmethod
    def parse(cls, text: str) -> EndpointPattern:
        match = _PATTERN.fullmatch(text.strip())
        if match is None or not match.group(2).startswith("/"):
            raise SoakError(
                f"endpoint pattern {text!r} is not a path: write '/cart/{{id}}' or, with a "
                "method, 'DELETE /cart/{id}'"
            )
        method, path = match.groups()
        if "?" in path or "#" in path:
            raise SoakError(
                f"endpoint pattern {text!r} has a query or fragment: patterns match the path "
                "only; filter on query values with Traffic.where"
            )
        parts = _strip_trailing_slash(path).split("/")
        any_rest = parts[-1] == "**" and len(parts) > 1
        if any_rest:
            parts = parts[:-1]
        if "**" in parts:
            raise SoakError(
                f"endpoint pattern {text!r} has '**' before its end: '**' may only be the last "
                "segment ('/api/**'); use '*' for one segment"
            )
        segments = tuple(_wildcard_or_template(part) for part in parts)
        return cls(method.upper() if method else None, segments, any_rest)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method.upper() != self.method:
            return False
        parts = _strip_trailing_slash(path).split("/")
        if len(parts) < len(self.segments):
            return False
        if len(parts) > len(self.segments) and not self.any_rest:
            return False
        pairs = zip(self.segments, parts, strict=False)  # parts beyond them: the ``/**`` rest
        return all(_segment_matches(want, part) for want, part in pairs)

    def __str__(self) -> str:
        path = "/".join("*" if segment is None else segment for segment in self.segments)
        path = (path + "/**" if self.any_rest else path) or "/"
        return f"{self.method} {path}" if self.method else path


def _wildcard_or_template(part: str) -> str | None:
    templated = part if part == "*" else template_segment(part)
    if templated == "*" or _PLACEHOLDER.fullmatch(templated):
        return None
    return templated


def _segment_matches(want: str | None, part: str) -> bool:
    if want is None or want == part:
        return True
    regex = _segment_regex(want) if "{" in want else None
    return regex is not None and regex.fullmatch(part) is not None


@functools.lru_cache(maxsize=1024)
def _segment_regex(template: str) -> re.Pattern[str] | None:
    """``{id}.json`` -> a regex where each placeholder is one or more characters; ``None`` for a
    segment without placeholders (matched literally)."""
    pieces = _PLACEHOLDER.split(template)
    if len(pieces) == 1:
        return None
    return re.compile(".+?".join(re.escape(piece) for piece in pieces))


def _strip_trailing_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path
