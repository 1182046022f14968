"""The cycle plan: a run is a series of identical *cycles* (docs/leak-rule.md).

Each cycle replays the same requests (``traffic.cycle`` chooses them from the recording) shaped
by the same profile, compressed so that the warm-up and the measured cycles fill the run's wall
time (``plan_cycles``). A floor is read at the end of every phase of every cycle
(``CyclePlan.checkpoints``); the verdict uses the floors at cycle ends (``CycleLedger`` says
which floor rows start and end which cycle), the phase floors say where in the day the growth
happens.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_soak.driver.records import Checkpoint
from pytest_soak.errors import ProfileError
from pytest_soak.profiles import Phase, RecordedPass, RecordedTimeline
from pytest_soak.settings import Settings
from pytest_soak.traffic.cycle import CycleChoice, choose_cycle
from pytest_soak.traffic.model import Traffic

#: Fewest requests per cycle for a verdict to mean anything.
MIN_REQUESTS_PER_CYCLE = 10


class CycleTimeline(Protocol):
    """One cycle's timing: a compressed profile (``Timeline``) or a recorded pass."""

    @property
    def wall_seconds(self) -> float: ...
    @property
    def request_count(self) -> int: ...

    def arrivals(self) -> Iterator[float]: ...
    def requests_until(self, wall_t: float) -> float: ...
    def phase_spans(self) -> Sequence[tuple[Phase, float, float]]: ...


@dataclass(frozen=True)
class CyclePlan:
    """What every cycle of a run replays, and when."""

    choice: CycleChoice
    timeline: CycleTimeline
    boundaries: tuple[int, ...]  # requests into a cycle at each phase's end (the last: size)
    profile: str
    peak_rps: float

    @property
    def size(self) -> int:
        return self.choice.size

    def checkpoints(self, cycles: int, *, first: bool) -> list[int]:
        """Request counts at which floors are read over ``cycles`` cycles: every phase end
        (and, with ``first``, before any load)."""
        points = [0] if first else []
        points.extend(k * self.size + b for k in range(cycles) for b in self.boundaries)
        return points

    def arrivals(self, cycles: int) -> Iterator[float]:
        length = self.timeline.wall_seconds
        for k in range(cycles):
            offset = k * length
            for t in self.timeline.arrivals():
                yield offset + t


class CycleLedger:
    """Which floor rows start and end which cycle, as the replays go: a cycle counts only when
    its end floor was read after exactly its planned requests (a run cut short by its
    deadline, or a service that died, leaves its last cycles incomplete and unjudged)."""

    def __init__(self, plan: CyclePlan) -> None:
        self._plan = plan
        self._rows = 0
        self._first = 0
        self._expected: list[int] = []
        self._starts: dict[int, int] = {}  # cycle -> the last floor row read before it began
        self._ends: dict[int, int] = {}  # cycle -> the floor row read at its end

    def begin(self, first: int, count: int) -> None:
        """A replay of cycles ``first`` .. ``first + count - 1`` starts (its checkpoints are
        numbered from 0, the floor before its first request)."""
        self._first = first
        self._expected = self._plan.checkpoints(count, first=True)

    def note(self, point: Checkpoint) -> None:
        row, self._rows = self._rows, self._rows + 1
        j = point.number
        if j >= len(self._expected) or point.requests != self._expected[j]:
            return  # not where the plan put it: the replay stopped early
        if j == 0:
            self._starts[self._first] = row
            return
        per_cycle = len(self._plan.boundaries)
        cycle, position = divmod(j - 1, per_cycle)
        if position == per_cycle - 1:
            self._ends[self._first + cycle] = row
            self._starts[self._first + cycle + 1] = row

    def spans(self) -> list[tuple[int, int]]:
        """(start row, end row) of each completed cycle, in order, up to the first gap."""
        out = []
        for cycle in range(len(self._ends)):
            if cycle not in self._ends or cycle not in self._starts:
                break
            out.append((self._starts[cycle], self._ends[cycle]))
        return out


def plan_cycles(traffic: Traffic, settings: Settings) -> CyclePlan:
    """Size and choose the cycle so that the warm-up and the measured cycles fill the run."""
    cycles = settings.warmup_cycles + settings.measured_cycles
    timeline: CycleTimeline
    if settings.replay == "recorded":
        whole = RecordedTimeline(
            [exchange.offset for exchange in traffic],
            speed=settings.speed,
            max_gap=settings.max_gap,
            wall_seconds=settings.duration,
        )
        size = whole.request_count // cycles
        shape, raise_hint = f"the recording at speed={settings.speed:g}", "speed or duration"
        _check_size(size, cycles, shape, settings.duration, raise_hint)
        choice = choose_cycle(traffic, size, contiguous=True)
        timeline = RecordedPass(
            _monotonic_offsets(choice, traffic), speed=settings.speed, max_gap=settings.max_gap
        )
        profile, peak = f"recorded x{settings.speed:g}", size / timeline.wall_seconds
    else:
        timeline = settings.profile.timeline(settings.peak_rps, settings.duration / cycles)
        size = timeline.request_count
        shape = f"peak_rps={settings.peak_rps:g} with profile {settings.profile.name!r}"
        _check_size(size, cycles, shape, settings.duration, "peak_rps or duration")
        choice = choose_cycle(traffic, size)
        profile, peak = settings.profile.name, settings.peak_rps
    # Requests sent before each phase's end, counted on the arrivals themselves (the driver
    # moves to the next phase by the same comparison), not estimated from the rate.
    arrivals = list(timeline.arrivals())
    ends = [bisect.bisect_left(arrivals, end) for _, _, end in timeline.phase_spans()]
    boundaries = sorted({b for b in ends[:-1] if 0 < b < size} | {size})
    return CyclePlan(choice, timeline, tuple(boundaries), profile, peak)


def _check_size(size: int, cycles: int, shape: str, duration: float, hint: str) -> None:
    if size < MIN_REQUESTS_PER_CYCLE:
        raise ProfileError(
            f"{shape} over duration={duration:g}s plans only {size} requests per load cycle "
            f"({cycles} identical cycles: the warm-up and the measured ones); a verdict needs "
            f"at least {MIN_REQUESTS_PER_CYCLE} per cycle: raise {hint}"
        )


def _monotonic_offsets(choice: CycleChoice, traffic: Traffic) -> list[float]:
    """Recorded offsets of the cycle's requests; a recording repeated to fill the cycle keeps
    counting forwards, one mean gap between passes."""
    first = traffic[0].offset
    span = traffic[-1].offset - first
    length = span + (span / (len(traffic) - 1) if len(traffic) > 1 else 1.0)
    return [
        (k // len(traffic)) * length + traffic[i].offset - first
        for k, i in enumerate(choice.indices)
    ]
