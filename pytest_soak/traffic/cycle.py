"""Choosing the *cycle*: the requests that every load cycle of a soak run replays.

A leak is growth across repeated identical work (SPEC §2 "Verdict"), so every cycle of a run
replays the same requests. A production recording is usually far longer than what a quick run
can send; replaying it once would make every request new, and a cache keyed by traffic would
fill for the whole run and look like a leak. So the run replays a *cycle* drawn from it:

* a recording shorter than the cycle is repeated to fill it (``passes`` > 1);
* a longer one gives a contiguous *window* (sessions stay whole: a cart is made before it is
  deleted), placed where it covers the most kinds of request and its endpoint mix is closest
  to the recording's; kinds of request the window misses (a rare unknown-id ``DELETE``) are
  added once each from elsewhere in the recording, in recorded order, so every endpoint
  template and request variation is present in every cycle.

``CycleChoice`` reports what was chosen: size, share of the recording, endpoints and kinds
covered, and how far its endpoint mix is from the recording's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_soak.traffic.model import Exchange

#: Window positions tried over a long recording.
WINDOW_CANDIDATES = 64
#: At most this share of a cycle is exemplars added from outside its window.
MAX_EXEMPLAR_SHARE = 0.5


@dataclass(frozen=True)
class CycleChoice:
    """One cycle's requests (in the order they are replayed) and how they were chosen."""

    exchanges: tuple[Exchange, ...]
    indices: tuple[int, ...]  # positions in the recording, in replay order
    recording: int  # requests in the recording
    window: tuple[int, int]  # [start, end) of the contiguous part, in recording positions
    exemplars: int  # requests added from outside the window for kinds it missed
    kinds_total: int
    kinds_covered: int
    endpoint_counts: tuple[tuple[str, int], ...]  # the recording's, most frequent first
    endpoints_covered: int
    mix_distance: float  # total variation distance of the endpoint mix to the recording's
    missing: tuple[str, ...] = ()  # kinds of request no cycle could hold (sorted, a few)

    @property
    def endpoints_total(self) -> int:
        return len(self.endpoint_counts)

    @property
    def size(self) -> int:
        return len(self.exchanges)

    @property
    def passes(self) -> float:
        """Cycle length over recording length: > 1 when the recording is repeated."""
        return self.size / self.recording if self.recording else 0.0

    @property
    def share(self) -> float:
        """Share of the recording's distinct requests the cycle holds (at most 1)."""
        distinct = len(set(self.indices))
        return distinct / self.recording if self.recording else 0.0

    def describe(self) -> str:
        if self.passes >= 1:
            how = (
                f"the whole recording ({self.recording:,} requests)"
                if self.passes == 1
                else f"the whole recording ({self.recording:,} requests) x{self.passes:.3g}"
            )
        else:
            how = (
                f"{self.size:,} of {self.recording:,} recorded requests ({self.share:.1%}: "
                f"a window of {self.window[1] - self.window[0]:,}"
                + (f" + {self.exemplars} for rare kinds" if self.exemplars else "")
                + ")"
            )
        return (
            f"cycle: {how}; {self.endpoints_covered}/{self.endpoints_total} endpoints, "
            f"{self.kinds_covered}/{self.kinds_total} kinds of request, endpoint mix within "
            f"{self.mix_distance:.0%} of the recording's"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "recording": self.recording,
            "share": self.share,
            "passes": self.passes,
            "window": list(self.window),
            "exemplars": self.exemplars,
            "kinds_total": self.kinds_total,
            "kinds_covered": self.kinds_covered,
            "endpoints_total": self.endpoints_total,
            "endpoints_covered": self.endpoints_covered,
            "mix_distance": self.mix_distance,
            "missing": list(self.missing),
        }


