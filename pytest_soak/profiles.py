"""Ramp profiles: the shape of a day of load, its named phases, and its compression into wall time.

A ``Profile`` is a piecewise-linear *level* in ``[0, 1]`` (a fraction of the peak rate) over a
nominal timeline in seconds, cut into contiguous named phases. ``Profile.timeline(peak_rps,
wall_seconds)`` compresses the time axis (not the rate) into a ``Timeline``: the rate in requests
per second at each wall-clock instant, its exact integral ``requests_until`` and inverse
``time_of_request``, and the deterministic send offsets ``arrivals()``.

The shape is stored as breakpoints ``((t0, level0), (t1, level1), ...)`` joined by straight lines;
two breakpoints at the same time make a step (the level is right-continuous). Integrals are
trapezoids, and their inverse within a segment is the root of a quadratic, so counts are exact and
``arrivals()`` costs O(1) memory and a few float operations per request.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pytest_soak.errors import ProfileError, SoakError
from pytest_soak.units import parse_duration

__all__ = [
    "BUILTINS",
    "Phase",
    "Profile",
    "RecordedPass",
    "RecordedTimeline",
    "Stage",
    "Timeline",
    "get_profile",
]

HOUR = 3600.0
DAY = 24 * HOUR
CUSTOM_HINT = "pass a Profile (Profile.stages([...]) / Profile.hourly({...}))"

Breakpoints = tuple[tuple[float, float], ...]
Stage = tuple[str | float, float] | tuple[str | float, float, str]


@dataclass(frozen=True, slots=True)
class Phase:
    """A named stretch ``[start, end)`` of a profile's nominal timeline, in seconds."""

    name: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Profile:
    """A load shape over a nominal timeline: ``shape(t)`` in ``[0, 1]`` and named phases.

    Build one with a constructor (``Profile.stages``, ``Profile.hourly``, or a built-in such as
    ``Profile.spike_at_8am()``), or directly from breakpoints and phases. ``peak`` is the absolute
    rate in requests per second that level 1.0 stands for when the profile was defined in absolute
    numbers (stages), else ``None``.
    """

    name: str
    breakpoints: Breakpoints
    phases: tuple[Phase, ...]
    peak: float | None = None
    _times: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _phase_starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"name={self.name!r} must be a non-empty string")
        breakpoints = _check_breakpoints(self.breakpoints)
        phases = _check_phases(self.phases, breakpoints[-1][0])
        if self.peak is not None:
            _positive(self.peak, "peak", "requests per second that level 1.0 stands for")
        object.__setattr__(self, "breakpoints", breakpoints)
        object.__setattr__(self, "phases", phases)
        object.__setattr__(self, "_times", tuple(t for t, _ in breakpoints))
        object.__setattr__(self, "_phase_starts", tuple(phase.start for phase in phases))

    @property
    def nominal(self) -> float:
        """Length of the nominal timeline in seconds (86400 for a day)."""
        return self.breakpoints[-1][0]

    def shape(self, t: float) -> float:
        """Fraction of the peak rate at nominal time ``t`` (clamped to the timeline)."""
        t = _clamp(t, self.nominal, "t")
        i = bisect.bisect_right(self._times, t) - 1
        if i >= len(self._times) - 1:
            return self.breakpoints[-1][1]
        (t0, level0), (t1, level1) = self.breakpoints[i], self.breakpoints[i + 1]
        return level0 + (level1 - level0) * (t - t0) / (t1 - t0)

    def phase_at(self, t: float) -> int:
        """Index of the phase containing nominal time ``t`` (clamped to the timeline)."""
        t = _clamp(t, self.nominal, "t")
        return bisect.bisect_right(self._phase_starts, t) - 1

    def timeline(self, peak_rps: float | None, wall_seconds: float) -> Timeline:
        """Compress the nominal timeline into ``wall_seconds``, with level 1.0 at ``peak_rps``.

        ``peak_rps=None`` uses the profile's own absolute ``peak`` (stages); a number rescales it.
        """
        if peak_rps is None:
            if self.peak is None:
                raise ProfileError(
                    f"peak_rps=None needs a profile with an absolute peak, and profile "
                    f"{self.name!r} is relative; pass peak_rps= (requests per second at the peak)"
                )
            peak_rps = self.peak
        return Timeline(self, peak_rps, wall_seconds)

    @classmethod
    def constant(cls) -> Profile:
        """One nominal hour at the peak rate: phase ``steady``."""
        return cls("constant", ((0.0, 1.0), (HOUR, 1.0)), _phases(("steady", HOUR)))

    @classmethod
    def ramp(cls) -> Profile:
        """One nominal hour: linear 0.1 -> 1.0 over 45 min (``ramp-up``), then 1.0 (``top``)."""
        points = ((0.0, 0.1), (0.75 * HOUR, 1.0), (HOUR, 1.0))
        return cls("ramp", points, _phases(("ramp-up", 0.75 * HOUR), ("top", HOUR)))

    @classmethod
    def step(cls, steps: int = 4) -> Profile:
        """``steps`` flat steps of 15 nominal minutes at 1/steps, 2/steps, ... 1.0."""
        _count(steps, "steps", "Profile.step(steps=4)")
        length = 15 * 60.0
        points = tuple(
            (edge * length, i / steps) for i in range(1, steps + 1) for edge in (i - 1, i)
        )
        names = ((f"step-{i}", i * length) for i in range(1, steps + 1))
        return cls("step", points, _phases(*names))

    @classmethod
    def spike_at_8am(cls) -> Profile:
        """A day: quiet night, spike 08-09, sustained 09-16, decline 16-20, quiet late night."""
        points = (
            (0.0, 0.05),
            (8 * HOUR, 0.05),
            (8 * HOUR, 1.0),
            (9 * HOUR, 1.0),
            (9 * HOUR, 0.6),
            (16 * HOUR, 0.6),
            (20 * HOUR, 0.05),
            (DAY, 0.05),
        )
        phases = _phases(
            ("night", 8 * HOUR),
            ("spike", 9 * HOUR),
            ("sustained", 16 * HOUR),
            ("decline", 20 * HOUR),
            ("late-night", DAY),
        )
        return cls("spike-at-8am", points, phases)

    @classmethod
    def sustained_daytime(cls) -> Profile:
        """A day: 0.05 at night, flat 1.0 from 09 to 17, 0.05 in the evening."""
        points = (
            (0.0, 0.05),
            (9 * HOUR, 0.05),
            (9 * HOUR, 1.0),
            (17 * HOUR, 1.0),
            (17 * HOUR, 0.05),
            (DAY, 0.05),
        )
        phases = _phases(("night", 9 * HOUR), ("daytime", 17 * HOUR), ("evening", DAY))
        return cls("sustained-daytime", points, phases)

    @classmethod
    def cycles(cls, n: int = 6) -> Profile:
        """``n`` identical 10-minute cycles: 0.1 -> 1.0 over 2 min, 1.0 for 4 min,
        1.0 -> 0.1 over 2 min, 0.1 for 2 min."""
        _count(n, "n", "Profile.cycles(n=6)")
        length = 600.0
        points: list[tuple[float, float]] = [(0.0, 0.1)]
        for i in range(n):
            start = i * length
            points += [
                (start + 120, 1.0),
                (start + 360, 1.0),
                (start + 480, 0.1),
                (start + 600, 0.1),
            ]
        names = ((f"cycle-{i}", i * length) for i in range(1, n + 1))
        return cls("cycles", tuple(points), _phases(*names))

    @classmethod
    def stages(cls, stages: Sequence[Stage], name: str = "stages") -> Profile:
        """k6-style stages: each ramps linearly from the previous target (0 at the start) to
        ``target`` req/s over ``duration`` ("10m", "1h30m" or seconds); ``peak`` is the largest
        target. One phase per stage, named ``stage-1``, ``stage-2``, ... or by a third item."""
        if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence) or not stages:
            raise ProfileError(
                f"stages={stages!r} must be a non-empty list of (duration, target) tuples; "
                'use e.g. Profile.stages([("10m", 20), ("1h", 200), ("10m", 0)])'
            )
        ends: list[float] = []
        targets: list[float] = []
        names: list[str] = []
        for i, stage in enumerate(stages):
            duration, target, stage_name = _check_stage(stage, i)
            ends.append((ends[-1] if ends else 0.0) + duration)
            targets.append(target)
            names.append(stage_name)
        peak = max(targets)
        if peak == 0:
            raise ProfileError(
                f"stages={list(stages)!r} all have target 0, so no request would be sent; "
                "give at least one stage a target above 0 req/s"
            )
        points = (
            (0.0, 0.0),
            *((end, target / peak) for end, target in zip(ends, targets, strict=True)),
        )
        return cls(name, points, _phases(*zip(names, ends, strict=True)), peak=peak)

    @classmethod
    def hourly(cls, table: Mapping[int, float], name: str = "hourly") -> Profile:
        """A day as a step function: ``{hour: level}`` holds ``level`` from ``hour``:00 until the
        next listed hour; hours before the first key carry the last key's level (the day wraps).
        One phase per change of level, named ``"HH:00-HH:00"``."""
        if not isinstance(table, Mapping) or not table:
            raise ProfileError(
                f"table={table!r} must be a non-empty mapping of hour (0..23) to level in [0, 1]; "
                "use e.g. Profile.hourly({0: 0.05, 8: 1.0, 9: 0.6, 17: 0.05})"
            )
        for hour, level in table.items():
            if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
                raise ProfileError(
                    f"table key {hour!r} must be an hour 0..23 (the hour the level starts at)"
                )
            _level(level, f"table[{hour}]")
        level = table[max(table)]
        levels: list[float] = []
        for hour in range(24):
            level = table.get(hour, level)
            levels.append(float(level))
        starts = [hour for hour in range(24) if hour == 0 or levels[hour] != levels[hour - 1]]
        spans = list(zip(starts, [*starts[1:], 24], strict=True))
        points = tuple(
            point
            for start, end in spans
            for point in ((start * HOUR, levels[start]), (end * HOUR, levels[start]))
        )
        phases = tuple(
            Phase(f"{start:02d}:00-{end:02d}:00", start * HOUR, end * HOUR) for start, end in spans
        )
        return cls(name, points, phases)


