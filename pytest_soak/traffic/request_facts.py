"""What classifying requests needs to know of the recording, read once for all of it.

Each request is parsed once (``RequestFacts``; a request repeated, same method and target,
shares one): its endpoint (``DELETE /cart/delete/{id}``), its ids (id-like path segments and
query values) and their shapes, the id of its last path segment, and the kind of each query
parameter's value. Over the whole recording (``RecordingFacts``): whether the replayed service
will know each request's ids (a REST reading of the recording, ``_id_states``), the usual
shape of an endpoint's ids, and the query parameters with their own axes (at most
``MAX_QUERY_PARAMETERS``; rarer ones share ``OTHERS``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from pytest_soak.traffic.endpoints import is_id_like, split_id, template_path
from pytest_soak.traffic.model import Exchange

#: Query parameters of one endpoint with their own axes; rarer ones share ``OTHERS``.
MAX_QUERY_PARAMETERS = 6
#: The axis of the lumped rare query parameters: ``(others)=*`` or ``(others)=absent``.
OTHERS = "(others)"

_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_SPECIAL_TARGET = re.compile(r"^//|[#\t\r\n]")  # where only urlsplit knows the path
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


@dataclass(slots=True)
class RequestFacts:
    """What classifying needs from one exchange, parsed once (never changed after)."""

    method: str
    endpoint: str
    ids: tuple[str, ...]  # id-like path segments (their id part) and query values
    id_shapes: tuple[str, ...]  # ``_shape`` of each id
    own_id: str | None  # the id of its last path segment
    parameters: Mapping[str, str]  # query parameter -> the kind of its value


@dataclass(frozen=True, slots=True)
class _QueryAxes:
    """An endpoint's query parameters with their own axes, and the lumped rare ones."""

    kept: tuple[str, ...]
    lumped: frozenset[str]


class RecordingFacts:
    """What classifying one exchange needs to know about the whole recording."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self.requests, statuses = _requests(exchanges)  # one pass over the exchanges
        self.id_states = _id_states(self.requests, statuses)
        id_shapes: dict[str, Counter[str]] = {}
        for request in self.requests:
            shapes = id_shapes.setdefault(request.endpoint, Counter())
            shapes.update(request.id_shapes)
        self.id_shapes = id_shapes
        self.usual_shape = {
            endpoint: shapes.most_common(1)[0][0]
            for endpoint, shapes in id_shapes.items()
            if shapes
        }
        self.query_axes = _query_axes(self.requests)


def _requests(exchanges: Sequence[Exchange]) -> tuple[list[RequestFacts], list[int]]:
    """Each exchange parsed, and its recorded status (-1: no recorded response); a request
    repeated (same method and target) is parsed once. The only pass over the exchanges
    (a recording read from the cache builds each one as it is read: ``stored.py``)."""
    parsed: dict[tuple[str, str], RequestFacts] = {}
    requests: list[RequestFacts] = []
    statuses: list[int] = []
    for exchange in exchanges:
        key = (exchange.method, exchange.target)
        request = parsed.get(key)
        if request is None:
            request = parsed[key] = _request(exchange)
        requests.append(request)
        response = exchange.response
        statuses.append(-1 if response is None else response.status)
    return requests, statuses


def _request(exchange: Exchange) -> RequestFacts:
    path, query = _path_and_query(exchange.target)
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    template = template_path(path)
    ids = [] if template == path else [f[0] for f in map(split_id, path.split("/")) if f]
    ids.extend(value for _, value in pairs if value and is_id_like(value))
    own = split_id(path.rstrip("/").rsplit("/", 1)[-1]) if ids else None
    return RequestFacts(
        method=exchange.method,
        endpoint=f"{exchange.method} {template}",
        ids=tuple(ids),
        id_shapes=tuple(map(_shape, ids)),
        own_id=own[0] if own else None,
        parameters=_parameter_kinds(pairs),
    )


def _path_and_query(target: str) -> tuple[str, str]:
    """``urlsplit``'s path (``/`` when empty) and query, without its cost for plain targets."""
    if _SPECIAL_TARGET.search(target):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path or "/", query


