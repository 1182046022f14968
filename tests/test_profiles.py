from __future__ import annotations

import bisect
import collections
import itertools
import math
from collections.abc import Callable

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pytest_soak.errors import ProfileError, SoakError
from pytest_soak.profiles import BUILTINS, Phase, Profile, Timeline, get_profile

H = 3600.0

BUILTIN_PHASES = {
    "constant": ["steady"],
    "ramp": ["ramp-up", "top"],
    "step": ["step-1", "step-2", "step-3", "step-4"],
    "spike-at-8am": ["night", "spike", "sustained", "decline", "late-night"],
    "sustained-daytime": ["night", "daytime", "evening"],
    "cycles": [f"cycle-{i}" for i in range(1, 7)],
}


def assert_covers(profile: Profile) -> None:
    assert profile.phases[0].start == 0
    assert profile.phases[-1].end == profile.nominal
    for before, after in itertools.pairwise(profile.phases):
        assert before.end == after.start
    assert all(phase.end > phase.start for phase in profile.phases)


@pytest.mark.parametrize("name", sorted(BUILTIN_PHASES))
def test_builtin_phases_cover_the_timeline_with_documented_names(name: str) -> None:
    profile = get_profile(name)
    assert profile.name == name
    assert profile.peak is None
    assert [phase.name for phase in profile.phases] == BUILTIN_PHASES[name]
    assert_covers(profile)
    assert max(level for _, level in profile.breakpoints) == 1.0


def test_builtins_registry_lists_exactly_the_documented_names() -> None:
    assert sorted(BUILTINS) == sorted(BUILTIN_PHASES)
    assert get_profile("Spike_At_8am") == Profile.spike_at_8am()
    custom = Profile.stages([("1m", 5)])
    assert get_profile(custom) is custom


@pytest.mark.parametrize(
    ("hour", "level"),
    [(0, 0.05), (7.99, 0.05), (8, 1.0), (8.5, 1.0), (9, 0.6), (15.9, 0.6), (18, 0.325), (20, 0.05)],
)
def test_spike_at_8am_levels(hour: float, level: float) -> None:
    assert Profile.spike_at_8am().shape(hour * H) == pytest.approx(level)


def test_spike_at_8am_compressed_to_a_minute_at_peak_150() -> None:
    timeline = Profile.spike_at_8am().timeline(150, 60)
    # One nominal hour is 2.5 s of wall time; the rate is not compressed.
    by_hand = {
        "night": 20 * 7.5,
        "spike": 2.5 * 150,
        "sustained": 17.5 * 90,
        "decline": 10 * (90 + 7.5) / 2,
        "late-night": 10 * 7.5,
    }
    assert timeline.expected_requests == pytest.approx(sum(by_hand.values()))  # 2662.5
    assert timeline.request_count == 2663  # floor(2662.5 + 0.5)
    for phase, start, end in timeline.phase_spans():
        integral = timeline.requests_until(end) - timeline.requests_until(start)
        assert integral == pytest.approx(by_hand[phase.name])
    assert timeline.rate(21) == 150
    assert timeline.rate(45) == pytest.approx(90 - (90 - 7.5) * 5 / 10)
    assert timeline.phase_at(20.0) == 1
    assert timeline.phase_at(61) == 4
    assert sum(1 for _ in timeline.arrivals()) == 2663


def test_sustained_daytime_levels_and_counts() -> None:
    profile = Profile.sustained_daytime()
    assert [profile.shape(h * H) for h in (0, 9, 16.9, 17, 23)] == [0.05, 1.0, 1.0, 0.05, 0.05]
    timeline = profile.timeline(400, 24)  # one wall second per nominal hour
    assert timeline.expected_requests == pytest.approx(9 * 20 + 8 * 400 + 7 * 20)


def test_ramp_step_and_cycles_shapes() -> None:
    ramp = Profile.ramp()
    assert (ramp.shape(0), ramp.shape(0.75 * H), ramp.shape(H)) == (0.1, 1.0, 1.0)
    step = Profile.step(steps=3)
    assert step.nominal == 3 * 15 * 60
    assert [step.shape(t) for t in (0, 900, 1800, 2700)] == [1 / 3, 2 / 3, 1.0, 1.0]
    cycles = Profile.cycles(n=2)
    assert cycles.nominal == 1200
    levels = [cycles.shape(t) for t in (0, 120, 300, 480, 540)]
    assert levels == [0.1, 1.0, 1.0, 0.1, 0.1]
    assert [cycles.shape(t + 600) for t in (0, 120, 300, 480, 540)] == levels
    assert [phase.name for phase in cycles.phases] == ["cycle-1", "cycle-2"]