class _Segment(NamedTuple):
    """A straight piece of the wall-clock rate: from (w0, r0) to (w1, r1), with cumulative
    expected requests cum0 at w0 and cum1 at w1."""

    w0: float
    w1: float
    r0: float
    r1: float
    cum0: float
    cum1: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """A profile compressed into ``wall_seconds`` of wall time, with level 1.0 at ``peak_rps``.

    Only the time axis is compressed: a day in 60 s at peak 150 sends ~150 req/s during its 2.5 s
    spike. ``arrivals()`` yields ``request_count = floor(expected_requests + 0.5)`` send offsets:
    request ``k`` is sent when the expected count reaches ``k + 0.5``.
    """

    profile: Profile
    peak_rps: float
    wall_seconds: float
    expected_requests: float = field(init=False)
    request_count: int = field(init=False)
    _segments: tuple[_Segment, ...] = field(init=False, repr=False, compare=False)
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _cum_ends: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _spans: tuple[tuple[Phase, float, float], ...] = field(init=False, repr=False, compare=False)
    _span_starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):
            raise ProfileError(f"profile={self.profile!r} must be a Profile; {CUSTOM_HINT}")
        peak = _positive(self.peak_rps, "peak_rps", "requests per second at the profile's peak")
        wall = _positive(self.wall_seconds, "wall_seconds", "wall-clock length of the run")
        nominal = self.profile.nominal

        def to_wall(t: float) -> float:
            return wall if t >= nominal else min(t * (wall / nominal), wall)

        segments: list[_Segment] = []
        cum = 0.0
        points = self.profile.breakpoints
        for (t0, level0), (t1, level1) in itertools.pairwise(points):
            w0, w1 = to_wall(t0), to_wall(t1)
            if w1 > w0:
                r0, r1 = peak * level0, peak * level1
                segments.append(_Segment(w0, w1, r0, r1, cum, cum + (r0 + r1) / 2 * (w1 - w0)))
                cum = segments[-1].cum1
        if not math.isfinite(cum):
            raise ProfileError(
                f"peak_rps={self.peak_rps!r} over wall_seconds={self.wall_seconds!r} is too many "
                "requests to count; lower one of them"
            )
        spans = tuple((p, to_wall(p.start), to_wall(p.end)) for p in self.profile.phases)
        for name, value in (
            ("peak_rps", peak),
            ("wall_seconds", wall),
            ("expected_requests", cum),
            ("request_count", math.floor(cum + 0.5)),
            ("_segments", tuple(segments)),
            ("_starts", tuple(s.w0 for s in segments)),
            ("_cum_ends", tuple(s.cum1 for s in segments)),
            ("_spans", spans),
            ("_span_starts", tuple(start for _, start, _ in spans)),
        ):
            object.__setattr__(self, name, value)

    def rate(self, wall_t: float) -> float:
        """Requests per second at wall time ``wall_t`` (clamped to the run)."""
        t = _clamp(wall_t, self.wall_seconds, "wall_t")
        seg = self._segment_at(t)
        return seg.r0 + (seg.r1 - seg.r0) * (t - seg.w0) / (seg.w1 - seg.w0)

    def requests_until(self, wall_t: float) -> float:
        """Expected requests sent in ``[0, wall_t]`` (the exact integral of ``rate``)."""
        t = _clamp(wall_t, self.wall_seconds, "wall_t")
        if t >= self.wall_seconds:
            return self.expected_requests
        seg = self._segment_at(t)
        x = t - seg.w0
        return seg.cum0 + seg.r0 * x + (seg.r1 - seg.r0) * x * x / (2 * (seg.w1 - seg.w0))

    def time_of_request(self, n: float) -> float:
        """The earliest wall time at which ``requests_until`` reaches ``n``."""
        if not 0 <= _number(n, "n") <= self.expected_requests:
            raise ProfileError(
                f"n={n!r} must be a number of requests within [0, expected_requests="
                f"{self.expected_requests:g}]"
            )
        seg = self._segments[bisect.bisect_left(self._cum_ends, n)]
        return _time_in(seg, n - seg.cum0)

    def arrivals(self) -> Iterator[float]:
        """Intended wall send offsets of requests 0, 1, 2, ...: request ``k`` at
        ``time_of_request(k + 0.5)``, ``request_count`` of them, non-decreasing, deterministic."""
        positive = [seg for seg in self._segments if seg.cum1 > seg.cum0]
        k = 0
        for i, seg in enumerate(positive):
            stop = self.request_count
            if i < len(positive) - 1:
                stop = min(stop, math.ceil(seg.cum1 - 0.5))
            if stop <= k:
                continue
            yield _time_in(seg, k + 0.5 - seg.cum0)
            if stop - k > 2:
                yield from _interior(seg, k + 1, stop - 1)
            if stop - k > 1:
                yield _time_in(seg, stop - 0.5 - seg.cum0)
            k = stop

    def phase_spans(self) -> tuple[tuple[Phase, float, float], ...]:
        """Each phase of the profile with its wall-clock start and end."""
        return self._spans

    def phase_at(self, wall_t: float) -> int:
        """Index of the phase containing wall time ``wall_t`` (clamped to the run)."""
        t = _clamp(wall_t, self.wall_seconds, "wall_t")
        return bisect.bisect_right(self._span_starts, t) - 1

    def _segment_at(self, t: float) -> _Segment:
        return self._segments[max(bisect.bisect_right(self._starts, t) - 1, 0)]


