"""Kinds of request within one endpoint: the *variations* the exclusion method removes one by one.

Every exchange of an endpoint (``DELETE /cart/delete/{id}``) is classified by each family:

==============  =====================================================================
family          values
==============  =====================================================================
``status``      class of the recorded response: ``2xx``, ``3xx``, ``4xx``, ``5xx``, ``none``
``id``          the ids in its path and query: ``known`` to the replayed service (made
                earlier in the recording and not deleted since; read-only ids: answered
                2xx earlier), ``unknown``, ``malformed`` (a shape the endpoint's ids
                do not usually have)
``method``      the HTTP method (one value per endpoint unless endpoints are merged)
``client``      the User-Agent family: ``browser``, ``mobile``, ``bot``, ``cli``,
                ``other``, ``none``
``content``     the request's media type (``application/json``), or ``none``
``query``       one axis per query parameter ``p``: ``p=*`` (carries it, any value) or
                ``p=absent``; and among the requests carrying it, the kind of its value:
                ``p=empty``, ``p=number``, ``p=bool``, ``p=id``, ``p=list`` (repeated or
                comma-separated), ``p=long``, ``p=word``
``body``        the body's shape: ``none``, ``json{keys}``, ``json[list]``, ``form{keys}``,
                ``text``, ``binary``
==============  =====================================================================

A family has one *axis* (``query`` has two per parameter). ``variations(traffic, endpoint)``
returns, for every axis with at least two values in the endpoint, one ``Variation`` per value:
the positions (in ``traffic``) of its exchanges. So ``query _sort=*`` selects every request
that sorts, whatever its other parameters. Only the ``MAX_QUERY_PARAMETERS`` most frequent
parameters that vary get their own axes; rarer ones are lumped into one ``(others)`` axis
(carries any of them or none), which bounds the candidates an endpoint yields.

``candidates`` merges variations that select the same exchanges (``status 4xx`` is often
exactly ``id unknown``) and orders them for the search: unknown or malformed ids and error
statuses first (leaks live on error paths), then the rest; by family, then fewest first.
``request_kinds`` labels every exchange of a recording with the variations it belongs to, in
one pass. Pure functions of the traffic; classifiers are a registry (``FAMILIES``).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from pytest_soak.traffic.endpoints import is_id_like, split_id, template_path
from pytest_soak.traffic.model import Exchange

#: Families in the order they are described; the search order is ``candidates``'.
FAMILY_NAMES = ("id", "status", "method", "client", "content", "query", "body")

#: Values of a family that make a variation suspect first: leaks live on error paths.
SUSPECT_VALUES = {
    "status": ("5xx", "4xx", "3xx"),
    "id": ("malformed", "unknown"),
}

#: Query parameters of one endpoint with their own axes; rarer ones share ``OTHERS``.
MAX_QUERY_PARAMETERS = 6
#: The axis of the lumped rare query parameters: ``(others)=*`` or ``(others)=absent``.
OTHERS = "(others)"

_BOT = re.compile(r"bot\b|crawl|spider|slurp|monitor|uptime|pingdom|headless|lighthouse", re.I)
_CLI = re.compile(
    r"^(curl|wget|httpie|python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"java/|apache-httpclient|libwww|axios|node-fetch|undici|postmanruntime|insomnia|k6|"
    r"locust|vegeta|hey/|ab/)",
    re.I,
)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ios\b|cfnetwork|okhttp|dalvik", re.I)
_BROWSER = re.compile(r"^mozilla/|^opera/", re.I)
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_SPECIAL_TARGET = re.compile(r"^//|[#\t\r\n]")  # where only urlsplit knows the path
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class Variation:
    """One value of one family within an endpoint: which exchanges it selects."""

    family: str
    value: str
    indices: frozenset[int]  # positions in the traffic the endpoint was classified from
    detail: str = ""  # e.g. the exact statuses behind ``4xx``: "404"

    @property
    def label(self) -> str:
        text = f"{_FAMILY_LABELS.get(self.family, self.family)} {self.value}"
        prefix = "recorded " if self.family == "id" else ""
        return f"{text} ({prefix}{self.detail})" if self.detail else text


@dataclass(frozen=True)
class Candidate:
    """Variations selecting exactly the same exchanges, tried as one in the search."""

    variations: tuple[Variation, ...]

    @property
    def indices(self) -> frozenset[int]:
        return self.variations[0].indices

    @property
    def label(self) -> str:
        return " = ".join(v.label for v in self.variations)

    @property
    def suspect(self) -> bool:
        return any(v.value in SUSPECT_VALUES.get(v.family, ()) for v in self.variations)


_FAMILY_LABELS = {
    "status": "recorded status",
    "id": "id",
    "method": "method",
    "client": "client",
    "content": "content type",
    "query": "query",
    "body": "body",
}


@dataclass(slots=True)
class _Request:
    """What classifying needs from one exchange, parsed once (never changed after)."""

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


class _Context:
    """What classifying one exchange needs to know about the whole recording."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self.requests = _requests(exchanges)
        self.id_states = _id_states(exchanges, self.requests)
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