def _parameter_kinds(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each parameter's value kind; a parameter given more than once is a ``list``."""
    kinds: dict[str, str] = {}
    for name, value in pairs:
        kinds[name] = "list" if name in kinds else _value_kind(value)
    return kinds


def _query_axes(requests: Sequence[RequestFacts]) -> dict[str, _QueryAxes]:
    """Per endpoint, the parameters that vary (not carried by every request with one kind of
    value): the ``MAX_QUERY_PARAMETERS`` most frequent keep their own axes, unless more
    vary: then the rarer ones share ``OTHERS``."""
    totals: Counter[str] = Counter()
    carriers: dict[str, Counter[str]] = {}
    kinds: dict[tuple[str, str], set[str]] = {}
    for request in requests:
        totals[request.endpoint] += 1
        if request.parameters:
            carriers.setdefault(request.endpoint, Counter()).update(request.parameters.keys())
            for name, kind in request.parameters.items():
                kinds.setdefault((request.endpoint, name), set()).add(kind)
    found: dict[str, _QueryAxes] = {}
    for endpoint, counts in carriers.items():
        vary = [
            name
            for name, count in counts.items()
            if count < totals[endpoint] or len(kinds[endpoint, name]) > 1
        ]
        vary.sort(key=lambda name: (-counts[name], name))
        if len(vary) > MAX_QUERY_PARAMETERS:
            cut = MAX_QUERY_PARAMETERS - 1
            found[endpoint] = _QueryAxes(tuple(vary[:cut]), frozenset(vary[cut:]))
        elif vary:
            found[endpoint] = _QueryAxes(tuple(vary), frozenset())
    return found


@functools.lru_cache(maxsize=65536)
def _shape(identifier: str) -> str:
    """The outline of an id: ``c000123`` -> ``a9``, a UUID -> ``uuid``, a 40-hex-digit hash
    -> ``hex40``, ``42`` -> ``9``."""
    if _UUID.fullmatch(identifier):
        return "uuid"
    if not identifier.isdigit() and _HEX.fullmatch(identifier):
        return f"hex{len(identifier)}"
    outline: list[str] = []
    for char in identifier:
        kind = "9" if char.isdigit() else "a" if char.isalpha() else char
        if not outline or outline[-1] != kind:
            outline.append(kind)
    return "".join(outline)


_MAKING = ("POST", "PUT", "PATCH")


def _id_states(requests: Sequence[RequestFacts], statuses: Sequence[int]) -> list[str | None]:
    """For each exchange (its request's facts and recorded status, -1 for none): ``known``
    when the replayed service will know every id in it, ``unknown`` otherwise; ``None`` when
    it has no ids or the recording has no responses.

    REST reading of the recording: an id is *made* by a 2xx ``POST``/``PUT``/``PATCH`` whose
    last path segment it is, and unmade by a 2xx ``DELETE`` of it. An id the recording makes
    or deletes somewhere is known only between being made and deleted *in the recording*: a
    replay makes only what the recording makes, so an id made before the capture started is
    unknown to the replayed service whatever the recorded answer was (a capture cut
    mid-session asks for such ids). Any other id (read-only data) is known when answered 2xx,
    there or earlier in the recording."""
    if all(status < 0 for status in statuses):
        return [None] * len(statuses)
    mutable: set[str] = set()
    for status, request in zip(statuses, requests, strict=True):
        own = request.own_id
        if own and 200 <= status < 300 and request.method in (*_MAKING, "DELETE"):
            mutable.add(own)
    made: set[str] = set()
    seen: set[str] = set()
    states: list[str | None] = []
    for status, request in zip(statuses, requests, strict=True):
        ids = request.ids
        ok = 200 <= status < 300
        if not ids:
            states.append(None)
        else:
            known = all((i in made) if i in mutable else (i in seen or ok) for i in ids)
            states.append("known" if known else "unknown")
        if ok:
            seen.update(ids)
            own = request.own_id
            if own and request.method in _MAKING:
                made.add(own)
            elif own and request.method == "DELETE":
                made.discard(own)
    return states


def _value_kind(value: str) -> str:
    """``empty``, ``number`` (``12``, ``-3.5``), ``bool``, ``id``, ``list`` (``a,b``),
    ``long`` (over 64 characters) or ``word``."""
    if not value:
        return "empty"
    if _DECIMAL.fullmatch(value):
        return "number"
    if value.lower() in ("true", "false"):
        return "bool"
    if is_id_like(value):
        return "id"
    if "," in value and sum(1 for part in value.split(",") if part) > 1:
        return "list"
    if len(value) > 64:
        return "long"
    return "word"
