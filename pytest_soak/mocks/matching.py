"""Whether a request matches a stub, which stub answers, and the closest stub for a miss.

Pure functions over ``Request`` and ``Stub``; both transports (respx in process, the loopback
server) call them, so a definition answers the same way through either.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_soak.mocks.definitions import (
    SCENARIO_STARTED,
    RequestPattern,
    Stub,
    UrlPattern,
    ValuePattern,
)


@dataclass(frozen=True)
class Request:
    """A request as a mock sees it. ``target`` is the path and query as sent."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    host: str | None = None

    @cached_property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @cached_property
    def query(self) -> tuple[tuple[str, str], ...]:
        return tuple(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @cached_property
    def bare_host(self) -> str | None:
        return _bare_host(self.host) if self.host else None

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self.headers if k.lower() == lowered]

    def query_values(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


def matches(stub: Stub, request: Request, states: Mapping[str, str]) -> bool:
    """Whether ``stub`` answers ``request`` with the scenarios in ``states``."""
    if (
        stub.required_state is not None
        and stub.scenario is not None
        and states.get(stub.scenario, SCENARIO_STARTED) != stub.required_state
    ):
        return False
    return not _mismatches(stub.request, request, stop_early=True)


def select(stubs: Iterable[Stub], request: Request, states: Mapping[str, str]) -> int | None:
    """Index of the stub that answers: the highest priority (lowest number) that matches; among
    equal priorities the one defined last, as in WireMock. ``stubs`` must be in definition order."""
    best: int | None = None
    best_priority = 0
    for index, stub in enumerate(stubs):
        if (best is None or stub.priority <= best_priority) and matches(stub, request, states):
            best, best_priority = index, stub.priority
    return best


def closest(stubs: Iterable[Stub], request: Request) -> str | None:
    """The name of the stub that misses ``request`` by the least, for the unmatched list: the
    URL counts most (a typo in a path is the usual miss), then the method, then the rest."""
    best: tuple[float, str] | None = None
    for stub in stubs:
        misses = _mismatches(stub.request, request, stop_early=False)
        score = 0.25 * len(misses)
        if "url" in misses:
            score += 4.0 * (1.0 - _similarity(stub.request.url, request))
        if "method" in misses:
            score += 0.25
        if best is None or score < best[0]:
            best = (score, stub.name)
    return None if best is None else best[1]


def _mismatches(pattern: RequestPattern, request: Request, *, stop_early: bool) -> list[str]:
    """Names of the parts of ``pattern`` that ``request`` misses (only the first when
    ``stop_early``: matching is the hot path, the full list is for the unmatched report)."""
    misses: list[str] = []
    for part in _PARTS:
        if not _part_matches(part, pattern, request):
            misses.append(part)
            if stop_early:
                break
    return misses


_PARTS = ("method", "host", "url", "query", "headers", "body")


def _part_matches(part: str, pattern: RequestPattern, request: Request) -> bool:
    if part == "method":
        return pattern.method is None or pattern.method == request.method.upper()
    if part == "host":
        return pattern.host is None or pattern.host == request.bare_host
    if part == "url":
        return _url_matches(pattern.url, request)
    if part == "query":
        return _query_matches(pattern, request)
    if part == "headers":
        return all(_value_matches(p, request.header_values(n)) for n, p in pattern.headers)
    return all(_body_matches(p, request) for p in pattern.body)


def _url_matches(url: UrlPattern, request: Request) -> bool:
    if url.kind == "any":
        return True
    if url.kind == "url":
        return request.target == url.value
    if url.kind == "urlPath":
        return request.path == url.value
    if url.kind == "urlPattern":
        return re.fullmatch(url.value, request.target) is not None
    return re.fullmatch(url.value, request.path) is not None  # urlPathPattern


def _query_matches(pattern: RequestPattern, request: Request) -> bool:
    if pattern.query_exact is not None and sorted(request.query) != sorted(pattern.query_exact):
        return False
    return all(_value_matches(p, request.query_values(n)) for n, p in pattern.query)


def _value_matches(pattern: ValuePattern, values: list[str]) -> bool:
    """A header or query parameter: ``absent`` looks at presence, others need a value that
    matches (any of several)."""
    if pattern.kind == "absent":
        return (not values) == bool(pattern.value)
    return any(_text_matches(pattern, value) for value in values)


def _body_matches(pattern: ValuePattern, request: Request) -> bool:
    if pattern.kind == "absent":
        return (not request.body) == bool(pattern.value)
    if pattern.kind == "binaryEqualTo":
        return request.body == base64.b64decode(str(pattern.value))
    if pattern.kind == "equalToJson":
        try:
            actual = json.loads(request.body)
        except (ValueError, RecursionError):
            return False
        return _json_equal(
            pattern.value, actual, pattern.ignore_array_order, pattern.ignore_extra_elements
        )
    return _text_matches(pattern, request.text)


def _text_matches(pattern: ValuePattern, text: str) -> bool:
    expected = str(pattern.value)
    kind = pattern.kind
    if pattern.case_insensitive and kind in ("equalTo", "contains", "doesNotContain"):
        expected, text = expected.casefold(), text.casefold()
    if kind == "equalTo":
        return text == expected
    if kind == "contains":
        return expected in text
    if kind == "doesNotContain":
        return expected not in text
    if kind == "matches":
        return re.fullmatch(expected, text, re.DOTALL) is not None
    if kind == "doesNotMatch":
        return re.fullmatch(expected, text, re.DOTALL) is None
    if kind == "equalToJson":
        try:
            return _json_equal(pattern.value, json.loads(text), False, False)
        except (ValueError, RecursionError):
            return False
    return False


def _json_equal(expected: Any, actual: Any, any_order: bool, extra: bool) -> bool:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        if not extra and set(actual) != set(expected):
            return False
        return all(
            k in actual and _json_equal(v, actual[k], any_order, extra) for k, v in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if not extra and len(actual) != len(expected):
            return False
        if not any_order:
            if extra and len(actual) < len(expected):
                return False
            return all(
                _json_equal(e, a, any_order, extra) for e, a in zip(expected, actual, strict=False)
            )
        remaining = list(actual)
        for item in expected:
            for n, candidate in enumerate(remaining):
                if _json_equal(item, candidate, any_order, extra):
                    del remaining[n]
                    break
            else:
                return False
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def _similarity(url: UrlPattern, request: Request) -> float:
    subject = request.target if url.kind in ("url", "urlPattern") else request.path
    return difflib.SequenceMatcher(None, url.value, subject).ratio()


def _bare_host(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