class RecordedTimeline:
    """The ``recorded`` replay mode: the recording's own timing instead of a profile's.

    Request ``i`` of a pass is sent ``w[i]`` seconds into it, where each recorded gap is divided
    by ``speed`` and then capped at ``max_gap`` wall seconds (a recording's quiet night must not
    stall a one-minute run). Passes repeat, one mean gap apart, until ``wall_seconds``; a
    recording longer than the run is cut there. Offsets must be non-decreasing (loaders sort by
    timestamp). The whole run is one phase, ``recorded``.
    """

    #: Gap between passes when every request of the recording shares one instant.
    BURST_PERIOD = 1.0

    def __init__(
        self, offsets: Sequence[float], *, speed: float, max_gap: float, wall_seconds: float
    ) -> None:
        if not offsets:
            raise ProfileError("the recording has no requests to replay")
        speed = _positive(speed, "speed", "how many times faster than recorded to replay")
        max_gap = _positive(max_gap, "max_gap", "the longest wait between two requests")
        self.wall_seconds = _positive(wall_seconds, "wall_seconds", "wall-clock length of the run")
        wall = [0.0]
        for previous, current in itertools.pairwise(offsets):
            gap = current - previous
            if not gap >= 0:
                raise ProfileError(
                    f"recorded offsets must not decrease ({previous!r} then {current!r})"
                )
            wall.append(wall[-1] + min(gap / speed, max_gap))
        self._pass = tuple(wall)
        mean_gap = wall[-1] / (len(wall) - 1) if len(wall) > 1 else 0.0
        self.pass_seconds = wall[-1] + (mean_gap if mean_gap > 0 else self.BURST_PERIOD)
        self.request_count = int(self.requests_until(self.wall_seconds))
        self.expected_requests = float(self.request_count)
        self.peak_rps = len(wall) / self.pass_seconds  # the mean rate of a pass
        phase = Phase("recorded", 0.0, self.wall_seconds)
        self._spans = ((phase, 0.0, self.wall_seconds),)

    def requests_until(self, wall_t: float) -> float:
        """Requests intended in ``[0, wall_t]``."""
        t = _clamp(wall_t, self.wall_seconds, "wall_t")
        passes, rest = divmod(t, self.pass_seconds)
        return float(int(passes) * len(self._pass) + bisect.bisect_right(self._pass, rest))

    def arrivals(self) -> Iterator[float]:
        """Intended wall send offsets, ``request_count`` of them, non-decreasing."""
        left = self.request_count
        passes = 0
        while left > 0:
            start = passes * self.pass_seconds
            for offset in self._pass[:left]:
                yield min(start + offset, self.wall_seconds)  # the count's rounding decides
            left -= len(self._pass)
            passes += 1

    def phase_spans(self) -> tuple[tuple[Phase, float, float], ...]:
        return self._spans