def test_shape_is_right_continuous_and_clamped() -> None:
    profile = Profile.sustained_daytime()
    assert profile.shape(9 * H) == 1.0
    assert profile.shape(-5) == profile.shape(0) == 0.05
    assert profile.shape(math.inf) == 0.05
    assert profile.phase_at(9 * H) == 1
    assert profile.phase_at(-1) == 0
    assert profile.phase_at(10 * 24 * H) == 2


def test_stages_like_k6() -> None:
    profile = Profile.stages([("10m", 20), ("1h", 200), (600, 0, "cool-down")], name="shop")
    assert profile.name == "shop"
    assert profile.peak == 200
    assert profile.nominal == 600 + 3600 + 600
    assert [phase.name for phase in profile.phases] == ["stage-1", "stage-2", "cool-down"]
    assert [profile.shape(t) for t in (0, 300, 600, 4200, 4800)] == [0, 0.05, 0.1, 1.0, 0]
    # Uncompressed at its own peak: trapezoids 600*10 + 3600*110 + 600*100.
    native = profile.timeline(None, profile.nominal)
    assert native.peak_rps == 200
    assert native.expected_requests == pytest.approx(462_000)
    # A user's peak_rps rescales the whole shape.
    assert profile.timeline(100, profile.nominal).expected_requests == pytest.approx(231_000)


def test_hourly_table_wraps_around_midnight_and_merges_equal_levels() -> None:
    profile = Profile.hourly({9: 1.0, 12: 1.0, 17: 0.25})
    assert [phase.name for phase in profile.phases] == ["00:00-09:00", "09:00-17:00", "17:00-24:00"]
    assert_covers(profile)
    assert profile.nominal == 24 * H
    assert [profile.shape(h * H) for h in (0, 8.9, 9, 16.9, 17, 24)] == [
        0.25,
        0.25,
        1,
        1,
        0.25,
        0.25,
    ]
    assert profile.peak is None
    assert Profile.hourly({0: 0.5}).phases == (Phase("00:00-24:00", 0, 24 * H),)


def test_a_profile_can_be_built_from_breakpoints_and_phases() -> None:
    def sawtooth() -> Profile:
        points = ((0, 0), (60, 1), (60, 0), (120, 1))
        return Profile("sawtooth", points, (Phase("up", 0, 60), Phase("again", 60, 120)))

    profile = sawtooth()
    assert profile == sawtooth()
    assert hash(profile) == hash(sawtooth())
    assert (profile.shape(30), profile.shape(60), profile.nominal) == (0.5, 0, 120)
    assert profile.timeline(10, 12).expected_requests == pytest.approx(2 * 6 * 5)


def test_constant_arrivals_are_evenly_paced_at_half_steps() -> None:
    timeline = Profile.constant().timeline(10, 2)
    assert list(timeline.arrivals()) == pytest.approx([(k + 0.5) / 10 for k in range(20)])


def test_arrival_count_rounds_half_up_and_zero_stretches_are_skipped() -> None:
    timeline = Profile.hourly({0: 0.0, 6: 1.0, 7: 0.0}).timeline(1.25, 24)
    assert timeline.expected_requests == 1.25
    assert list(timeline.arrivals()) == pytest.approx([6.4])
    assert Profile.constant().timeline(1, 2.5).request_count == 3
    assert Profile.constant().timeline(1, 2.4999).request_count == 2
    assert timeline.time_of_request(0) == 0
    assert timeline.rate(3) == 0


def test_arrivals_do_not_drift_over_a_million_requests() -> None:
    timeline = Profile.constant().timeline(1000, 1000)
    tail = collections.deque(timeline.arrivals(), maxlen=2)
    assert timeline.request_count == 1_000_000
    assert list(tail) == [999.9985, 999.9995]


def test_arrivals_are_deterministic() -> None:
    timeline = Profile.spike_at_8am().timeline(150, 60)
    assert list(timeline.arrivals()) == list(Profile.spike_at_8am().timeline(150, 60).arrivals())


