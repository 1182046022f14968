"""Endpoint templating (``/cart/delete/c000123`` -> ``/cart/delete/{id}``) and endpoint patterns
for ``Traffic.filter``.

A path segment is id-like, and becomes ``{id}``, when it is

- a number (``42``), a UUID, or 16+ hex digits (``5f3a9c...``);
- letters, digits, ``-`` and ``_`` with at least two digits (``c000123``, ``ord_8f3k2j9``,
  ``2024-01-15``), except API versions (``v1``, ``v10``).

Plain words, slugs without digits (``monitoring-stein``) and file names (``index.html``, anything
with a dot) are kept. ``template_path`` is idempotent: ``{id}`` is never id-like.
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
_WORDISH = re.compile(r"[A-Za-z0-9_-]+")
_API_VERSION = re.compile(r"[vV][0-9]+")
_ID_SHAPES = (_NUMBER, _UUID, _LONG_HEX)

_PATTERN = re.compile(r"(?:([A-Za-z]+)\s+)?(\S+)")
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def is_id_like(segment: str) -> bool:
    """Whether a path segment looks like an identifier (see the module docstring)."""
    if any(shape.fullmatch(segment) for shape in _ID_SHAPES):
        return True
    if not _WORDISH.fullmatch(segment) or _API_VERSION.fullmatch(segment):
        return False
    return sum(char in "0123456789" for char in segment) >= 2


@functools.lru_cache(maxsize=8192)
def template_path(path: str) -> str:
    """``/users/42/orders`` -> ``/users/{id}/orders``: id-like segments become ``{id}``."""
    return "/".join(ID if is_id_like(segment) else segment for segment in path.split("/"))


@dataclass(frozen=True, slots=True)
class EndpointPattern:
    """Selects requests by method and path template, e.g. ``DELETE /cart/delete/{id}``.

    Each segment of the pattern is templated like a recorded path, so a pattern selects an
    *endpoint*: ``/cart/delete/c000123`` and ``/cart/delete/{id}`` are the same pattern and match
    every ``/cart/delete/<id>``. ``{anything}`` and ``*`` match exactly one segment; a trailing
    ``/**`` matches the path before it and anything below it. One trailing ``/`` is ignored on
    both sides. To select single requests, use ``Traffic.where``.
    """

    method: str | None
    segments: tuple[str | None, ...]
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
        segments = tuple(_wildcard_or_literal(part) for part in parts)
        return cls(method.upper() if method else None, segments, any_rest)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method.upper() != self.method:
            return False
        parts = _strip_trailing_slash(path).split("/")
        if len(parts) < len(self.segments):
            return False
        if len(parts) > len(self.segments) and not self.any_rest:
            return False
        return all(
            want is None or want == part for want, part in zip(self.segments, parts, strict=False)
        )

    def __str__(self) -> str:
        path = "/".join("*" if segment is None else segment for segment in self.segments)
        path = (path + "/**" if self.any_rest else path) or "/"
        return f"{self.method} {path}" if self.method else path


def _wildcard_or_literal(part: str) -> str | None:
    if part == "*" or _PLACEHOLDER.fullmatch(part) or is_id_like(part):
        return None
    return part


def _strip_trailing_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path