class RecordedPass:
    """One pass over recorded offsets as one load cycle of the ``recorded`` replay mode: each
    gap divided by ``speed`` and capped at ``max_gap``, then one mean gap before the next
    cycle. ``request_count`` is exactly the number of offsets; one phase, ``recorded``."""

    def __init__(self, offsets: Sequence[float], *, speed: float, max_gap: float) -> None:
        whole = RecordedTimeline(offsets, speed=speed, max_gap=max_gap, wall_seconds=1.0)
        self._pass = whole._pass
        self.wall_seconds = whole.pass_seconds
        self.request_count = len(self._pass)
        self.expected_requests = float(self.request_count)
        phase = Phase("recorded", 0.0, self.wall_seconds)
        self._spans = ((phase, 0.0, self.wall_seconds),)

    def arrivals(self) -> Iterator[float]:
        return iter(self._pass)

    def requests_until(self, wall_t: float) -> float:
        if wall_t >= self.wall_seconds:
            return self.expected_requests
        return float(bisect.bisect_right(self._pass, wall_t))

    def phase_spans(self) -> tuple[tuple[Phase, float, float], ...]:
        return self._spans


def _time_in(seg: _Segment, d: float) -> float:
    """Wall time within ``seg`` at which ``d`` of its requests have been sent (clamped)."""
    w0, w1, r0, r1, cum0, cum1 = seg
    length = w1 - w0
    d = min(d, cum1 - cum0)
    if d <= 0:
        return w0
    if r0 == r1:
        return min(w0 + d / r0, w1)
    if r1 > r0:
        rising = r0 + math.sqrt(r0 * r0 + 2 * (r1 - r0) * d / length)
        # A ramp from rate 0 and a vanishing d underflow to 0: that request is at the start.
        return min(w0 + 2 * d / rising, w1) if rising > 0 else w0
    e = cum1 - cum0 - d
    if e <= 0:
        return w1
    falling = r1 + math.sqrt(r1 * r1 + 2 * (r0 - r1) * e / length)
    return max(w1 - 2 * e / falling, w0) if falling > 0 else w1


