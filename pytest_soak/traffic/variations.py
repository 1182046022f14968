"""Kinds of request within one endpoint: the *variations* the exclusion method removes one by one.

Every exchange of an endpoint is classified by each family (``families``: ``status``, ``id``,
``method``, ``client``, ``content``, ``query``, ``body``); a family has one *axis* (``query``
has two per parameter). ``variations(traffic, endpoint)`` returns, for every axis with at
least two values in the endpoint, one ``Variation`` per value: the positions (in ``traffic``)
of its exchanges. So ``query _sort=*`` selects every request that sorts, whatever its other
parameters. Only the ``MAX_QUERY_PARAMETERS`` most frequent parameters that vary get their own
axes (``request_facts``); rarer ones are lumped into one ``(others)`` axis (carries any of
them or none), which bounds the candidates an endpoint yields.

``candidates`` merges variations that select the same exchanges (``status 4xx`` is often
exactly ``id unknown``) and orders them for the search: unknown or malformed ids and error
statuses first (leaks live on error paths), then the rest; by family, then fewest first.
``request_kinds`` labels every exchange of a recording with the variations it belongs to, in
one pass. Pure functions of the traffic; classifiers are a registry (``FAMILIES``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_soak.traffic.families import FAMILIES, FAMILY_LABELS, FAMILY_NAMES
from pytest_soak.traffic.model import Exchange
from pytest_soak.traffic.request_facts import RecordingFacts

#: Values of a family that make a variation suspect first: leaks live on error paths.
SUSPECT_VALUES = {
    "status": ("5xx", "4xx", "3xx"),
    "id": ("malformed", "unknown"),
}


@dataclass(frozen=True)
class Variation:
    """One value of one family within an endpoint: which exchanges it selects."""

    family: str
    value: str
    indices: frozenset[int]  # positions in the traffic the endpoint was classified from
    detail: str = ""  # e.g. the exact statuses behind ``4xx``: "404"

    @property
    def label(self) -> str:
        text = f"{FAMILY_LABELS.get(self.family, self.family)} {self.value}"
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


def variations(exchanges: Sequence[Exchange], endpoint: str) -> list[Variation]:
    """For each axis with two or more values among ``endpoint``'s exchanges, one variation
    per value (positions are indices into ``exchanges``)."""
    return _variations(exchanges, RecordingFacts(exchanges), endpoint)


def candidates(exchanges: Sequence[Exchange], endpoint: str) -> list[Candidate]:
    """Variations to remove one at a time: merged when they select the same exchanges; none
    that selects every exchange of the endpoint; suspect ones first (ids before recorded
    statuses: what the replayed service knows decides its code path), fewest first."""
    facts = RecordingFacts(exchanges)
    total = sum(1 for request in facts.requests if request.endpoint == endpoint)
    merged: dict[frozenset[int], list[Variation]] = {}
    for variation in _variations(exchanges, facts, endpoint):
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


def request_kinds(
    exchanges: Sequence[Exchange], facts: RecordingFacts | None = None
) -> list[frozenset[str]]:
    """For each exchange (same order), the kinds it is: its endpoint (``"GET /search"``) and,
    for every variation of its endpoint it belongs to, ``"<endpoint> | <family>=<value>"``
    (``"DELETE /cart/delete/{id} | id=unknown"``; query: ``"GET /search | query:q=word"``).

    The labels are exactly the ``variations`` of each endpoint (axes with two or more values),
    computed for the whole recording at once; exchanges of the same kinds share one set.
    ``facts`` are the recording's, when the caller has them already."""
    facts = RecordingFacts(exchanges) if facts is None else facts
    classifiers = [(family, FAMILIES[family]) for family in FAMILY_NAMES]
    keys: list[_KindsKey] = []
    values: dict[tuple[str, str, str], set[str]] = {}
    distinct: set[_KindsKey] = set()
    for index, exchange in enumerate(exchanges):
        endpoint = facts.requests[index].endpoint
        kinds: list[tuple[str, str, str]] = []
        for family, classify in classifiers:
            for axis, value, _ in classify(index, exchange, facts):
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


def _variations(
    exchanges: Sequence[Exchange], facts: RecordingFacts, endpoint: str
) -> list[Variation]:
    mine = [i for i, request in enumerate(facts.requests) if request.endpoint == endpoint]
    axes: dict[tuple[str, str], dict[str, list[int]]] = {}
    details: dict[tuple[str, str], Counter[str]] = {}
    for family in FAMILY_NAMES:
        classify = FAMILIES[family]
        for index in mine:
            for axis, value, detail in classify(index, exchanges[index], facts):
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
