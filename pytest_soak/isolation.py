"""Leak isolation by the exclusion method: which endpoint, and which kind of request, leaks.

A person with filters replays the load without endpoint A, then without B, ... until the leak
goes away, then removes kinds of request (browser vs mobile, valid vs invalid id) until the
leaking kind is pinned. This module does it automatically, in fewer replays (docs/isolation.md):

1. **Endpoints** — ``find_culprits``, a pure function of a ``leaks(kept endpoints) -> bool``
   oracle: adaptive binary splitting (replay half of the endpoints; keep the half that leaks,
   else presume the other) finds one culprit in ``ceil(log2 E)`` replays plus at most two
   checks: the culprit alone (when it was only presumed) and the traffic without it. When the
   leak survives without it, the search repeats on the rest (several culprits); culprits whose
   removal turns out not to be needed are dropped (an endpoint that leaks only because another
   was removed). When a presumed culprit does not leak alone, the whole traffic is replayed
   compressed: if that does not leak either the leak is *not reproduced* by short replays;
   otherwise a divide-and-conquer minimiser (QuickXplain, the logarithmic cousin of delta
   debugging's ddmin) finds the smallest set of endpoints that leaks only together: an
   *interaction*, reported as such.
2. **Variations** — within a culprit endpoint, the kinds of request of
   ``traffic.variations.candidates`` are removed one at a time (suspect ones first: error
   statuses, unknown or malformed ids); the first whose removal stops the leak is the culprit
   variation, and replaying it alone checks it still leaks (the minimal reproduction).
3. **Mutations** (optional) — the culprit endpoint's requests mutated by hypothesis
   (``traffic.mutations``): does unexpected input leak too?

Every replay is a compressed ``run_soak`` of a subset; the whole isolation is bounded in
replays and in time, and stops by itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from pytest_soak.analysis import FLATTENING, P_LIMIT
from pytest_soak.errors import SoakError
from pytest_soak.runner import MIN_REQUESTS_PER_SEGMENT, run_soak
from pytest_soak.traffic.model import Exchange, RecordedResponse, Traffic

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult
    from pytest_soak.settings import Settings

#: A replay of a subset takes this share of the test's wall time ...
PROBE_SHARE = 0.25
#: ... but at least / at most this long (seconds).
MIN_PROBE_SECONDS = 2.0
MAX_PROBE_SECONDS = 300.0
#: A replay plans at least this many passes over its subset, so that its warm-up (at most
#: 40% of the run) covers one full pass: state that fills once per pass is not a trend.
PROBE_PASSES = 2.5
#: The request rate may be raised this much to fit those requests; beyond, the replay is longer.
MAX_RATE_FACTOR = 2.0
#: A replay leaks when the leak rule holds with this share of the noise floor: replays are
#: shorter than the run that found the leak, so the same leak grows less in them.
PROBE_SIZE_SHARE = 0.5
#: The whole isolation: at most this many replays, and this much time (a multiple of the
#: test's wall time, within bounds); a replay is not started when it would end past the limit.
MAX_REPLAYS = 30
TIME_LIMIT_FACTOR = 8.0
MIN_TIME_LIMIT = 180.0
MAX_TIME_LIMIT = 3600.0
#: Variations and mutations tried per culprit endpoint.
MAX_VARIATIONS = 3
MAX_MUTATIONS = 5

#: Secrets never written to a reproduction file: headers (by name or by part of the name),
#: query parameters and JSON body fields.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_NAME = re.compile(
    r"token|secret|passw|api[-_]?key|apikey|auth(?!or)|session|cookie|credential|signature|^sig$|"
    r"^key$|private",
    re.I,
)
REDACTED = "REDACTED"


class Exhausted(Exception):
    """The isolation's budget (replays or time) is spent: report what is known."""