def _interior(seg: _Segment, first: int, stop: int) -> Iterator[float]:
    """Send times of requests ``first .. stop - 1``, all at least one request inside ``seg``.

    The same formulas as ``_time_in`` without its clamps, computed from each ``k`` (no running sum,
    so no drift): constant rate is a division, a rising rate the stable root of the quadratic from
    the segment's start, a falling rate the same root from its end.
    """
    w0, w1, r0, r1, cum0, cum1 = seg
    sqrt = math.sqrt
    ks = range(first, stop)
    if r0 == r1:
        before = cum0 - 0.5
        return (w0 + (k - before) / r0 for k in ks)
    if r1 > r0:
        square, slope = r0 * r0, 2 * (r1 - r0) / (w1 - w0)
        return (
            w0 + 2 * d / (r0 + sqrt(square + slope * d)) for d in map((cum0 - 0.5).__rsub__, ks)
        )
    square, slope = r1 * r1, 2 * (r0 - r1) / (w1 - w0)
    return (w1 - 2 * e / (r1 + sqrt(square + slope * e)) for e in map((cum1 - 0.5).__sub__, ks))


def _phases(*names_and_ends: tuple[str, float]) -> tuple[Phase, ...]:
    """Contiguous phases from ``(name, end)`` pairs, the first starting at 0."""
    phases: list[Phase] = []
    start = 0.0
    for name, end in names_and_ends:
        phases.append(Phase(name, start, end))
        start = end
    return tuple(phases)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ProfileError(f"{name}={value!r} must be a number")
    return float(value)