def stages_strategy() -> st.SearchStrategy[Profile]:
    stage = st.tuples(st.floats(1, 7200), st.floats(0, 500) | st.just(0.0))
    return (
        st.lists(stage, min_size=1, max_size=6)
        .filter(lambda stages: any(target > 0 for _, target in stages))
        .map(Profile.stages)
    )


def hourly_strategy() -> st.SearchStrategy[Profile]:
    level = st.floats(0, 1) | st.sampled_from([0.0, 1.0])
    table = st.dictionaries(st.integers(0, 23), level, min_size=1, max_size=24)
    return table.filter(lambda t: any(v > 0 for v in t.values())).map(Profile.hourly)


profiles = st.one_of(
    st.sampled_from(sorted(BUILTINS)).map(get_profile),
    st.integers(1, 12).map(Profile.step),
    st.integers(1, 12).map(Profile.cycles),
    stages_strategy(),
    hourly_strategy(),
)


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    timeline = draw(profiles).timeline(draw(st.floats(0.01, 2000)), draw(st.floats(0.5, 900)))
    assume(timeline.expected_requests <= 30_000)
    return timeline


@settings(deadline=None, max_examples=150)
@given(timelines(), st.floats(0, 1))
# Found by hypothesis: a ramp from rate 0 with a vanishing n underflowed to a division by zero.
@example(Profile.stages([(1.0, 1.0)]).timeline(0.5, 3.0), 5e-324)
def test_time_of_request_inverts_requests_until(timeline: Timeline, fraction: float) -> None:
    n = fraction * timeline.expected_requests
    assert timeline.requests_until(timeline.time_of_request(n)) == pytest.approx(n, abs=1e-6)
    t = fraction * timeline.wall_seconds
    before = max(t - 1e-6 * timeline.wall_seconds, 0)
    slowest = 1e-3 * timeline.peak_rps  # the inverse is ill-conditioned where the rate is ~0
    if min(timeline.rate(t), timeline.rate(before)) > slowest:
        back = timeline.time_of_request(timeline.requests_until(t))
        assert back == pytest.approx(t, rel=1e-6, abs=1e-6 * timeline.wall_seconds)


@settings(deadline=None, max_examples=150)
@given(timelines())
def test_arrivals_pace_the_integral(timeline: Timeline) -> None:
    sent = list(timeline.arrivals())
    assert len(sent) == timeline.request_count == math.floor(timeline.expected_requests + 0.5)
    assert all(a <= b for a, b in itertools.pairwise(sent))
    assert all(0 <= t <= timeline.wall_seconds for t in sent)
    for phase, start, end in timeline.phase_spans():
        last = phase is timeline.profile.phases[-1]
        achieved = (bisect.bisect_right if last else bisect.bisect_left)(sent, end)
        achieved -= bisect.bisect_left(sent, start)
        integral = timeline.requests_until(end) - timeline.requests_until(start)
        assert abs(achieved - integral) <= 1
        assert timeline.phase_at(start) == timeline.profile.phases.index(phase)


@settings(deadline=None)
@given(profiles)
def test_profiles_are_valid_and_shape_stays_in_range(profile: Profile) -> None:
    assert_covers(profile)
    assert len({phase.name for phase in profile.phases}) == len(profile.phases)
    for t in (0, profile.nominal / 3, profile.nominal / 2, profile.nominal):
        assert 0 <= profile.shape(t) <= 1


