"""What a replay produces: per-phase counts and latency histograms, and the checkpoints at
which the load was paused (nothing in flight) so memory floors could be read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_soak.driver.histogram import LatencyHistogram
from pytest_soak.traffic.redaction import redact_text

_MAX_ERROR_SAMPLES = 5
#: Status classes, as the keys of ``PhaseStats.statuses`` (interned: no new string per answer).
STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))


def _status_counts() -> Counter[str]:
    """Every class present from the start: counting an answer never grows the dict, so the
    harness's bookkeeping allocates nothing while a service's memory is measured."""
    return Counter(dict.fromkeys(STATUS_CLASSES, 0))


#: Seconds after its intended time from which a request counts as late.
LATE_THRESHOLD = 0.025


@dataclass
class PhaseStats:
    """Counts for one phase of the profile, over every cycle of the run. Bounded:
    histograms, not per-request lists, and one object per phase however many cycles run, so
    recording a cycle allocates nothing new (in process that would read as growth)."""

    name: str
    index: int  # the phase's position in the profile
    planned_seconds: float  # wall seconds planned for it, summed over cycles (without pauses)
    expected: float  # requests the profile asks for in it, summed over cycles
    wall_start: float | None = None  # actual wall seconds since the run started (with pauses)
    wall_end: float | None = None
    sent: int = 0
    late: int = 0  # sent later than the late threshold after their intended time
    capped: int = 0  # found every concurrency slot taken when due (it had to wait for one)
    unsent: int = 0  # could not be sent before the run's deadline
    statuses: Counter[str] = field(default_factory=_status_counts)  # "2xx", "4xx", ... (0s too)
    errors: Counter[str] = field(default_factory=Counter)  # "5xx", "connect", "timeout", ...
    error_samples: list[str] = field(default_factory=list)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    lateness: LatencyHistogram = field(default_factory=LatencyHistogram)
    # Seconds from the intended time (or the end of the last wait for a concurrency slot, if
    # later) to when the driver got round to the request, before its own wait for a slot: the
    # harness's own lag (a busy machine, a stalled process), which a slow service does not
    # cause (it makes requests wait for slots, which shows in ``lateness`` only).
    lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    # Loop-clock times of the phase's first and last send, intended and actual: the achieved
    # rate over exactly the requests sent, free of where the phase's edges fall.
    first_intended: float = 0.0
    last_intended: float = 0.0
    first_sent_at: float = 0.0
    last_sent_at: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def duration(self) -> float:
        if self.wall_start is None or self.wall_end is None:
            return 0.0
        return max(0.0, self.wall_end - self.wall_start)

    @property
    def planned_duration(self) -> float:
        return self.planned_seconds

    @property
    def achieved_rps(self) -> float:
        """Requests sent per second of the phase's planned (unpaused) wall time."""
        return self.sent / self.planned_duration if self.planned_duration > 0 else 0.0

    @property
    def rate_accuracy(self) -> float | None:
        """Achieved / intended send rate over the phase's requests (1.0 = on schedule); None
        with fewer than two requests or all of them intended at one instant."""
        intended = self.last_intended - self.first_intended
        actual = self.last_sent_at - self.first_sent_at
        if self.sent < 2 or intended <= 0:
            return None
        return intended / actual if actual > 0 else float("inf")

    @property
    def target_rps(self) -> float:
        return self.expected / self.planned_duration if self.planned_duration > 0 else 0.0

    def merge(self, other: PhaseStats) -> None:
        """Add the same phase's counts from a later replay (more cycles) of the same run."""
        self.planned_seconds += other.planned_seconds
        self.expected += other.expected
        self.add(other)
        if other.sent:
            if not self.sent - other.sent:
                self.first_intended, self.first_sent_at = other.first_intended, other.first_sent_at
            self.last_intended, self.last_sent_at = other.last_intended, other.last_sent_at
        if other.wall_end is not None:
            self.wall_end = other.wall_end

    def add(self, other: PhaseStats) -> None:
        """Add ``other``'s requests of the same phase (a later replay, another worker's):
        counts summed, error samples kept up to the bound, histograms merged. Its plan and
        its times are the caller's to combine (in sequence or side by side)."""
        self.sent += other.sent
        self.late += other.late
        self.capped += other.capped
        self.unsent += other.unsent
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        room = _MAX_ERROR_SAMPLES - len(self.error_samples)
        self.error_samples.extend(other.error_samples[: max(0, room)])
        self.latency.merge(other.latency)
        self.lateness.merge(other.lateness)
        self.lag.merge(other.lag)

    def note_error(self, kind: str, detail: str) -> None:
        """Count an error; keep the first few as samples, secrets masked (a request's target
        or headers may be in ``detail``: every report shows the samples)."""
        self.errors[kind] += 1
        if len(self.error_samples) < _MAX_ERROR_SAMPLES:
            self.error_samples.append(redact_text(f"{kind}: {detail}")[:300])


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The load paused after ``requests`` requests; ``drained`` if nothing was left in flight."""

    number: int
    requests: int
    wall_time: float
    phase: int
    drained: bool

    def row(self, floor: Mapping[str, float]) -> dict[str, Any]:
        """The checkpoint as the reports keep it, with the ``floor`` read at it."""
        return {
            "requests": self.requests,
            "wall_time": self.wall_time,
            "phase": self.phase,
            "drained": self.drained,
            "floor": floor,
        }


@dataclass
class Run:
    """The driver's account of one replay."""

    target: str
    profile: str
    peak_rps: float
    wall_seconds: float
    planned_requests: int
    phases: list[PhaseStats]
    elapsed: float = 0.0
    paused: float = 0.0
    aborted: str | None = None
    late_threshold: float = LATE_THRESHOLD
    # Checkpoint records live in slots allocated before the load starts: recording one swaps a
    # same-sized object, so in process the harness's bookkeeping never shows up as growth.
    _slots: list[Checkpoint] = field(default_factory=list, repr=False)
    _recorded: int = 0

    def reserve_checkpoints(self, count: int) -> None:
        self._slots = [Checkpoint(n, 0, 0.0, 0, False) for n in range(count)]
        self._recorded = 0

    def record_checkpoint(self, point: Checkpoint) -> None:
        if self._recorded < len(self._slots):
            self._slots[self._recorded] = point
        else:
            self._slots.append(point)
        self._recorded += 1

    def absorb(self, more: Run) -> None:
        """Append a continuation of this run (more cycles, replayed after it): its phases,
        and its checkpoints counted on from this run's requests and wall time."""
        sent, elapsed, count = self.sent, self.elapsed, self._recorded
        mine = {stats.name: stats for stats in self.phases}
        for stats in more.phases:
            if stats.name in mine:
                mine[stats.name].merge(stats)
            else:
                self.phases.append(stats)
        for point in more.checkpoints:
            self.record_checkpoint(
                Checkpoint(
                    count + point.number,
                    sent + point.requests,
                    elapsed + point.wall_time,
                    point.phase,
                    point.drained,
                )
            )
        self.wall_seconds += more.wall_seconds
        self.planned_requests += more.planned_requests
        self.elapsed += more.elapsed
        self.paused += more.paused
        self.aborted = more.aborted

    @property
    def checkpoints(self) -> list[Checkpoint]:
        return self._slots[: self._recorded]

    @property
    def checkpoint_count(self) -> int:
        return self._recorded

    @property
    def sent(self) -> int:
        return sum(p.sent for p in self.phases)

    @property
    def errors(self) -> int:
        return sum(p.error_count for p in self.phases)

    @property
    def late(self) -> int:
        return sum(p.late for p in self.phases)

    @property
    def capped(self) -> int:
        return sum(p.capped for p in self.phases)

    @property
    def unsent(self) -> int:
        return sum(p.unsent for p in self.phases)

    def latency(self) -> LatencyHistogram:
        return merged_latency(self.phases)


def merged_latency(phases: Iterable[PhaseStats]) -> LatencyHistogram:
    """The latency of ``phases`` together: their histograms merged (never percentiles
    averaged)."""
    total = LatencyHistogram()
    for phase in phases:
        total.merge(phase.latency)
    return total