# --------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class EndpointSearch:
    """What ``find_culprits`` concluded, and how many replays it took.

    ``culprits``: each a tuple of endpoints; one endpoint is a culprit on its own (it leaks
    alone and the leak needs it), several leak only together (an interaction).
    ``cured``: whether the traffic without every culprit was replayed and did not leak
    (``None``: not replayed, e.g. nothing was left). ``suspects``: when the budget ran out,
    the endpoints the leak was narrowed to. ``side_effects``: endpoints that leaked when
    replayed without others but whose removal the leak does not need.
    """

    status: str
    culprits: tuple[tuple[str, ...], ...]
    cured: bool | None
    suspects: tuple[str, ...]
    side_effects: tuple[str, ...]
    replays: int


class _Oracle:
    """Memoised ``leaks(subset)`` with a replay budget; the universe is known to leak (the
    measured run) without a replay."""

    def __init__(
        self, universe: tuple[str, ...], leaks: Callable[[frozenset[str]], bool], budget: int
    ) -> None:
        self.universe = frozenset(universe)
        self._leaks = leaks
        self.budget = budget
        self.replays = 0
        self.known: dict[frozenset[str], bool] = {self.universe: True}
        self.replayed: set[frozenset[str]] = set()
        self.narrowed: tuple[str, ...] = universe  # where the search is looking now

    def __call__(self, subset: Sequence[str] | frozenset[str], *, fresh: bool = False) -> bool:
        key = frozenset(subset)
        if not key:
            return False  # no traffic, no leak
        if key in self.known and not (fresh and key not in self.replayed):
            return self.known[key]
        if self.replays >= self.budget:
            raise Exhausted(f"{self.budget} replays")
        self.replays += 1
        self.known[key] = bool(self._leaks(key))
        self.replayed.add(key)
        return self.known[key]


def find_culprits(
    endpoints: Sequence[str],
    leaks: Callable[[frozenset[str]], bool],
    *,
    max_replays: int = MAX_REPLAYS,
) -> EndpointSearch:
    """Find the endpoints a leak needs, given that replaying all of ``endpoints`` leaks.

    ``leaks(kept)`` replays only the endpoints in ``kept`` (never empty) and says whether that
    leaks. A single culprit among E endpoints costs at most ``ceil(log2 E) + 2`` replays. The
    order of ``endpoints`` is the splitting order: keep related endpoints next to each other.
    ``Exhausted`` raised by ``leaks`` (a time limit) ends the search like the replay budget.
    """
    universe = tuple(dict.fromkeys(endpoints))
    oracle = _Oracle(universe, leaks, max_replays)
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
        kept, dropped = _needed(universe, found, oracle)
    except Exhausted:
        return EndpointSearch(
            "incomplete", tuple(found), None, oracle.narrowed, (), oracle.replays
        )  # fmt: skip
    if not kept:
        return EndpointSearch("not-reproduced", (), None, (), (), oracle.replays)
    without = frozenset(universe) - {e for group in kept for e in group}
    cured = (not oracle.known[without]) if without in oracle.known else None
    status = "interaction" if any(len(group) > 1 for group in kept) else "found"
    side = tuple(e for group in dropped for e in group)
    return EndpointSearch(status, tuple(kept), cured, (), side, oracle.replays)


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
    # The presumption failed: an interaction, or a leak too small for short replays.
    if not oracle(whole, fresh=True):
        return None
    return _minimal(whole, oracle)


