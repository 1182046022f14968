"""Which parts of the traffic does a leak need? Group testing, pure functions of an oracle.

``find_culprits`` searches endpoint templates, ``find_kind`` the kinds of request within a
culprit endpoint (``traffic.variations``).

``find_culprits`` is a function of an oracle ``leaks(kept endpoints) -> bool`` (in practice one
trial: a full cycles run of only those endpoints' traffic, ``isolation.trials``); the whole
traffic is known to leak (the measured run). A culprit is named only when it is **confirmed both
ways**: its traffic alone leaked in a trial, and the traffic without the culprits did not.

- **One culprit, binary splitting.** Replay half of the candidates; keep it if it leaks, else
  *presume* the other half (the whole leaked, this half did not). A presumed last endpoint is
  replayed alone; then the traffic without it. ``ceil(log2 E) + 2`` trials at most.
- **Several culprits.** While the traffic without the culprits found so far still leaks, search
  again in it. Then each culprit is put back once: if the traffic still does not leak, its
  removal was not needed (it leaked only because something else was removed: a *side effect*).
- **Interaction.** When a presumed culprit does not leak alone, the whole is replayed afresh: if
  that does not leak either the leak is *not reproduced*; otherwise QuickXplain (Junker; the
  logarithmic cousin of delta debugging's ddmin) finds the smallest set that leaks together.
- **Not confirmed.** A culprit or group that does not leak alone when replayed, or traffic that
  still leaks without every culprit, names nothing: the endpoints are reported as suspects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

SearchStatus = Literal["found", "interaction", "not-confirmed", "not-reproduced", "incomplete"]
#: Trials the endpoint search may use unless told otherwise.
MAX_SEARCH_TRIALS = 30


class Exhausted(Exception):
    """The isolation's budget (trials or time) is spent: report what is known."""


@dataclass(frozen=True)
class EndpointSearch:
    """What ``find_culprits`` concluded, and how many trials it took.

    ``culprits``: confirmed groups; one endpoint is a culprit on its own (it leaks alone and the
    traffic without the culprits does not), several leak only together (an interaction).
    ``cured``: whether the traffic without every culprit was replayed and did not leak
    (``None``: nothing was left to replay). ``suspects``: where the leak was narrowed to when
    the search could not confirm (or ran out of budget). ``side_effects``: endpoints that leaked
    when replayed without others but whose removal the leak does not need.
    """

    status: SearchStatus
    culprits: tuple[tuple[str, ...], ...]
    cured: bool | None
    suspects: tuple[str, ...]
    side_effects: tuple[str, ...]
    trials: int
    why: str = ""  # not-confirmed: which check failed; incomplete: what stopped the search


class _Oracle:
    """Memoised ``leaks(subset)`` with a trial budget; the universe is known to leak (the
    measured run) without a trial."""

    def __init__(
        self, universe: tuple[str, ...], leaks: Callable[[frozenset[str]], bool], budget: int
    ) -> None:
        self.universe = frozenset(universe)
        self._leaks = leaks
        self.budget = budget
        self.trials = 0
        self.known: dict[frozenset[str], bool] = {self.universe: True}
        self.leaked: set[frozenset[str]] = {self.universe}  # leaked in any trial
        self.narrowed: tuple[str, ...] = universe  # where the search is looking now

    def __call__(self, subset: Sequence[str] | frozenset[str], *, fresh: bool = False) -> bool:
        """Whether ``subset`` leaks: known, else one trial (``fresh``: one more trial)."""
        key = frozenset(subset)
        if not key:
            return False  # no traffic, no leak
        if key in self.known and not fresh:
            return self.known[key]
        if self.trials >= self.budget:
            raise Exhausted(f"{self.budget} trials")
        self.trials += 1
        self.known[key] = leaked = bool(self._leaks(key))
        if leaked:
            self.leaked.add(key)
        return leaked


