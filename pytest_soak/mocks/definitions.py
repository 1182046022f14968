"""The normalized mock model every loader produces and both transports answer from.

A ``Stub`` is a request pattern, one or more responses (several recordings of one request
signature are served in turn), a priority and an optional scenario step. Everything is an
immutable dataclass of plain values, so a set of stubs can be written to JSON for the loopback
server process and read back unchanged (``stubs_to_json`` / ``stubs_from_json``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

Headers = tuple[tuple[str, str], ...]

#: WireMock's fault names and ours (the short names are what ``Chaos(faults=...)`` takes).
FAULTS = {
    "CONNECTION_RESET_BY_PEER": "reset",
    "EMPTY_RESPONSE": "empty",
    "MALFORMED_RESPONSE_CHUNK": "malformed_chunk",
    "RANDOM_DATA_THEN_CLOSE": "random_data",
}
FAULT_KINDS = tuple(FAULTS.values())

#: String matchers: WireMock's names. ``absent`` takes a boolean, ``equalToJson`` any JSON.
MATCHERS = (
    "absent",
    "binaryEqualTo",
    "contains",
    "doesNotContain",
    "doesNotMatch",
    "equalTo",
    "equalToJson",
    "matches",
)
URL_KINDS = ("url", "urlPath", "urlPattern", "urlPathPattern")
#: WireMock gives stubs without a priority this one (1 is the highest).
DEFAULT_PRIORITY = 5
SCENARIO_STARTED = "Started"


@dataclass(frozen=True, slots=True)
class ValuePattern:
    """One WireMock matcher: ``{"contains": "x"}``, ``{"equalTo": "a", "caseInsensitive": true}``,
    ``{"equalToJson": {...}, "ignoreArrayOrder": true, "ignoreExtraElements": true}``."""

    kind: str
    value: Any
    case_insensitive: bool = False
    ignore_array_order: bool = False
    ignore_extra_elements: bool = False


@dataclass(frozen=True, slots=True)
class UrlPattern:
    """``url`` (path and query, exact), ``urlPath`` (path, exact), ``urlPattern`` /
    ``urlPathPattern`` (regular expressions over the whole), or ``any``."""

    kind: str = "any"
    value: str = ""


@dataclass(frozen=True, slots=True)
class RequestPattern:
    """What a request must look like. ``query_exact`` (recorded signatures) requires exactly
    these query parameters, in any order; ``host`` is compared without port, case-insensitive."""

    method: str | None = None  # None: any method
    url: UrlPattern = UrlPattern()
    query: tuple[tuple[str, ValuePattern], ...] = ()
    headers: tuple[tuple[str, ValuePattern], ...] = ()
    body: tuple[ValuePattern, ...] = ()
    host: str | None = None
    query_exact: tuple[tuple[str, str], ...] | None = None

    def describe(self) -> str:
        host = f"//{self.host}" if self.host else ""
        where = self.url.value if self.url.kind != "any" else "*"
        return f"{self.method or 'ANY'} {host}{where}"


@dataclass(frozen=True, slots=True)
class Delay:
    """A response delay in milliseconds: ``fixed`` (a), ``uniform`` (a to b), ``lognormal``
    (median a, sigma b)."""

    kind: str
    a: float
    b: float = 0.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    headers: Headers = ()
    body: bytes = b""
    reason: str = ""
    delays: tuple[Delay, ...] = ()  # added up, like fixedDelayMilliseconds + delayDistribution
    fault: str | None = None  # a FAULT_KINDS name


@dataclass(frozen=True, slots=True)
class Stub:
    """One mapping. ``name`` is how reports and messages call it (``payments.json#2`` or the
    mapping's ``name``); ``responses`` are served in turn, cycling."""

    name: str
    request: RequestPattern
    responses: tuple[Response, ...]
    priority: int = DEFAULT_PRIORITY
    scenario: str | None = None
    required_state: str | None = None
    new_state: str | None = None


@dataclass(frozen=True)
class MockDefinitions:
    """A loaded set of stubs, where it came from, and what was deliberately left out."""

    stubs: tuple[Stub, ...]
    source: str = "<memory>"
    format: str = "wiremock"
    ignored: tuple[str, ...] = field(default=())  # unsupported fields, when not strict

    def __len__(self) -> int:
        return len(self.stubs)


# -- JSON form, for the loopback server process ------------------------------------------------


def stubs_to_json(stubs: tuple[Stub, ...]) -> list[dict[str, Any]]:
    return [_stub_dict(stub) for stub in stubs]


def stubs_from_json(items: list[dict[str, Any]]) -> tuple[Stub, ...]:
    return tuple(_stub_from(item) for item in items)


def _pattern_dict(p: ValuePattern) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "value": p.value,
        "ci": p.case_insensitive,
        "order": p.ignore_array_order,
        "extra": p.ignore_extra_elements,
    }


def _pattern_from(d: dict[str, Any]) -> ValuePattern:
    return ValuePattern(d["kind"], d["value"], d["ci"], d["order"], d["extra"])


def _stub_dict(stub: Stub) -> dict[str, Any]:
    r = stub.request
    return {
        "name": stub.name,
        "priority": stub.priority,
        "scenario": stub.scenario,
        "required_state": stub.required_state,
        "new_state": stub.new_state,
        "request": {
            "method": r.method,
            "url": [r.url.kind, r.url.value],
            "query": [[k, _pattern_dict(p)] for k, p in r.query],
            "headers": [[k, _pattern_dict(p)] for k, p in r.headers],
            "body": [_pattern_dict(p) for p in r.body],
            "host": r.host,
            "query_exact": None if r.query_exact is None else [list(q) for q in r.query_exact],
        },
        "responses": [
            {
                "status": resp.status,
                "headers": [list(h) for h in resp.headers],
                "body": base64.b64encode(resp.body).decode("ascii"),
                "reason": resp.reason,
                "delays": [[d.kind, d.a, d.b] for d in resp.delays],
                "fault": resp.fault,
            }
            for resp in stub.responses
        ],
    }


def _stub_from(d: dict[str, Any]) -> Stub:
    r = d["request"]
    exact = r["query_exact"]
    return Stub(
        name=d["name"],
        priority=d["priority"],
        scenario=d["scenario"],
        required_state=d["required_state"],
        new_state=d["new_state"],
        request=RequestPattern(
            method=r["method"],
            url=UrlPattern(*r["url"]),
            query=tuple((k, _pattern_from(p)) for k, p in r["query"]),
            headers=tuple((k, _pattern_from(p)) for k, p in r["headers"]),
            body=tuple(_pattern_from(p) for p in r["body"]),
            host=r["host"],
            query_exact=None if exact is None else tuple((k, v) for k, v in exact),
        ),
        responses=tuple(
            Response(
                status=x["status"],
                headers=tuple((k, v) for k, v in x["headers"]),
                body=base64.b64decode(x["body"]),
                reason=x["reason"],
                delays=tuple(Delay(k, a, b) for k, a, b in x["delays"]),
                fault=x["fault"],
            )
            for x in d["responses"]
        ),
    )


def canonical_json(value: Any) -> str:
    """A stable text form of a JSON value (sorted keys, no spaces) for signatures."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