def _positive(value: object, name: str, meaning: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise ProfileError(f"{name}={value!r} must be greater than 0 ({meaning})")
    if math.isinf(number):
        raise ProfileError(f"{name}={value!r} must be finite ({meaning})")
    return number


def _level(value: object, name: str) -> float:
    level = _number(value, name)
    if not 0 <= level <= 1:
        raise ProfileError(
            f"{name}={value!r} must be a level within [0, 1] (a fraction of the peak rate)"
        )
    return level


def _count(value: object, name: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProfileError(f"{name}={value!r} must be a whole number of at least 1; use {example}")


def _clamp(t: float, upper: float, name: str) -> float:
    return min(max(_number(t, name), 0.0), upper)


def _check_stage(stage: object, i: int) -> tuple[float, float, str]:
    if not isinstance(stage, (tuple, list)) or len(stage) not in (2, 3):
        raise ProfileError(
            f"stages[{i}]={stage!r} must be (duration, target) or (duration, target, name); "
            'use e.g. ("10m", 200)'
        )
    try:
        duration = parse_duration(stage[0], name=f"stages[{i}] duration")
    except SoakError as exc:
        raise ProfileError(str(exc)) from exc
    target = _number(stage[1], f"stages[{i}] target")
    if not 0 <= target < math.inf:
        raise ProfileError(
            f"stages[{i}] target={stage[1]!r} must be a finite rate of at least 0 requests "
            'per second; use e.g. ("10m", 200)'
        )
    stage_name = stage[2] if len(stage) == 3 else f"stage-{i + 1}"
    if not isinstance(stage_name, str) or not stage_name:
        raise ProfileError(f"stages[{i}] name={stage_name!r} must be a non-empty string")
    return duration, target, stage_name


def _check_breakpoints(breakpoints: object) -> Breakpoints:
    if not isinstance(breakpoints, (tuple, list)) or len(breakpoints) < 2:
        raise ProfileError(
            f"breakpoints={breakpoints!r} must list at least two (t, level) points: "
            "((0, level), ..., (nominal, level))"
        )
    points: list[tuple[float, float]] = []
    for i, point in enumerate(breakpoints):
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise ProfileError(f"breakpoints[{i}]={point!r} must be a (t, level) pair")
        t = _number(point[0], f"breakpoints[{i}] t")
        previous = points[-1][0] if points else 0.0
        if not previous <= t < math.inf or (i == 0 and t != 0):
            raise ProfileError(
                f"breakpoints[{i}] t={point[0]!r} must be finite and in time order, the first at "
                f"0 (previous t={previous:g})"
            )
        points.append((t, _level(point[1], f"breakpoints[{i}] level")))
    if points[-1][0] <= 0:
        raise ProfileError(f"breakpoints={breakpoints!r} must span a timeline longer than 0 s")
    if not any(level > 0 for _, level in points):
        raise ProfileError(
            "breakpoints are all at level 0, so no request would be sent; "
            "give some stretch a level above 0"
        )
    return tuple(points)


def _check_phases(phases: object, nominal: float) -> tuple[Phase, ...]:
    if not isinstance(phases, (tuple, list)) or not phases:
        raise ProfileError(
            f"phases={phases!r} must be a non-empty sequence of Phase covering [0, {nominal:g}]"
        )
    seen: dict[str, int] = {}
    end = 0.0
    for i, phase in enumerate(phases):
        if not isinstance(phase, Phase):
            raise ProfileError(f"phases[{i}]={phase!r} must be a Phase(name, start, end)")
        if not isinstance(phase.name, str) or not phase.name:
            raise ProfileError(f"phases[{i}].name={phase.name!r} must be a non-empty string")
        if phase.name in seen:
            raise ProfileError(
                f"phases[{i}].name={phase.name!r} is already used by phases[{seen[phase.name]}]; "
                "phase names must be unique"
            )
        seen[phase.name] = i
        if phase.start != end or not _number(phase.end, f"phases[{i}].end") > phase.start:
            raise ProfileError(
                f"phases[{i}]={phase!r} must start where the previous phase ends (t={end:g}) "
                "and end after it starts"
            )
        end = phase.end
    if end != nominal:
        raise ProfileError(
            f"phases[-1].end={end!r} must equal the end of the breakpoints (nominal={nominal:g})"
        )
    return tuple(phases)


BUILTINS: dict[str, Callable[[], Profile]] = {
    "constant": Profile.constant,
    "cycles": Profile.cycles,
    "ramp": Profile.ramp,
    "spike-at-8am": Profile.spike_at_8am,
    "step": Profile.step,
    "sustained-daytime": Profile.sustained_daytime,
}


def get_profile(profile: str | Profile) -> Profile:
    """``profile`` itself, or the built-in of that name (case and ``_``/``-`` are forgiven)."""
    if isinstance(profile, Profile):
        return profile
    if not isinstance(profile, str):
        raise ProfileError(
            f"profile={profile!r} must be a built-in profile name or a Profile; {CUSTOM_HINT}"
        )
    key = profile.strip().lower().replace("_", "-")
    if key in BUILTINS:
        return BUILTINS[key]()
    close = difflib.get_close_matches(key, BUILTINS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ProfileError(
        f"profile={profile!r} is not a built-in profile{hint}; choose one of: "
        f"{', '.join(sorted(BUILTINS))} or {CUSTOM_HINT}"
    )
