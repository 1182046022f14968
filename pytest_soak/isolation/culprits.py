"""From a leaking run to confirmed culprits: the isolation, end to end (docs/isolation.md).

``isolate`` takes the run that found the leak and its traffic, and

1. **endpoints** — searches the endpoint templates the measured cycle replayed
   (``search.find_culprits``), one trial per question (``trials.Trials``); an endpoint is named
   only when confirmed both ways: its traffic alone leaks and the traffic without the culprits
   does not;
2. **variations** — within each confirmed culprit, looks for the kind of request that leaks
   (``traffic.variations.candidates``: ids, statuses, clients, each query parameter ...): a
   kind is named only when confirmed both ways too: its requests alone leak, and the traffic
   without them (and without the other culprits) does not;
3. **mutations** (optional) — the culprit's requests mutated by hypothesis: does unexpected
   input leak too?
4. **the reproduction file** — only the confirmed culprit traffic (``repro``).

It returns a JSON-able report (``SoakResult.isolation``; ``report.failure.render_isolation``
renders it), built from the typed records below.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_soak.isolation.repro import write_repro
from pytest_soak.isolation.search import (
    EndpointSearch,
    Exhausted,
    Kind,
    find_culprits,
    find_kind,
)
from pytest_soak.isolation.trials import Trial, Trials, TrialSizing, measured_cycle
from pytest_soak.traffic.model import Traffic

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult
    from pytest_soak.settings import Settings

#: The whole isolation: at most this many trials, and this much time: ``TIME_LIMIT_FACTOR`` ×
#: the trials' scale × the measured run's wall time, within bounds. A trial is not started when
#: it would end past the limit.
MAX_TRIALS = 30
TIME_LIMIT_FACTOR = 10.0
MIN_TIME_LIMIT = 300.0
MAX_TIME_LIMIT = 4 * 3600.0
#: Mutation kinds tried per culprit endpoint.
MAX_MUTATIONS = 5


@dataclass(frozen=True)
class VariationFinding:
    """The kind of request a culprit leaks on, confirmed both ways."""

    label: str
    families: tuple[str, ...]
    requests: int  # distinct recorded requests of this kind in the measured cycle
    cycle_requests: int  # of this kind per measured cycle
    alone: Trial
    without: Trial

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "families": list(self.families),
            "requests": self.requests,
            "cycle_requests": self.cycle_requests,
            "alone": self.alone.to_dict(),
            "without": self.without.to_dict(),
        }


@dataclass
class CulpritFinding:
    """A confirmed culprit endpoint: its trials, its kind of request, its mutations."""

    endpoint: str
    requests: int  # recorded requests of the endpoint
    recorded: int  # requests in the recording
    cycle_requests: int  # of the endpoint per measured cycle
    alone: Trial | None  # None: the endpoint is the whole traffic (the measured run)
    without: Trial | None  # the traffic without every culprit; None: nothing was left
    pinned: frozenset[int]  # positions in the measured cycle of its confirmed traffic
    variation: VariationFinding | None = None
    variations_tried: list[dict[str, Any]] = field(default_factory=list)
    mutations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "endpoint": self.endpoint,
            "requests": self.requests,
            "recorded": self.recorded,
            "cycle_requests": self.cycle_requests,
            "alone": self.alone.to_dict() if self.alone else None,
            "without": self.without.to_dict() if self.without else None,
            "variation": self.variation.to_dict() if self.variation else None,
            "variations_tried": self.variations_tried,
        }
        if self.mutations:
            out["mutations"] = self.mutations
        return out


def time_limit(settings: Settings, result: SoakResult, scale: float) -> float:
    """The isolation's time bound: ``TIME_LIMIT_FACTOR`` × scale × the measured run's wall time
    (its planned duration when longer), within ``MIN_TIME_LIMIT`` … ``MAX_TIME_LIMIT``."""
    measured = max(settings.duration, result.run.elapsed)
    return min(MAX_TIME_LIMIT, max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * scale * measured))


def search_bound(endpoints: int) -> int:
    """Trials the endpoint search may take for one culprit: ``ceil(log2 E) + 2``."""
    return math.ceil(math.log2(endpoints)) + 2 if endpoints > 1 else 0


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
    """Isolate the leak ``result`` found in ``traffic``: a JSON-able report (the ``isolation``
    field of ``SoakResult``). Writes the confirmed culprit traffic to ``repro_path`` (secrets
    redacted) when one is given and a culprit was confirmed."""
    return _Isolation(
        target, traffic, settings, result, test_id=test_id or result.test_id, clock=clock
    ).run(repro_path=repro_path, mutate=mutate)


class _Isolation:
    """The state of one isolation: the recording by endpoint, the trials, what was found."""

    def __init__(
        self,
        target: object,
        traffic: Traffic,
        settings: Settings,
        result: SoakResult,
        *,
        test_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.traffic = traffic
        self.result = result
        self.settings = settings
        cycle = measured_cycle(traffic, settings)
        self.cycle = cycle.exchanges  # what every cycle of the measured run replayed
        self.recorded_at = cycle.indices  # each one's position in the recording
        self.sizing = TrialSizing.from_result(cycle.size, settings, result)
        self.limit = time_limit(settings, result, self.sizing.scale)
        overhead = max(2.0, result.run.elapsed - result.run.wall_seconds)
        self.trials = Trials(
            target, self.cycle, traffic, self.sizing, test_id=test_id, max_trials=MAX_TRIALS,
            time_limit=self.limit, overhead=overhead, clock=clock,
        )  # fmt: skip
        self.by_endpoint: dict[str, list[int]] = {}  # positions in the measured cycle
        for position, exchange in enumerate(self.cycle):
            self.by_endpoint.setdefault(exchange.endpoint, []).append(position)
        self.order = sorted(self.by_endpoint, key=_split_key)
        self.recorded = Counter(e.endpoint for e in traffic.exchanges)
        self.of: dict[frozenset[str], Trial] = {}  # the latest trial of each endpoint set
        self.notes: list[str] = []
        if result.analysis.cycle_requests and cycle.size != result.analysis.cycle_requests:
            self.notes.append(
                f"the measured cycle was recomputed with {cycle.size} requests, the run replayed "
                f"{result.analysis.cycle_requests}: the settings changed?"
            )

    def indices(self, endpoints: Sequence[str] | frozenset[str]) -> frozenset[int]:
        """Positions in the measured cycle of the requests of ``endpoints``."""
        return frozenset(i for e in endpoints for i in self.by_endpoint[e])

    def everything(self) -> frozenset[int]:
        return frozenset(range(len(self.cycle)))

    def distinct(self, positions: frozenset[int]) -> list[int]:
        """The recording positions of the cycle's requests at ``positions``, each once."""
        return sorted({self.recorded_at[p] for p in positions})

    def run(self, *, repro_path: Path | None, mutate: bool) -> dict[str, Any]:
        search = find_culprits(self.order, self._leaks, max_trials=MAX_TRIALS)
        culprits: list[CulpritFinding] = []
        stopped = ""
        if search.status == "incomplete":
            stopped = self._stopped(search.why)
        try:
            if search.status in ("found", "interaction"):
                singles = [g[0] for g in search.culprits if len(g) == 1]
                culprits = [self._culprit(endpoint, search) for endpoint in singles]
            if mutate:
                for finding in culprits:
                    finding.mutations = self._mutations(finding.endpoint, search)
        except Exhausted as exc:
            stopped = self._stopped(str(exc))
        if stopped:
            self.notes.append(
                f"isolation stopped before the end: {stopped}; what it confirmed so far is above"
            )
        repro = self._write(repro_path, search, culprits) if culprits else None
        if search.status == "interaction":
            self.notes.append(
                "an interaction is not a confirmed culprit (none of its endpoints leaks alone): "
                "its traffic is not in the reproduction file"
            )
        return self._report(search, culprits, repro)

    # -- the endpoint search ---------------------------------------------------------------

    def _leaks(self, kept: frozenset[str]) -> bool:
        dropped = [e for e in self.order if e not in kept]
        listed = [e for e in self.order if e in kept]
        if not dropped:
            purpose = "the whole traffic"
        elif len(listed) <= len(dropped):
            purpose = "only " + ", ".join(listed)
        else:
            purpose = "without " + ", ".join(dropped)
        trial = self.trials.run(self.indices(kept), purpose)
        self.of[kept] = trial
        return trial.leaks

    def _stopped(self, why: str) -> str:
        budget = f"its budget ({MAX_TRIALS} trials, {self.limit:.0f}s)"
        return why if why.startswith("trial ") else f"{budget} is spent ({why})"

    # -- a confirmed culprit ---------------------------------------------------------------

    def _culprit(self, endpoint: str, search: EndpointSearch) -> CulpritFinding:
        named = {e for g in search.culprits for e in g}
        without = frozenset(e for e in self.order if e not in named)
        mine = self.by_endpoint[endpoint]
        finding = CulpritFinding(
            endpoint=endpoint,
            requests=self.recorded[endpoint],
            recorded=len(self.traffic),
            cycle_requests=len(mine),
            alone=self.of.get(frozenset([endpoint])),
            without=self.of.get(without),
            pinned=frozenset(mine),
        )
        base = self.everything() - self.indices(sorted(named - {endpoint}))
        try:
            self._variation(finding, base)
        except Exhausted as exc:
            self.notes.append(f"{endpoint}: kinds of request not searched to the end ({exc})")
        return finding

    def _variation(self, finding: CulpritFinding, base: frozenset[int]) -> None:
        """The kind of request the culprit leaks on (``search.find_kind``): its requests alone
        leak, and ``base`` (the traffic without the other culprits) without them does not."""
        from pytest_soak.traffic.variations import candidates

        endpoint = finding.endpoint
        found = {c.label: c for c in candidates(self.cycle, endpoint)}
        alone: dict[str, Trial] = {}
        without: dict[str, Trial] = {}

        def leaks_alone(kind: Kind) -> bool:
            alone[kind.label] = trial = self.trials.run(
                kind.requests, f"only {endpoint} [{kind.label}]"
            )
            return trial.leaks

        def leaks_without(kind: Kind) -> bool:
            without[kind.label] = trial = self.trials.run(
                base - kind.requests, f"without {endpoint} [{kind.label}]"
            )
            return trial.leaks

        kinds = [Kind(label, c.indices, c.suspect) for label, c in found.items()]
        try:
            label = find_kind(kinds, leaks_alone, leaks_without).label
        finally:
            for name, trial in alone.items():
                tried: dict[str, Any] = {"variation": name, "alone": trial.to_dict()}
                if name in without:
                    tried["without"] = without[name].to_dict()
                finding.variations_tried.append(tried)
        if label is None:
            return
        chosen = found[label]
        finding.variation = VariationFinding(
            label,
            tuple(v.family for v in chosen.variations),
            len(self.distinct(chosen.indices)),
            len(chosen.indices),
            alone[label],
            without[label],
        )
        finding.pinned = chosen.indices

    # -- mutations ---------------------------------------------------------------------------

    def _mutations(self, endpoint: str, search: EndpointSearch) -> list[dict[str, Any]]:
        """The traffic without the other culprits, with this endpoint's requests mutated, one
        kind of mutation per trial."""
        from pytest_soak.traffic.mutations import applicable, mutate

        others = {e for g in search.culprits for e in g} - {endpoint}
        base = self.everything() - self.indices(sorted(others))
        mine = self.by_endpoint[endpoint]
        recorded = [self.cycle[i] for i in mine]
        out: list[dict[str, Any]] = []
        for kind in applicable(recorded)[:MAX_MUTATIONS]:
            mutated = mutate(recorded, kind, seed=self.settings.seed)
            trial = self.trials.run(
                base, f"{endpoint} mutated: {kind}", replaced=dict(zip(mine, mutated, strict=True))
            )
            out.append({"kind": kind, "outcome": trial.to_dict()})
        return out

    # -- the reproduction file and the report ---------------------------------------------------

    def _write(
        self, path: Path | None, search: EndpointSearch, culprits: list[CulpritFinding]
    ) -> dict[str, Any] | None:
        if path is None:
            return None
        pinned = self.distinct(frozenset().union(*(c.pinned for c in culprits)))
        written = write_repro(
            path, [self.traffic.exchanges[i] for i in pinned], header=_header(search, culprits)
        )
        return {"path": str(written), "requests": len(pinned)}

    def _report(
        self,
        search: EndpointSearch,
        culprits: list[CulpritFinding],
        repro: dict[str, Any] | None,
    ) -> dict[str, Any]:
        named = {e for g in search.culprits for e in g}
        without = self.of.get(frozenset(e for e in self.order if e not in named)) if named else None
        repro_outcome = None
        if len(culprits) == 1:
            only = culprits[0]
            trial = only.variation.alone if only.variation else only.alone
            repro_outcome = trial.to_dict() if trial else None
        report: dict[str, Any] = {
            "status": search.status,
            "summary": "",
            "endpoints": len(self.order),
            "replay_bound": search_bound(len(self.order)),
            "growth_per_request_with": self.result.growth_per_request,
            "culprits": [c.to_dict() for c in culprits],
            "interactions": [list(g) for g in search.culprits if len(g) > 1],
            "side_effects": list(search.side_effects),
            "suspects": list(search.suspects),
            "unconfirmed": search.why or None,
            "without_culprits": without.to_dict() if without else None,
            "repro": repro,
            "repro_outcome": repro_outcome,
            "notes": self.notes,
            "replays": self.trials.count,
            **self.trials.timing(),
            "budget": {"trials": MAX_TRIALS, "seconds": round(self.limit)},
            "sizing": self.sizing.to_dict(),
            "probes": [trial.to_dict() for trial in self.trials.done],
        }
        report["summary"] = _summary(report)
        return report