def find_culprits(
    endpoints: Sequence[str],
    leaks: Callable[[frozenset[str]], bool],
    *,
    max_trials: int = MAX_SEARCH_TRIALS,
) -> EndpointSearch:
    """Find the endpoints a leak needs, given that replaying all of ``endpoints`` leaks.

    ``leaks(kept)`` replays only the endpoints in ``kept`` (never empty) and says whether that
    leaks. A single culprit among E endpoints costs at most ``ceil(log2 E) + 2`` trials. The
    order of ``endpoints`` is the splitting order: keep related endpoints next to each other.
    ``Exhausted`` raised by ``leaks`` (a time limit) ends the search like the trial budget.
    """
    universe = tuple(dict.fromkeys(endpoints))
    oracle = _Oracle(universe, leaks, max_trials)
    found: list[tuple[str, ...]] = []
    remaining = universe
    try:
        while True:
            group = _find_one(remaining, oracle)
            if group is None:
                break
            found.append(group)
            rest = tuple(e for e in remaining if e not in group)
            if not rest or not oracle(rest):
                break
            remaining = rest
        if not found:
            return EndpointSearch("not-reproduced", (), None, (), (), oracle.trials)
        kept, dropped = _needed(universe, found, oracle)
        if not kept:
            suspects = tuple(e for g in found for e in g)
            why = "no endpoint's removal was needed to stop the leak (each put back did not leak)"
            return EndpointSearch("not-confirmed", (), None, suspects, (), oracle.trials, why)
        return _confirmed(universe, kept, dropped, oracle)
    except Exhausted as exc:
        suspects = tuple(dict.fromkeys([*(e for g in found for e in g), *oracle.narrowed]))
        return EndpointSearch("incomplete", (), None, suspects, (), oracle.trials, str(exc))


def _confirmed(
    universe: tuple[str, ...],
    kept: list[tuple[str, ...]],
    dropped: list[tuple[str, ...]],
    oracle: _Oracle,
) -> EndpointSearch:
    """Name the groups only when each leaks alone and the traffic without all of them does not
    (both replayed, unless the group is the whole traffic: the measured run)."""
    side = tuple(e for group in dropped for e in group)
    named = {e for group in kept for e in group}
    suspects = tuple(e for e in universe if e in named)
    silent = [group for group in kept if not oracle(group)]
    without = tuple(e for e in universe if e not in named)
    # Cured only if no trial of it ever leaked (a flaky answer confirms nothing).
    cured = (not oracle(without) and frozenset(without) not in oracle.leaked) if without else None
    if silent:
        why = "did not leak when replayed alone: " + ", ".join(" + ".join(g) for g in silent)
        return EndpointSearch("not-confirmed", (), cured, suspects, side, oracle.trials, why)
    if cured is False:
        why = "the traffic without " + ", ".join(suspects) + " still leaked"
        return EndpointSearch("not-confirmed", (), cured, suspects, side, oracle.trials, why)
    status: SearchStatus = "interaction" if any(len(g) > 1 for g in kept) else "found"
    return EndpointSearch(status, tuple(kept), cured, (), side, oracle.trials)


def _find_one(candidates: tuple[str, ...], oracle: _Oracle) -> tuple[str, ...] | None:
    """One culprit (or interacting group) within ``candidates``, which leak together."""
    whole = candidates
    presumed = False
    while len(candidates) > 1:
        oracle.narrowed = candidates
        left, right = _halves(candidates)
        if oracle(left):
            candidates, presumed = left, False
        else:
            candidates, presumed = right, True  # the whole leaks, this half did not
    oracle.narrowed = candidates
    if not presumed or oracle(candidates):
        return candidates
    # The presumption failed: an interaction, a leak too small for the trials, or a leak of the
    # whole that was noise: replay the whole once more.
    if not oracle(whole, fresh=True):
        return None
    return _minimal(whole, oracle)


