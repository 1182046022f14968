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
``query``       the query's shape: parameter names, each with its value's kind
``body``        the body's shape: ``none``, ``json{keys}``, ``json[list]``, ``form{keys}``,
                ``text``, ``binary``
==============  =====================================================================

``variations(traffic, endpoint)`` returns, for every family with at least two values in the
endpoint, one ``Variation`` per value: the positions (in ``traffic``) of its exchanges.
``candidates`` merges variations that select the same exchanges (``status 4xx`` is often
exactly ``id unknown``) and orders them for the search: unknown or malformed ids and error
statuses first (leaks live on error paths), then the rest; by family, then fewest first.
Pure functions of the traffic; classifiers are a registry (``FAMILIES``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from pytest_soak.traffic.endpoints import is_id_like
from pytest_soak.traffic.model import Exchange

#: Families in the order they are described; the search order is ``candidates``'.
FAMILY_NAMES = ("id", "status", "method", "client", "content", "query", "body")

#: Values of a family that make a variation suspect first: leaks live on error paths.
SUSPECT_VALUES = {
    "status": ("5xx", "4xx", "3xx"),
    "id": ("malformed", "unknown"),
}

_BOT = re.compile(r"bot\b|crawl|spider|slurp|monitor|uptime|pingdom|headless|lighthouse", re.I)
_CLI = re.compile(
    r"^(curl|wget|httpie|python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"java/|apache-httpclient|libwww|axios|node-fetch|undici|postmanruntime|insomnia|k6|"
    r"locust|vegeta|hey/|ab/)",
    re.I,
)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ios\b|cfnetwork|okhttp|dalvik", re.I)
_BROWSER = re.compile(r"^mozilla/|^opera/", re.I)


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


class _Context:
    """What classifying one exchange needs to know about the whole recording."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self.id_states = _id_states(exchanges)
        self.id_shapes: dict[str, Counter[str]] = {}
        for exchange in exchanges:
            shapes = self.id_shapes.setdefault(exchange.endpoint, Counter())
            shapes.update(_shape(i) for i in _ids(exchange))


Classifier = Callable[[int, Exchange, _Context], "tuple[str, str] | None"]


def _status(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    if exchange.response is None:
        return "none", ""
    status = exchange.response.status
    return f"{status // 100}xx", str(status)


def _id(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    ids = _ids(exchange)
    if not ids:
        return None
    shapes = context.id_shapes.get(exchange.endpoint, Counter())
    usual = shapes.most_common(1)[0][0] if shapes else ""
    if any(_shape(i) != usual for i in ids) and shapes[usual] > 1:
        return "malformed", ""
    state = context.id_states[index]
    if state is None:
        return None
    return state, str(exchange.response.status) if exchange.response is not None else "none"


def _method(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    return exchange.method, ""


def _client(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    return client_family(exchange.header("user-agent")), ""


def _content(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    value = exchange.header("content-type")
    if not value:
        return "none", ""
    return value.split(";", 1)[0].strip().lower() or "none", ""


def _query(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    query = exchange.query
    if not query:
        return "none", ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return "other", ""
    return "&".join(f"{key}={_value_kind(value)}" for key, value in sorted(pairs)), ""


def _body(index: int, exchange: Exchange, context: _Context) -> tuple[str, str] | None:
    return body_shape(exchange), ""


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
    """For each family with two or more values among ``endpoint``'s exchanges, one variation
    per value (positions are indices into ``exchanges``)."""
    context = _Context(exchanges)
    mine = [(i, e) for i, e in enumerate(exchanges) if e.endpoint == endpoint]
    found: list[Variation] = []
    for family in FAMILY_NAMES:
        classify = FAMILIES[family]
        groups: dict[str, list[int]] = {}
        details: dict[str, Counter[str]] = {}
        for index, exchange in mine:
            classified = classify(index, exchange, context)
            if classified is None:
                continue
            value, detail = classified
            groups.setdefault(value, []).append(index)
            if detail:
                details.setdefault(value, Counter())[detail] += 1
        if len(groups) < 2:
            continue
        for value, indices in groups.items():
            detail = ", ".join(_counted(details.get(value, Counter()), len(indices)))
            found.append(Variation(family, value, frozenset(indices), detail))
    return found


def candidates(exchanges: Sequence[Exchange], endpoint: str) -> list[Candidate]:
    """Variations to remove one at a time: merged when they select the same exchanges; none
    that selects every exchange of the endpoint; suspect ones first (ids before recorded
    statuses: what the replayed service knows decides its code path), fewest first."""
    total = sum(1 for e in exchanges if e.endpoint == endpoint)
    merged: dict[frozenset[int], list[Variation]] = {}
    for variation in variations(exchanges, endpoint):
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


def _counted(details: Counter[str], total: int) -> list[str]:
    """``["404"]`` when all agree, else ``["204 ×56", "404 ×25"]`` (at most four)."""
    if len(details) == 1 and sum(details.values()) == total:
        return list(details)
    return [f"{d} ×{n}" for d, n in details.most_common(4)]


def _ids(exchange: Exchange) -> list[str]:
    """Id-like path segments and query values of an exchange."""
    found = [segment for segment in exchange.path.split("/") if segment and is_id_like(segment)]
    if exchange.query:
        found.extend(v for _, v in parse_qsl(exchange.query) if v and is_id_like(v))
    return found


def _shape(identifier: str) -> str:
    """The character-class outline of an id: ``c000123`` -> ``a9``, a UUID -> ``uuid``."""
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", identifier):
        return "uuid"
    outline: list[str] = []
    for char in identifier:
        kind = "9" if char.isdigit() else "a" if char.isalpha() else char
        if not outline or outline[-1] != kind:
            outline.append(kind)
    return "".join(outline)


_MAKING = ("POST", "PUT", "PATCH")


def _id_states(exchanges: Iterable[Exchange]) -> list[str | None]:
    """For each exchange: ``known`` when the replayed service will know every id in it,
    ``unknown`` otherwise; ``None`` when it has no ids or the recording has no responses.

    REST reading of the recording: an id is *made* by a 2xx ``POST``/``PUT``/``PATCH`` whose
    last path segment it is, and unmade by a 2xx ``DELETE`` of it. An id the recording makes
    or deletes somewhere is known only between being made and deleted *in the recording*: a
    replay makes only what the recording makes, so an id made before the capture started is
    unknown to the replayed service whatever the recorded answer was (a capture cut
    mid-session asks for such ids). Any other id (read-only data) is known when answered 2xx,
    there or earlier in the recording."""
    exchanges = list(exchanges)
    if not any(e.response is not None for e in exchanges):
        return [None] * len(exchanges)
    mutable: set[str] = set()
    for exchange in exchanges:
        own = _own_id(exchange)
        if own and _ok(exchange) and exchange.method in (*_MAKING, "DELETE"):
            mutable.add(own)
    made: set[str] = set()
    seen: set[str] = set()
    states: list[str | None] = []
    for exchange in exchanges:
        ids = _ids(exchange)
        if not ids:
            states.append(None)
        else:
            ok = _ok(exchange)
            known = all((i in made) if i in mutable else (i in seen or ok) for i in ids)
            states.append("known" if known else "unknown")
        if _ok(exchange):
            seen.update(ids)
            own = _own_id(exchange)
            if own and exchange.method in _MAKING:
                made.add(own)
            elif own and exchange.method == "DELETE":
                made.discard(own)
    return states


def _ok(exchange: Exchange) -> bool:
    return exchange.response is not None and 200 <= exchange.response.status < 300


def _own_id(exchange: Exchange) -> str | None:
    """The id a request is about: its last path segment, when id-like."""
    last = exchange.path.rstrip("/").rsplit("/", 1)[-1]
    return last if last and is_id_like(last) else None


def _value_kind(value: str) -> str:
    if not value:
        return "empty"
    if value.isdigit():
        return "number"
    if is_id_like(value):
        return "id"
    if len(value) > 64:
        return "long"
    return "word"