def _call(factory: Callable[[], object]) -> str:
    with pytest.raises(ProfileError) as info:
        factory()
    assert isinstance(info.value, SoakError)
    return str(info.value)


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (lambda: Profile.constant().timeline(0, 60), "peak_rps=0 must be greater than 0"),
        (lambda: Profile.constant().timeline(-1, 60), "peak_rps=-1 must be greater than 0"),
        (lambda: Profile.constant().timeline(math.nan, 60), "peak_rps=nan must be a number"),
        (lambda: Profile.constant().timeline(math.inf, 60), "peak_rps=inf must be finite"),
        (lambda: Profile.constant().timeline(None, 60), "peak_rps=None needs a profile"),
        (lambda: Profile.constant().timeline(10, 0), "wall_seconds=0 must be greater than 0"),
        (lambda: Profile.constant().timeline(10, "1m"), "wall_seconds='1m' must be a number"),  # type: ignore[arg-type]
        (lambda: Profile.stages([]), "stages=[] must be a non-empty list"),
        (lambda: Profile.stages("10m"), "stages='10m' must be a non-empty list"),  # type: ignore[arg-type]
        (lambda: Profile.stages([("10x", 5)]), "stages[0] duration='10x' is not a duration"),
        (lambda: Profile.stages([(5, 1), ("-1m", 5)]), "stages[1] duration='-1m'"),
        (lambda: Profile.stages([(-5, 5)]), "stages[0] duration=-5 must be a positive"),
        (lambda: Profile.stages([(5, -2)]), "stages[0] target=-2 must be a finite rate"),
        (lambda: Profile.stages([(5, math.nan)]), "stages[0] target=nan must be a number"),
        (lambda: Profile.stages([(5, 0), (5, 0)]), "all have target 0"),
        (lambda: Profile.stages([(5,)]), "stages[0]=(5,) must be (duration, target)"),  # type: ignore[list-item]
        (lambda: Profile.stages([(5, 1, "")]), "stages[0] name='' must be a non-empty string"),
        (lambda: Profile.stages([(5, 1, "a"), (5, 1, "a")]), "phases[1].name='a' is already used"),
        (lambda: Profile.hourly({}), "table={} must be a non-empty mapping"),
        (lambda: Profile.hourly({24: 0.5}), "table key 24 must be an hour 0..23"),
        (lambda: Profile.hourly({-1: 0.5}), "table key -1 must be an hour 0..23"),
        (lambda: Profile.hourly({3: 1.5}), "table[3]=1.5 must be a level within [0, 1]"),
        (lambda: Profile.hourly({3: math.nan}), "table[3]=nan must be a number"),
        (lambda: Profile.hourly({3: 0.0}), "all at level 0"),
        (lambda: Profile.step(0), "steps=0 must be a whole number of at least 1"),
        (lambda: Profile.cycles(0), "n=0 must be a whole number of at least 1"),
        (lambda: Profile.cycles(2.5), "n=2.5 must be a whole number"),  # type: ignore[arg-type]
        (lambda: get_profile(3), "profile=3 must be a built-in profile name or a Profile"),  # type: ignore[arg-type]
        (lambda: Profile("x", ((0, 1), (-1, 1)), ()), "breakpoints[1] t=-1 must be finite"),
        (lambda: Profile("x", ((1, 1), (2, 1)), ()), "breakpoints[0] t=1 must be finite"),
        (lambda: Profile("x", ((0, 1),), ()), "must list at least two (t, level) points"),
        (lambda: Profile("x", ((0, 1), (5, 1)), ()), "phases=() must be a non-empty"),
        (lambda: Profile("x", ((0, 1), (5, 1)), (Phase("a", 0, 4),)), "phases[-1].end=4"),
        (lambda: Profile("", ((0, 1), (5, 1)), (Phase("a", 0, 5),)), "name='' must be a non-empty"),
        (lambda: Profile("x", ((0, 1), (5, 1)), (Phase("a", 0, 2), Phase("b", 3, 5))), "(t=2)"),
        (lambda: Profile.constant().timeline(1e300, 1e300), "is too many requests to count"),
        (lambda: Profile.constant().shape(math.nan), "t=nan must be a number"),
        (lambda: Profile.constant().timeline(1, 1).time_of_request(2), "n=2 must be a number"),
        (lambda: Profile.constant().timeline(1, 1).rate(math.nan), "wall_t=nan must be a number"),
    ],
)
def test_bad_input_is_a_profile_error_naming_the_argument(
    factory: Callable[[], object], expected: str
) -> None:
    assert expected in _call(factory)


def test_unknown_profile_name_suggests_the_closest_built_in() -> None:
    message = _call(lambda: get_profile("spike-at-9am"))
    assert message == (
        "profile='spike-at-9am' is not a built-in profile (did you mean 'spike-at-8am'?); "
        "choose one of: constant, cycles, ramp, spike-at-8am, step, sustained-daytime or pass a "
        "Profile (Profile.stages([...]) / Profile.hourly({...}))"
    )
    assert "did you mean" not in _call(lambda: get_profile("zzz"))
