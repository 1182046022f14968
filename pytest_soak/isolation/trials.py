"""Trials: each replay of a subset of the traffic is a full soak run, judged by the same rule.

A *trial* is ``engine.run_soak`` on part of the **measured cycle** — the requests every cycle of
the run that found the leak replayed (``measured_cycle``): those of some endpoints, of one kind of
request, or mutated ones, in the cycle's order. It has the warm-up cycle, the measured cycles
and, when the verdict narrowly misses, the extra cycles, exactly as the run that found the leak.
A trial *leaks* when its verdict is ``leak``: no shortcut, no lowered noise floor. Each trial
cycle replays its part whole (repeated to fill the cycle), never a window of it: "the traffic
without the unknown-id deletes" keeps every delete whose cart the cycle made, exactly as the
measured run did.

**Sizing** (``TrialSizing``, docs/isolation.md "Trials"): a trial replays, per cycle, its part
``scale`` times (at least ``min_per_cycle`` requests). So a culprit kept in a trial is replayed
at least as often per cycle as in the measured run, and a per-request leak grows per cycle at
least as much as the growth that was judged a leak, while the traffic that was removed no longer
adds its noise.

- ``scale`` is 1 unless the measured growth was close to the noise: it is raised so that the
  whole measured growth, replayed, would be ``VISIBILITY`` times the noise floor, and one
  cycle's growth ``STEP_VISIBILITY`` times the step a cycle needs to count as grown (at most
  ``MAX_SCALE``).
- ``min_per_cycle``: the trial's warm-up and the first half of its measured cycles together send
  at least one measured cycle of requests (and at least ``MIN_REQUESTS_PER_CYCLE`` per cycle).
  State bounded by a request count (a ring buffer of recent requests, Datasette's 200 recent
  permission checks) filled in the measured run's warm-up; in a trial it fills within the first
  half, so the rule sees it flatten instead of growing in every cycle.
- The request rate is the measured run's (same profile, same ``peak_rps``), so a cycle's wall
  time shrinks with its requests; a cycle with more requests than the measured one raises the
  rate up to ``MAX_RATE_FACTOR``, beyond that it lasts longer.

``Trials`` runs them within the isolation's budget (a number of trials and a time limit; a trial
is not started when it would end past the limit) and measures each one's true wall time.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_soak.cycles import MIN_REQUESTS_PER_CYCLE, plan_cycles
from pytest_soak.engine import run_soak
from pytest_soak.errors import SoakError
from pytest_soak.isolation.search import Exhausted
from pytest_soak.probes import METRICS
from pytest_soak.traffic.cycle import CycleChoice
from pytest_soak.traffic.model import Exchange, Traffic

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult
    from pytest_soak.settings import Settings

#: The whole measured growth, replayed in a trial, should be this many times the noise floor,
VISIBILITY = 4.0
#: and one cycle's growth this many times the step a cycle needs to count as "grew".
STEP_VISIBILITY = 2.0
#: ... but a trial replays at most this many times the kept requests of a measured cycle.
MAX_SCALE = 4.0
#: A cycle with more requests than the measured one raises the rate up to this factor.
MAX_RATE_FACTOR = 2.0
#: Before any trial has run: seconds a trial takes beyond its planned load (floors, settling).
DEFAULT_OVERHEAD = 2.0


@dataclass(frozen=True)
class Trial:
    """One trial: a full cycles run of a subset of the traffic, and its verdict."""

    number: int
    purpose: str
    exchanges: int  # requests of the measured cycle in its part
    cycle_requests: int  # requests each of its cycles replayed (the part, repeated)
    requests: int  # sent, over all its cycles
    leaks: bool  # its verdict is "leak"
    verdict: str
    growth_per_request: float
    growth: float
    seconds: float  # true wall time, measured around the run
    planned_seconds: float  # the load's planned wall time
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measured_cycle(traffic: Traffic, settings: Settings) -> CycleChoice:
    """The requests every cycle of the measured run replayed (``cycles.plan_cycles`` is
    deterministic: the same traffic and settings give the same cycle)."""
    return plan_cycles(traffic, settings).choice


@dataclass(frozen=True)
class TrialSizing:
    """How big every trial is, from the run that found the leak (module docstring)."""

    settings: Settings  # the measured run's, paced by a profile
    cycle_requests: int  # of the measured cycle
    cycle_seconds: float  # wall seconds of one measured cycle
    scale: float

    @classmethod
    def from_result(
        cls, cycle_requests: int, settings: Settings, result: SoakResult
    ) -> TrialSizing:
        cycles = settings.warmup_cycles + settings.measured_cycles
        cycle_seconds = float(result.traffic.get("cycle", {}).get("wall_seconds", 0.0))
        if cycle_seconds <= 0:
            cycle_seconds = settings.duration / cycles
        if settings.replay != "profile":
            # A part of a recording has other gaps: pace trials by the constant profile at the
            # measured cycle's average rate.
            from pytest_soak.profiles import get_profile

            settings = dataclasses.replace(
                settings,
                replay="profile",
                profile=get_profile("constant"),
                peak_rps=cycle_requests / cycle_seconds,
            )
        return cls(settings, cycle_requests, cycle_seconds, visibility_scale(result, settings))

    @property
    def min_per_cycle(self) -> int:
        """Fewest requests per trial cycle: the warm-up and the first half of the measured
        cycles send at least one measured cycle (module docstring)."""
        early = self.settings.warmup_cycles + self.settings.measured_cycles / 2
        return max(MIN_REQUESTS_PER_CYCLE, math.ceil(self.cycle_requests / early))

    def requests_per_cycle(self, kept: int) -> int:
        """Requests per cycle of a trial of ``kept`` requests of the measured cycle."""
        return max(self.min_per_cycle, math.ceil(self.scale * kept))

    def settings_for(self, cycle_requests: int) -> Settings:
        """The trial's settings: ``cycle_requests`` per cycle, the measured run's profile and
        cycles, the measured rate (raised up to ``MAX_RATE_FACTOR`` for a bigger cycle)."""
        base = self.settings
        rate = min(MAX_RATE_FACTOR, max(1.0, cycle_requests / self.cycle_requests))
        wall = self.cycle_seconds * cycle_requests / (self.cycle_requests * rate)
        profile = base.profile
        expected = profile.timeline(base.peak_rps, wall).expected_requests
        peak = base.peak_rps * cycle_requests / expected
        for _ in range(50):  # rounding: floor(expected + 0.5) must reach the count
            if profile.timeline(peak, wall).request_count >= cycle_requests:
                break
            peak *= 1.0 + 0.5 / cycle_requests
        cycles = base.warmup_cycles + base.measured_cycles
        return dataclasses.replace(
            base,
            duration=wall * cycles,
            peak_rps=peak,
            max_growth=None,  # a total for the measured run, not for a part of it
            baseline=False,
            isolate="off",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": round(self.scale, 3),
            "measured_cycle_requests": self.cycle_requests,
            "measured_cycle_seconds": round(self.cycle_seconds, 3),
            "min_requests_per_cycle": self.min_per_cycle,
            "cycles": self.settings.warmup_cycles + self.settings.measured_cycles,
        }


def visibility_scale(result: SoakResult, settings: Settings) -> float:
    """1, or more when the measured growth was close to the noise: so that replaying all of it
    would grow ``VISIBILITY`` times the floor a trial needs, and each cycle ``STEP_VISIBILITY``
    times the step a cycle needs (at most ``MAX_SCALE``)."""
    judgement = result.analysis.primary
    if judgement is None:
        return 1.0
    cycles = len(judgement.deltas) or settings.measured_cycles
    per_cycle = min(judgement.growth, judgement.trend_growth) / cycles
    floor = judgement.threshold
    if settings.max_growth is not None:  # trials have no max_growth: their floor is the noise
        facts = METRICS.get(judgement.metric)
        floor = facts.noise if facts is not None else floor
    if per_cycle <= 0 or floor <= 0:
        return MAX_SCALE
    wanted = max(
        VISIBILITY * floor / (per_cycle * settings.measured_cycles),
        STEP_VISIBILITY * judgement.step_noise / per_cycle,
    )
    return min(MAX_SCALE, max(1.0, wanted))


class Trials:
    """Runs trials of parts of the measured cycle (``cycle``: its requests in replay order)
    within a budget of trials and time; ``traffic`` names their origin."""

    def __init__(
        self,
        target: object,
        cycle: Sequence[Exchange],
        traffic: Traffic,
        sizing: TrialSizing,
        *,
        test_id: str,
        max_trials: int,
        time_limit: float,
        overhead: float = DEFAULT_OVERHEAD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.cycle = cycle
        self.traffic = traffic
        self.sizing = sizing
        self.test_id = test_id
        self.max_trials = max_trials
        self.time_limit = time_limit
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + time_limit
        self.overhead = overhead  # the most a trial took beyond its planned load
        self.done: list[Trial] = []

    @property
    def count(self) -> int:
        return len(self.done)

    @property
    def seconds(self) -> list[float]:
        return [trial.seconds for trial in self.done]

    def timing(self) -> dict[str, Any]:
        """True wall times: the isolation's, and its trials' (median, shortest, longest)."""
        seconds = self.seconds
        return {
            "seconds": round(self.clock() - self.started, 1),
            "replay_seconds": round(statistics.median(seconds), 1) if seconds else 0.0,
            "replay_seconds_range": [round(min(seconds), 1), round(max(seconds), 1)]
            if seconds
            else [],
        }

    def run(
        self,
        positions: Iterable[int],
        purpose: str,
        *,
        replaced: Mapping[int, Exchange] | None = None,
    ) -> Trial:
        """One trial of the measured cycle's requests at ``positions`` (in the cycle's order);
        ``replaced`` swaps some of them for other exchanges (mutations) at the same positions."""
        chosen = sorted(set(positions))
        if self.count >= self.max_trials:
            raise Exhausted(f"{self.max_trials} trials")
        per_cycle = self.sizing.requests_per_cycle(len(chosen))
        settings = self.sizing.settings_for(per_cycle)
        now = self.clock()
        if now + settings.duration + self.overhead > self.deadline:
            raise Exhausted(f"time limit of {self.time_limit:.0f}s")
        swap = replaced or {}
        subset = dataclasses.replace(
            self.traffic,
            exchanges=tuple(swap.get(i, self.cycle[i]) for i in chosen),
            skipped=(),
        )
        number = self.count + 1
        try:
            result = run_soak(
                self.target,
                subset,
                settings,
                test_id=f"{self.test_id} [isolation trial {number}]",
                check=False,
                attribution=False,  # the measured run attributed; a trial needs its verdict
            )
        except SoakError as exc:
            trial = Trial(
                number, purpose, len(subset), per_cycle, 0, False, "error", 0.0, 0.0,
                self.clock() - now, settings.duration, str(exc),
            )  # fmt: skip
            self._record(trial)
            raise Exhausted(f"trial {number} failed: {exc}") from exc
        trial = Trial(
            number=number,
            purpose=purpose,
            exchanges=len(subset),
            cycle_requests=result.analysis.cycle_requests or per_cycle,
            requests=result.run.sent,
            leaks=result.verdict == "leak",
            verdict=result.verdict,
            growth_per_request=result.growth_per_request,
            growth=result.growth,
            seconds=self.clock() - now,
            planned_seconds=settings.duration,
            reason=result.reason,
        )
        self._record(trial)
        if result.run.aborted or result.verdict == "error":
            raise Exhausted(f"trial {number} failed: {result.reason}")
        return trial

    def _record(self, trial: Trial) -> None:
        self.done.append(trial)
        self.overhead = max(self.overhead, trial.seconds - trial.planned_seconds)