#: ``(axis, value, detail)``: ``axis`` is ``""`` for a family's only axis (``query``: one per
#: parameter); ``detail`` is what ``value`` stands for in this exchange (``"404"``), or ``""``.
Classified = tuple[str, str, str]
Classifier = Callable[[int, Exchange, _Context], "list[Classified]"]


def _status(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    if exchange.response is None:
        return [("", "none", "")]
    status = exchange.response.status
    return [("", f"{status // 100}xx", str(status))]


def _id(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    request = context.requests[index]
    if not request.ids:
        return []
    usual = context.usual_shape.get(request.endpoint, "")
    if context.id_shapes[request.endpoint][usual] > 1 and any(
        shape != usual for shape in request.id_shapes
    ):
        return [("", "malformed", "")]
    state = context.id_states[index]
    if state is None:
        return []
    status = exchange.response.status if exchange.response is not None else "none"
    return [("", state, str(status))]


def _method(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    return [("", exchange.method, "")]


def _client(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    return [("", _cached_client_family(exchange.header("user-agent")), "")]


def _content(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    value = exchange.header("content-type")
    media = value.split(";", 1)[0].strip().lower() if value else ""
    return [("", media or "none", "")]


def _query(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    request = context.requests[index]
    axes = context.query_axes.get(request.endpoint)
    if axes is None:
        return []
    found: list[Classified] = []
    for name in axes.kept:
        kind = request.parameters.get(name)
        if kind is None:
            found.append((name, f"{name}=absent", ""))
        else:
            found.append((name, f"{name}=*", ""))
            found.append((f"{name}=", f"{name}={kind}", ""))
    if axes.lumped:
        carried = ", ".join(sorted(n for n in request.parameters if n in axes.lumped))
        found.append((OTHERS, f"{OTHERS}=*" if carried else f"{OTHERS}=absent", carried))
    return found


def _body(index: int, exchange: Exchange, context: _Context) -> list[Classified]:
    return [("", body_shape(exchange), "")]


#: The classifiers, by family name (a registry: add a family by adding an entry).
FAMILIES: Mapping[str, Classifier] = {
    "status": _status,
    "id": _id,
    "method": _method,
    "client": _client,
    "content": _content,
    "query": _query,
    "body": _body,
}


def client_family(user_agent: str | None) -> str:
    """``browser``, ``mobile`` (mobile browsers and native apps), ``bot``, ``cli`` (scripts,
    HTTP libraries and load tools), ``other``, or ``none`` without a User-Agent."""
    if not user_agent:
        return "none"
    if _BOT.search(user_agent):
        return "bot"
    if _CLI.search(user_agent):
        return "cli"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _BROWSER.search(user_agent):
        return "browser"
    return "other"


_cached_client_family = functools.lru_cache(maxsize=4096)(client_family)


def body_shape(exchange: Exchange) -> str:
    """``none``, ``json{a,b}`` (an object's sorted keys), ``json[list]``, ``json(scalar)``,
    ``form{a,b}``, ``text`` or ``binary``."""
    body = exchange.body
    if not body:
        return "none"
    content = (exchange.header("content-type") or "").lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    if "json" in content or text.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except ValueError:
            return "text"
        if isinstance(value, dict):
            return "json{" + ",".join(sorted(str(k) for k in value)) + "}"
        if isinstance(value, list):
            return "json[list]"
        return "json(scalar)"
    if "form-urlencoded" in content:
        return "form{" + ",".join(sorted({k for k, _ in parse_qsl(text)})) + "}"
    return "text"


def variations(exchanges: Sequence[Exchange], endpoint: str) -> list[Variation]:
    """For each axis with two or more values among ``endpoint``'s exchanges, one variation
    per value (positions are indices into ``exchanges``)."""
    return _variations(exchanges, _Context(exchanges), endpoint)


def candidates(exchanges: Sequence[Exchange], endpoint: str) -> list[Candidate]:
    """Variations to remove one at a time: merged when they select the same exchanges; none
    that selects every exchange of the endpoint; suspect ones first (ids before recorded
    statuses: what the replayed service knows decides its code path), fewest first."""
    context = _Context(exchanges)
    total = sum(1 for request in context.requests if request.endpoint == endpoint)
    merged: dict[frozenset[int], list[Variation]] = {}
    for variation in _variations(exchanges, context, endpoint):
        if 0 < len(variation.indices) < total:
            merged.setdefault(variation.indices, []).append(variation)
    found = [Candidate(tuple(group)) for group in merged.values()]
    order = {name: n for n, name in enumerate(FAMILY_NAMES)}
    found.sort(
        key=lambda c: (
            not c.suspect,
            min(order[v.family] for v in c.variations),
            len(c.indices),
            c.label,
        )
    )
    return found


#: An exchange's endpoint and its ``(family, axis, value)`` kinds.
_KindsKey = tuple[str, tuple[tuple[str, str, str], ...]]


def request_kinds(exchanges: Sequence[Exchange]) -> list[frozenset[str]]:
    """For each exchange (same order), the kinds it is: its endpoint (``"GET /search"``) and,
    for every variation of its endpoint it belongs to, ``"<endpoint> | <family>=<value>"``
    (``"DELETE /cart/delete/{id} | id=unknown"``; query: ``"GET /search | query:q=word"``).

    The labels are exactly the ``variations`` of each endpoint (axes with two or more values),
    computed for the whole recording at once; exchanges of the same kinds share one set."""
    context = _Context(exchanges)
    classifiers = [(family, FAMILIES[family]) for family in FAMILY_NAMES]
    keys: list[_KindsKey] = []
    values: dict[tuple[str, str, str], set[str]] = {}
    distinct: set[_KindsKey] = set()
    for index, exchange in enumerate(exchanges):
        endpoint = context.requests[index].endpoint
        kinds: list[tuple[str, str, str]] = []
        for family, classify in classifiers:
            for axis, value, _ in classify(index, exchange, context):
                kinds.append((family, axis, value))
        key = (endpoint, tuple(kinds))
        keys.append(key)
        if key not in distinct:
            distinct.add(key)
            for family, axis, value in key[1]:
                values.setdefault((endpoint, family, axis), set()).add(value)
    varying = {key for key, seen in values.items() if len(seen) > 1}
    labels = {key: _labels(key, varying) for key in distinct}
    return [labels[key] for key in keys]


def _labels(key: _KindsKey, varying: set[tuple[str, str, str]]) -> frozenset[str]:
    endpoint, kinds = key
    labels = {endpoint}
    for family, axis, value in kinds:
        if (endpoint, family, axis) in varying:
            separator = ":" if family == "query" else "="
            labels.add(f"{endpoint} | {family}{separator}{value}")
    return frozenset(labels)


def _variations(exchanges: Sequence[Exchange], context: _Context, endpoint: str) -> list[Variation]:
    mine = [i for i, request in enumerate(context.requests) if request.endpoint == endpoint]
    axes: dict[tuple[str, str], dict[str, list[int]]] = {}
    details: dict[tuple[str, str], Counter[str]] = {}
    for family in FAMILY_NAMES:
        classify = FAMILIES[family]
        for index in mine:
            for axis, value, detail in classify(index, exchanges[index], context):
                axes.setdefault((family, axis), {}).setdefault(value, []).append(index)
                if detail:
                    details.setdefault((family, value), Counter())[detail] += 1
    found: list[Variation] = []
    for (family, _), groups in axes.items():
        if len(groups) < 2:
            continue
        for value, indices in groups.items():
            detail = ", ".join(_counted(details.get((family, value), Counter()), len(indices)))
            found.append(Variation(family, value, frozenset(indices), detail))
    return found


def _counted(details: Counter[str], total: int) -> list[str]:
    """``["404"]`` when all agree, else ``["204 ×56", "404 ×25"]`` (at most four)."""
    if len(details) == 1 and sum(details.values()) == total:
        return list(details)
    return [f"{d} ×{n}" for d, n in details.most_common(4)]


def _requests(exchanges: Sequence[Exchange]) -> list[_Request]:
    """Each exchange parsed; a request repeated (same method and target) is parsed once."""
    parsed: dict[tuple[str, str], _Request] = {}
    requests: list[_Request] = []
    for exchange in exchanges:
        key = (exchange.method, exchange.target)
        request = parsed.get(key)
        if request is None:
            request = parsed[key] = _request(exchange)
        requests.append(request)
    return requests


def _request(exchange: Exchange) -> _Request:
    path, query = _path_and_query(exchange.target)
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    template = template_path(path)
    ids = [] if template == path else [f[0] for f in map(split_id, path.split("/")) if f]
    ids.extend(value for _, value in pairs if value and is_id_like(value))
    own = split_id(path.rstrip("/").rsplit("/", 1)[-1]) if ids else None
    return _Request(
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


def _query_axes(requests: Sequence[_Request]) -> dict[str, _QueryAxes]:
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


def _id_states(exchanges: Sequence[Exchange], requests: Sequence[_Request]) -> list[str | None]:
    """For each exchange: ``known`` when the replayed service will know every id in it,
    ``unknown`` otherwise; ``None`` when it has no ids or the recording has no responses.

    REST reading of the recording: an id is *made* by a 2xx ``POST``/``PUT``/``PATCH`` whose
    last path segment it is, and unmade by a 2xx ``DELETE`` of it. An id the recording makes
    or deletes somewhere is known only between being made and deleted *in the recording*: a
    replay makes only what the recording makes, so an id made before the capture started is
    unknown to the replayed service whatever the recorded answer was (a capture cut
    mid-session asks for such ids). Any other id (read-only data) is known when answered 2xx,
    there or earlier in the recording."""
    if not any(e.response is not None for e in exchanges):
        return [None] * len(exchanges)
    mutable: set[str] = set()
    for exchange, request in zip(exchanges, requests, strict=True):
        own = request.own_id
        if own and _ok(exchange) and exchange.method in (*_MAKING, "DELETE"):
            mutable.add(own)
    made: set[str] = set()
    seen: set[str] = set()
    states: list[str | None] = []
    for exchange, request in zip(exchanges, requests, strict=True):
        ids = request.ids
        ok = _ok(exchange)
        if not ids:
            states.append(None)
        else:
            known = all((i in made) if i in mutable else (i in seen or ok) for i in ids)
            states.append("known" if known else "unknown")
        if ok:
            seen.update(ids)
            own = request.own_id
            if own and exchange.method in _MAKING:
                made.add(own)
            elif own and exchange.method == "DELETE":
                made.discard(own)
    return states


def _ok(exchange: Exchange) -> bool:
    return exchange.response is not None and 200 <= exchange.response.status < 300


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