def choose_cycle(
    exchanges: Sequence[Exchange],
    size: int,
    kinds: Sequence[frozenset[str]] | None = None,
    *,
    contiguous: bool = False,
) -> CycleChoice:
    """The ``size`` requests one cycle replays (see the module docstring).

    ``kinds`` gives each exchange's kind labels (``variations.request_kinds``); by default
    they are computed from the recording. ``contiguous`` adds no exemplars from outside the
    window (the ``recorded`` replay mode keeps the recording's own gaps)."""
    total = len(exchanges)
    if total == 0 or size <= 0:
        raise ValueError(f"size={size} and a recording of {total} requests: nothing to choose")
    if kinds is None:
        from pytest_soak.traffic.request_facts import RecordingFacts
        from pytest_soak.traffic.variations import request_kinds

        facts = RecordingFacts(exchanges)
        kinds = request_kinds(exchanges, facts)
        endpoints = [request.endpoint for request in facts.requests]  # (Exchange.endpoint)
    else:
        endpoints = [e.endpoint for e in exchanges]
    all_kinds = {label for labels in kinds for label in labels}
    whole = Counter(endpoints)
    counts = tuple(whole.most_common())  # Traffic.endpoints(), without reading it again
    if size >= total:
        indices = tuple(i % total for i in range(size))
        return CycleChoice(
            exchanges=tuple(exchanges[i] for i in indices),
            indices=indices,
            recording=total,
            window=(0, total),
            exemplars=0,
            kinds_total=len(all_kinds),
            kinds_covered=len(all_kinds),
            endpoint_counts=counts,
            endpoints_covered=len(whole),
            mix_distance=_mix_distance(Counter(endpoints[i] for i in indices), whole),
        )
    chosen: list[int] = []
    window = (0, size)
    extra: list[int] = []
    exemplars_needed = 0
    for _ in range(3):  # shrinking the window for exemplars can uncover kinds: settle
        length = max(1, size - exemplars_needed)
        window = _best_window(kinds, endpoints, length)
        extra = [] if contiguous else _exemplars(kinds, window, limit=size - length)
        if len(extra) <= exemplars_needed:
            break
        exemplars_needed = min(len(extra), int(size * MAX_EXEMPLAR_SHARE))
    start, end = window
    room = size - (end - start)
    extra = extra[:room]
    if len(extra) < room:  # fewer exemplars than planned: widen the window back
        end = min(total, end + room - len(extra))
        start = max(0, min(start, total - (size - len(extra))))
        end = start + size - len(extra)
    chosen = sorted({*range(start, end), *extra})
    covered = {label for i in chosen for label in kinds[i]}
    picked_endpoints = Counter(endpoints[i] for i in chosen)
    return CycleChoice(
        exchanges=tuple(exchanges[i] for i in chosen),
        indices=tuple(chosen),
        recording=total,
        window=(start, end),
        exemplars=len([i for i in chosen if not start <= i < end]),
        kinds_total=len(all_kinds),
        kinds_covered=len(covered),
        endpoint_counts=counts,
        endpoints_covered=len(picked_endpoints),
        mix_distance=_mix_distance(picked_endpoints, whole),
        missing=tuple(sorted(all_kinds - covered)[:5]),
    )


def _best_window(
    kinds: Sequence[frozenset[str]], endpoints: Sequence[str], length: int
) -> tuple[int, int]:
    """The window of ``length`` requests covering the most kinds, then with the endpoint mix
    closest to the recording's; positions tried evenly, counts slid incrementally (O(n))."""
    total = len(kinds)
    last = total - length
    if last <= 0:
        return 0, total
    steps = min(WINDOW_CANDIDATES, last + 1)
    starts = sorted({round(k * last / (steps - 1)) for k in range(steps)}) if steps > 1 else [0]
    overall = Counter(endpoints)
    label_counts: Counter[str] = Counter()
    mix: Counter[str] = Counter()

    def add(i: int, sign: int) -> None:
        for label in kinds[i]:
            label_counts[label] += sign
            if not label_counts[label]:
                del label_counts[label]
        mix[endpoints[i]] += sign

    for i in range(length):
        add(i, 1)
    position = 0
    best: tuple[int, float, int] | None = None
    for start in starts:
        while position < start:  # slide: drop position, add position + length
            add(position, -1)
            add(position + length, 1)
            position += 1
        score = (len(label_counts), -_mix_distance(mix, overall), -start)
        if best is None or score > best:
            best = score
    assert best is not None
    return -best[2], -best[2] + length


def _exemplars(kinds: Sequence[frozenset[str]], window: tuple[int, int], limit: int) -> list[int]:
    """Requests outside ``window`` that add the kinds it misses: for each missing kind, its
    first occurrence after the window (else the last before it), one pass over the recording;
    a request that brings several missing kinds covers them all."""
    start, end = window
    covered = {label for i in range(start, end) for label in kinds[i]}
    first: dict[str, int] = {}
    for i in (*range(end, len(kinds)), *range(start - 1, -1, -1)):  # sessions run forwards
        for label in kinds[i] - covered:
            first.setdefault(label, i)
    chosen: list[int] = []
    missing = set(first)
    for label in sorted(first, key=lambda name: (first[name], name)):
        if label not in missing or len(chosen) >= limit:
            continue
        index = first[label]
        chosen.append(index)
        missing -= kinds[index]
    return chosen


def _mix_distance(part: Counter[str], whole: Counter[str]) -> float:
    """Total variation distance between two endpoint mixes (0 = the same proportions)."""
    n_part, n_whole = sum(part.values()), sum(whole.values())
    if not n_part or not n_whole:
        return 0.0
    keys = set(part) | set(whole)
    return 0.5 * sum(abs(part[k] / n_part - whole[k] / n_whole) for k in keys)