def _halves(items: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    middle = (len(items) + 1) // 2
    return items[:middle], items[middle:]


def _minimal(items: tuple[str, ...], oracle: _Oracle) -> tuple[str, ...]:
    """A minimal subset of ``items`` (which leak together) that still leaks: divide and
    conquer in the manner of Junker's QuickXplain — for a ``k``-endpoint interaction about
    ``2k·log2(n/k) + k`` replays, where ddmin may take ``n²``."""

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


def first_cure(
    candidates: Sequence[str], cures: Callable[[str], bool], *, max_replays: int
) -> tuple[str | None, int]:
    """The first candidate whose removal ``cures`` the leak (one replay each, in order)."""
    replays = 0
    for candidate in candidates:
        if replays >= max_replays:
            break
        replays += 1
        if cures(candidate):
            return candidate, replays
    return None, replays


# --------------------------------------------------------------------------- the replays


@dataclass(frozen=True)
class ProbeOutcome:
    """One compressed replay of a subset of the traffic."""

    number: int
    purpose: str
    exchanges: int  # in the subset
    requests: int  # sent
    leaks: bool
    verdict: str
    growth_per_request: float
    growth: float
    seconds: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def probe_leaks(result: SoakResult, budget: float) -> bool:
    """A replay leaks when its verdict is ``leak``, or the leak rule holds with half the noise
    floor (``PROBE_SIZE_SHARE``): a trend, over the budget, steady, in every repetition."""
    if result.verdict == "leak":
        return True
    judgement = result.analysis.primary
    if judgement is None or result.run.aborted or result.verdict == "error":
        return False
    return (
        judgement.p_value < P_LIMIT
        and judgement.slope > budget
        and judgement.growth > PROBE_SIZE_SHARE * judgement.threshold
        and judgement.second_half_slope >= FLATTENING * judgement.slope
        and judgement.grew_every_repetition
    )


def probe_settings(settings: Settings, subset_size: int, measured_requests: int) -> Settings:
    """Settings of one compressed replay: a share of the wall time, enough requests for a
    verdict and for a warm-up that covers one pass over the subset, no baseline."""
    if getattr(settings, "replay", "profile") != "profile":
        # A subset of a recording has other gaps: pace replays by a constant rate instead,
        # the measured run's average.
        from pytest_soak.profiles import get_profile

        settings = dataclasses.replace(
            settings,
            replay="profile",
            profile=get_profile("constant"),
            peak_rps=max(1.0, measured_requests / max(settings.duration, 1e-9)),
        )
    duration = min(MAX_PROBE_SECONDS, max(MIN_PROBE_SECONDS, settings.duration * PROBE_SHARE))
    minimum = MIN_REQUESTS_PER_SEGMENT * (settings.measured_segments + 1)
    wanted = max(2 * minimum, math.ceil(PROBE_PASSES * subset_size))
    wanted = max(minimum, min(wanted, max(measured_requests, 2 * minimum)))
    peak = settings.peak_rps
    planned = settings.profile.timeline(peak, duration).request_count
    if planned < wanted:
        factor = wanted / max(1, planned)
        rate = min(factor, MAX_RATE_FACTOR)
        peak *= rate * 1.02
        duration *= max(1.0, factor / rate)
        while settings.profile.timeline(peak, duration).request_count < minimum:
            peak *= 1.1  # rounding of tiny timelines
    return dataclasses.replace(settings, duration=duration, peak_rps=peak, max_growth=None)


class _Replays:
    """Runs compressed soaks of subsets, within the isolation's replay and time budget."""

    def __init__(
        self,
        target: object,
        traffic: Traffic,
        settings: Settings,
        *,
        test_id: str,
        measured_requests: int,
        time_limit: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.traffic = traffic
        self.settings = settings
        self.test_id = test_id
        self.measured_requests = measured_requests
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + time_limit
        self.longest = 0.0
        self.outcomes: list[ProbeOutcome] = []
        self.budget = settings.max_growth_per_request or 0.0
        self.durations: list[float] = []

    @property
    def count(self) -> int:
        return len(self.outcomes)

    def subset(self, indices: Sequence[int] | frozenset[int]) -> Traffic:
        exchanges = tuple(self.traffic.exchanges[i] for i in sorted(indices))
        return Traffic(exchanges, path=self.traffic.path, format=self.traffic.format)

    def run(self, exchanges: Traffic, purpose: str) -> ProbeOutcome:
        if self.count >= MAX_REPLAYS:
            raise Exhausted(f"{MAX_REPLAYS} replays")
        settings = probe_settings(self.settings, len(exchanges), self.measured_requests)
        expected = max(self.longest, settings.duration * 1.5)
        now = self.clock()
        if now + expected > self.deadline:
            raise Exhausted(f"time limit of {self.deadline - self.started:.0f}s")
        self.durations.append(settings.duration)
        try:
            result = run_soak(
                self.target,
                exchanges,
                settings,
                test_id=f"{self.test_id} [isolation {self.count + 1}]",
                check=False,
            )
        except SoakError as exc:
            outcome = ProbeOutcome(
                self.count + 1, purpose, len(exchanges), 0, False, "error", 0.0, 0.0,
                self.clock() - now, str(exc),
            )  # fmt: skip
        else:
            outcome = ProbeOutcome(
                number=self.count + 1,
                purpose=purpose,
                exchanges=len(exchanges),
                requests=result.run.sent,
                leaks=probe_leaks(result, self.budget),
                verdict=result.verdict,
                growth_per_request=result.growth_per_request,
                growth=result.growth,
                seconds=self.clock() - now,
                reason=result.reason,
            )
        self.longest = max(self.longest, outcome.seconds)
        self.outcomes.append(outcome)
        return outcome


# --------------------------------------------------------------------------- the isolation


def isolate(
    target: object,
    traffic: Traffic,
    settings: Settings,
    result: SoakResult,
    *,
    test_id: str = "",
    repro_path: Path | None = None,
    mutate: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Isolate the leak ``result`` found in ``traffic``: a JSON-able report (the
    ``isolation`` field of ``SoakResult``). Writes the minimal traffic that still leaks to
    ``repro_path`` (secrets redacted) when one is given and a culprit was found."""
    time_limit = min(MAX_TIME_LIMIT, max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * settings.duration))
    replays = _Replays(
        target,
        traffic,
        settings,
        test_id=test_id or result.test_id,
        measured_requests=result.run.planned_requests,
        time_limit=time_limit,
        clock=clock,
    )
    by_endpoint: dict[str, list[int]] = {}
    for index, exchange in enumerate(traffic.exchanges):
        by_endpoint.setdefault(exchange.endpoint, []).append(index)
    order = sorted(by_endpoint, key=_split_key)
    everything = frozenset(range(len(traffic)))
    report: dict[str, Any] = {
        "status": "incomplete",
        "summary": "",
        "endpoints": len(order),
        "replay_bound": _bound(len(order)),
        "growth_per_request_with": result.growth_per_request,
        "culprits": [],
        "interactions": [],
        "side_effects": [],
        "suspects": [],
        "without_culprits": None,
        "repro": None,
        "notes": [],
    }

    def indices_of(endpoints: frozenset[str] | Sequence[str]) -> frozenset[int]:
        return frozenset(i for e in endpoints for i in by_endpoint[e])

    def endpoint_replay(kept: frozenset[str]) -> bool:
        dropped = [e for e in order if e not in kept]
        listed = [e for e in order if e in kept]
        if not dropped:
            purpose = "the whole traffic, compressed"
        elif len(listed) <= len(dropped):
            purpose = "only " + ", ".join(listed)
        else:
            purpose = "without " + ", ".join(dropped)
        return replays.run(replays.subset(indices_of(kept)), purpose).leaks

    outcome_of: dict[str, ProbeOutcome] = {}
    search = find_culprits(order, _recording(endpoint_replay, replays, outcome_of, order))
    report["status"] = search.status
    report["side_effects"] = list(search.side_effects)
    report["suspects"] = list(search.suspects)
    culprit_endpoints = [g[0] for g in search.culprits if len(g) == 1]
    report["interactions"] = [list(g) for g in search.culprits if len(g) > 1]
    all_culprits = {e for g in search.culprits for e in g}
    without_key = _key(order, [e for e in order if e not in all_culprits])
    if without_key in outcome_of:
        report["without_culprits"] = outcome_of[without_key].to_dict()
    pinned: list[frozenset[int]] = []  # each culprit's variation, else all its requests
    stopped = f"{MAX_REPLAYS} replays, {time_limit:.0f}s" if search.status == "incomplete" else ""
    try:
        if search.status == "incomplete":
            culprit_endpoints = []  # variations need every culprit removed but the one studied
        for endpoint in culprit_endpoints:
            base = everything - indices_of(sorted(all_culprits - {endpoint}))
            entry, pin = _culprit(endpoint, by_endpoint[endpoint], base, traffic, replays)
            entry["alone"] = _outcome_dict(outcome_of.get(_key(order, [endpoint])))
            entry["without"] = _outcome_dict(
                outcome_of.get(_key(order, [e for e in order if e != endpoint]))
            )
            report["culprits"].append(entry)
            pinned.append(pin)
        pinned.extend(indices_of(g) for g in search.culprits if len(g) > 1)
        union = frozenset().union(*pinned)
        if pinned and union != everything:
            only = _known_outcome(union, indices_of, outcome_of, order)
            if only is None:
                only = replays.run(replays.subset(union), "only " + _pinned_label(report))
            report["repro_outcome"] = only.to_dict()
        if mutate:
            for entry in report["culprits"]:
                endpoint = entry["endpoint"]
                base = everything - indices_of(sorted(all_culprits - {endpoint}))
                entry["mutations"] = _mutations(endpoint, by_endpoint[endpoint], base, replays)
    except Exhausted as exc:
        stopped = str(exc)
    except SoakError as exc:
        report["notes"].append(f"isolation stopped: {exc}")
    if stopped:
        report["notes"].append(
            f"isolation stopped before the end: its budget ({stopped}) is spent; what it "
            "found so far is above"
        )
    kinds = {v["label"].split(" (")[0] for c in report["culprits"] if (v := c["variation"])}
    if (
        len(report["culprits"]) > 1
        and len(kinds) == 1
        and all(c["variation"] for c in report["culprits"])
    ):
        report["notes"].append(
            f"every culprit leaks on the same kind of request ({kinds.pop()}): look for code "
            "they share (the allocation sites above say where the memory is held)"
        )
    if search.culprits and repro_path is not None:
        indices = _smallest_leaking(report, pinned, outcome_of, indices_of, order, everything)
        written = write_repro(
            repro_path, [traffic.exchanges[i] for i in sorted(indices)], header=_header(report)
        )
        report["repro"] = {"path": str(written), "requests": len(indices)}
    report["replays"] = replays.count
    report["seconds"] = round(clock() - replays.started, 1)
    report["replay_seconds"] = round(max(replays.durations), 1) if replays.durations else 0.0
    report["probes"] = [o.to_dict() for o in replays.outcomes]
    report["summary"] = _summary(report)
    return report


def _recording(
    replay: Callable[[frozenset[str]], bool],
    replays: _Replays,
    outcome_of: dict[str, ProbeOutcome],
    order: list[str],
) -> Callable[[frozenset[str]], bool]:
    """``replay`` that also remembers each subset's outcome (for growth with/without)."""

    def run(kept: frozenset[str]) -> bool:
        leaks = replay(kept)
        outcome_of[_key(order, [e for e in order if e in kept])] = replays.outcomes[-1]
        return leaks

    return run


def _key(order: list[str], endpoints: Sequence[str]) -> str:
    wanted = set(endpoints)
    return "\n".join(e for e in order if e in wanted)


def _split_key(endpoint: str) -> tuple[str, str]:
    """Split order: by path template, then method — a resource's create, read and delete stay
    in the same half as long as possible, so state one makes for another stays with it."""
    method, _, path = endpoint.partition(" ")
    return path, method


def _bound(endpoints: int) -> int:
    """The replays a single culprit may cost: 2·log2(E) + 2 (at least 2)."""
    return int(2 * math.log2(endpoints) + 2) if endpoints > 1 else 2


def _culprit(
    endpoint: str,
    indices: list[int],
    base: frozenset[int],
    traffic: Traffic,
    replays: _Replays,
) -> tuple[dict[str, Any], frozenset[int]]:
    """Remove the endpoint's variations one at a time from ``base`` (the traffic without the
    other culprits, which leaks); the first whose removal stops the leak is the culprit's."""
    from pytest_soak.traffic.variations import candidates

    entry: dict[str, Any] = {
        "endpoint": endpoint,
        "requests": len(indices),
        "recorded": len(traffic),
        "variation": None,
        "variations_tried": [],
    }
    found = candidates(traffic.exchanges, endpoint)[:MAX_VARIATIONS]
    labels = {c.label: c for c in found}
    removed: dict[str, ProbeOutcome] = {}

    def cures(label: str) -> bool:
        outcome = replays.run(
            replays.subset(base - labels[label].indices), f"without {endpoint} [{label}]"
        )
        removed[label] = outcome
        return not outcome.leaks

    try:
        culprit, _ = first_cure(list(labels), cures, max_replays=MAX_VARIATIONS)
    finally:
        entry["variations_tried"] = [
            {"variation": label, "without": o.to_dict()} for label, o in removed.items()
        ]
    if culprit is None:
        return entry, frozenset(indices)
    chosen = labels[culprit]
    entry["variation"] = {
        "label": culprit,
        "families": [v.family for v in chosen.variations],
        "requests": len(chosen.indices),
        "without": removed[culprit].to_dict(),
    }
    return entry, chosen.indices


def _outcome_dict(outcome: ProbeOutcome | None) -> dict[str, Any] | None:
    return outcome.to_dict() if outcome is not None else None


def _known_outcome(
    indices: frozenset[int],
    indices_of: Callable[[Sequence[str]], frozenset[int]],
    outcome_of: Mapping[str, ProbeOutcome],
    order: list[str],
) -> ProbeOutcome | None:
    """The outcome of a replay of exactly ``indices`` when the endpoint search made one."""
    for key, outcome in outcome_of.items():
        if indices_of(key.split("\n")) == indices:
            return outcome
    return None


def _smallest_leaking(
    report: Mapping[str, Any],
    pinned: list[frozenset[int]],
    outcome_of: Mapping[str, ProbeOutcome],
    indices_of: Callable[[Sequence[str]], frozenset[int]],
    order: list[str],
    everything: frozenset[int],
) -> frozenset[int]:
    """The reproduction: the culprits' pinned requests when replaying only them leaked, else
    the smallest set of endpoints that leaked on its own, else the whole traffic."""
    only = report.get("repro_outcome")
    if pinned and only is not None and only["leaks"]:
        return frozenset().union(*pinned)
    leaked = [indices_of(key.split("\n")) for key, o in outcome_of.items() if o.leaks]
    return min(leaked, key=len) if leaked else everything


def _pinned_label(report: Mapping[str, Any]) -> str:
    parts = []
    for entry in report["culprits"]:
        variation = entry["variation"]
        parts.append(entry["endpoint"] + (f" [{variation['label']}]" if variation else ""))
    parts.extend(" + ".join(group) for group in report["interactions"])
    return ", ".join(parts)


def _mutations(
    endpoint: str, indices: list[int], base: frozenset[int], replays: _Replays
) -> list[dict[str, Any]]:
    """Replay the traffic with the endpoint's requests mutated, one kind at a time."""
    from pytest_soak.traffic.mutations import applicable, mutate

    mine = set(indices)
    exchanges = replays.traffic.exchanges
    recorded = [exchanges[i] for i in sorted(mine)]
    out: list[dict[str, Any]] = []
    for kind in applicable(recorded)[:MAX_MUTATIONS]:
        mutated = iter(mutate(recorded, kind, seed=replays.settings.seed))
        subset = tuple(next(mutated) if i in mine else exchanges[i] for i in sorted(base))
        outcome = replays.run(
            Traffic(subset, path=replays.traffic.path, format=replays.traffic.format),
            f"{endpoint} mutated: {kind}",
        )
        out.append({"kind": kind, "outcome": outcome.to_dict()})
    return out


def _summary(report: Mapping[str, Any]) -> str:
    status = report["status"]
    if status == "not-reproduced":
        return (
            "the leak was not reproduced by compressed replays (the whole traffic did not leak "
            "in one either): the replays are too short to see it; run isolation with a longer "
            "duration"
        )
    parts = []
    for entry in report["culprits"]:
        text = f"culprit endpoint {entry['endpoint']}"
        if entry["variation"]:
            text += f", variation {entry['variation']['label']}"
        parts.append(text)
    for group in report["interactions"]:
        parts.append(
            "interaction: the leak needs " + " together with ".join(group) + "; none leaks alone"
        )
    if status == "incomplete":
        suspects = report["suspects"]
        parts.append("incomplete: the leak is within " + (", ".join(suspects) if suspects else "?"))
    return "; ".join(parts) or status


def _header(report: Mapping[str, Any]) -> list[str]:
    lines = ["pytest-soak leak reproduction: the smallest recorded traffic that still leaked"]
    lines.append(_summary(report))
    lines.append("secrets (Authorization, Cookie, tokens, keys, passwords) are redacted")
    return lines


# --------------------------------------------------------------------------- the repro file


def repro_path(base_dir: Path, test_id: str, run: int = 1) -> Path:
    """``<module>.<test>.leak-repro.jsonl`` beside the test (``-2`` for a test's second run)."""
    module, _, name = test_id.partition("::")
    stem = Path(module).stem if module else "soak"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("::", ".")).strip("_") or "test"
    suffix = f"-{run}" if run > 1 else ""
    return base_dir / f"{stem}.{name}{suffix}.leak-repro.jsonl"


def write_repro(path: Path, exchanges: Sequence[Exchange], *, header: Sequence[str] = ()) -> Path:
    """Native JSON Lines (``pytest_soak.load_traffic`` reads it), secrets redacted, written
    atomically (temp file + rename)."""
    from pytest_soak.traffic.jsonl import dumps

    lines = "".join(f"# {line}\n" for line in header)
    text = lines + dumps(redact(e) for e in exchanges)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_secret_name(name: str) -> bool:
    return name.lower() in SECRET_HEADERS or _SECRET_NAME.search(name) is not None


def redact(exchange: Exchange) -> Exchange:
    """The exchange without secrets: sensitive headers, query values and JSON body fields
    become ``REDACTED``; the recorded response keeps its status only."""
    headers = tuple((k, REDACTED if is_secret_name(k) else v) for k, v in exchange.headers)
    target = exchange.target
    if exchange.query:
        pairs = parse_qsl(exchange.query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            redacted = [(k, REDACTED if is_secret_name(k) else v) for k, v in pairs]
            target = f"{exchange.path}?{urlencode(redacted)}"
    body = _redact_body(exchange.body, exchange.header("content-type") or "")
    response = RecordedResponse(exchange.response.status) if exchange.response is not None else None
    return dataclasses.replace(
        exchange, headers=headers, target=target, body=body, response=response
    )


def _redact_body(body: bytes, content_type: str) -> bytes:
    import json

    if not body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    if "form-urlencoded" in content_type.lower():
        pairs = parse_qsl(text, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            return urlencode([(k, REDACTED if is_secret_name(k) else v) for k, v in pairs]).encode()
        return body
    try:
        value = json.loads(text)
    except ValueError:
        return body
    cleaned, changed = _redact_json(value)
    return json.dumps(cleaned).encode() if changed else body


def _redact_json(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_name(str(key)) and not isinstance(item, (dict, list)):
                out[key], changed = REDACTED, True
            else:
                out[key], sub = _redact_json(item)
                changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [_redact_json(item) for item in value]
        return [i for i, _ in items], any(c for _, c in items)
    return value, False