def _halves(items: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    middle = (len(items) + 1) // 2
    return items[:middle], items[middle:]


def _minimal(items: tuple[str, ...], oracle: _Oracle) -> tuple[str, ...]:
    """A minimal subset of ``items`` (which leak together) that still leaks: divide and
    conquer in the manner of Junker's QuickXplain — for a ``k``-endpoint interaction about
    ``2k·log2(n/k) + k`` trials, where ddmin may take ``n²``."""

    def explain(background: tuple[str, ...], added: bool, candidates: tuple[str, ...]) -> list[str]:
        if added and oracle(background):
            return []
        if len(candidates) == 1:
            return list(candidates)
        oracle.narrowed = candidates
        first, second = _halves(candidates)
        needed_second = explain(background + first, True, second)
        needed_first = explain(background + tuple(needed_second), bool(needed_second), first)
        return needed_first + needed_second

    found = set(explain((), False, items))
    return tuple(e for e in items if e in found)


def _needed(
    universe: tuple[str, ...], found: list[tuple[str, ...]], oracle: _Oracle
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Drop found groups the cure does not need: put each back; if the traffic still does not
    leak, it was not a culprit (it leaked only because something else was removed)."""
    kept = list(found)
    dropped: list[tuple[str, ...]] = []
    if len(kept) < 2:
        return kept, dropped
    for group in list(kept):
        others = {e for g in kept if g is not group for e in g}
        if not oracle(tuple(e for e in universe if e not in others)):
            kept.remove(group)
            dropped.append(group)
    return kept, dropped


#: Kinds of request screened per culprit, each replayed alone (cheap: a part of one endpoint) ...
MAX_KINDS_ALONE = 8
#: ... and confirmed by replaying the traffic without them (about as long as the measured run).
MAX_KIND_CONFIRMATIONS = 2


@dataclass(frozen=True)
class Kind:
    """A kind of request within an endpoint: its label, its requests, whether it is suspect
    (unknown or malformed ids, error statuses: leaks live on error paths)."""

    label: str
    requests: frozenset[int]
    suspect: bool = False


@dataclass(frozen=True)
class KindSearch:
    """What ``find_kind`` concluded: the confirmed kind's label (or ``None``), and every kind
    tried: its label, whether it leaked alone, whether the traffic without it leaked (``None``:
    not replayed)."""

    label: str | None
    tried: tuple[tuple[str, bool, bool | None], ...]


def find_kind(
    kinds: Sequence[Kind],
    leaks_alone: Callable[[Kind], bool],
    leaks_without: Callable[[Kind], bool],
    *,
    max_alone: int = MAX_KINDS_ALONE,
    max_confirmations: int = MAX_KIND_CONFIRMATIONS,
) -> KindSearch:
    """The kind of request a culprit endpoint leaks on, confirmed both ways: its requests alone
    leak (``leaks_alone``), and the traffic without them does not (``leaks_without``).

    Screening replays kinds alone, in the order given (a kind inside one that did not leak
    alone is known not to, and is skipped). A kind is then a *hypothesis* for the leaking
    requests when it agrees with every answer so far: it overlaps exactly the kinds that leaked
    alone, and is not inside a kind whose removal did not stop the leak. So two query shapes
    that share the leaking parameter (``_sort`` with ``_size``, ``_sort`` with ``_next``) point
    at ``_sort=*``, not at either shape. Screening stops when one hypothesis is left (it is
    confirmed at once) or none. Hypotheses are confirmed in the order given; a suspect kind that
    leaks alone is confirmed at once."""
    alone: dict[str, bool] = {}
    without: dict[str, bool] = {}
    confirmations = 0

    def agrees(kind: Kind) -> bool:
        if any(kind.requests <= k.requests for k in kinds if without.get(k.label)):
            return False
        return all(
            bool(kind.requests & k.requests) == alone[k.label] for k in kinds if k.label in alone
        )

    def confirm(kind: Kind) -> bool:
        nonlocal confirmations
        confirmations += 1
        without[kind.label] = leaked = leaks_without(kind)
        return not leaked

    def result(label: str | None) -> KindSearch:
        tried = tuple(
            (k.label, alone[k.label], without.get(k.label)) for k in kinds if k.label in alone
        )
        return KindSearch(label, tried)

    for kind in kinds:
        if len(alone) >= max_alone:
            break
        if any(kind.requests <= k.requests for k in kinds if alone.get(k.label) is False):
            continue
        alone[kind.label] = leaks_alone(kind)
        if kind.suspect and alone[kind.label] and agrees(kind) and confirm(kind):
            return result(kind.label)
        left = [k for k in kinds if agrees(k)]
        if not left:
            return result(None)  # no single kind explains the answers: stop screening
        if len(left) == 1 and alone.get(left[0].label) and left[0].label not in without:
            return result(left[0].label if confirm(left[0]) else None)  # the only hypothesis
    for kind in kinds:
        if confirmations >= max_confirmations:
            break
        if alone.get(kind.label) and kind.label not in without and agrees(kind) and confirm(kind):
            return result(kind.label)
    return result(None)