def _split_key(endpoint: str) -> tuple[str, str]:
    """Split order: by path template, then method — a resource's create, read and delete stay
    in the same half as long as possible, so state one makes for another stays with it."""
    method, _, path = endpoint.partition(" ")
    return path, method


def _summary(report: dict[str, Any]) -> str:
    status = report["status"]
    if status == "not-reproduced":
        return (
            "the leak was not reproduced: no trial leaked, not even the whole traffic replayed "
            "again (the leak may need more cycles, or depend on the service's state)"
        )
    if status == "not-confirmed":
        return (
            "no culprit confirmed: " + str(report["unconfirmed"]) + "; the leak is within "
            + ", ".join(report["suspects"])
            + " (a culprit is named only when its traffic alone leaks and the traffic without "
            "it does not)"
        )  # fmt: skip
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
        parts.append(
            "incomplete, no culprit confirmed: the leak is within "
            + (", ".join(suspects) if suspects else "?")
        )
    return "; ".join(parts) or status


def _header(search: EndpointSearch, culprits: list[CulpritFinding]) -> list[str]:
    lines = ["pytest-soak leak reproduction: the confirmed culprit traffic"]
    for finding in culprits:
        kind = f" [{finding.variation.label}]" if finding.variation else ""
        lines.append(
            f"{finding.endpoint}{kind}: leaks replayed alone; the traffic without it did not leak"
        )
    lines.append("secrets (Authorization, Cookie, tokens, keys, passwords) are redacted")
    return lines
