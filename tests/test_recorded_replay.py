"""The ``recorded`` replay mode: the recording's own gaps, divided by ``speed``, capped."""

from __future__ import annotations

import itertools
import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.errors import ProfileError, SoakError
from pytest_soak.profiles import RecordedTimeline
from pytest_soak.settings import resolve


def test_gaps_are_divided_by_speed_and_capped_and_passes_repeat() -> None:
    timeline = RecordedTimeline([0.0, 0.5, 1.0, 100.0, 100.2], speed=2, max_gap=1, wall_seconds=5)
    one_pass = [0.0, 0.25, 0.5, 1.5, 1.6]  # the 99 s night became 1 s (the cap), the rest /2
    mean_gap = 1.6 / 4
    assert timeline.pass_seconds == pytest.approx(1.6 + mean_gap)
    arrivals = list(timeline.arrivals())
    expected = [k * 2.0 + t for k in range(3) for t in one_pass if k * 2.0 + t <= 5]
    assert arrivals == pytest.approx(expected)
    assert timeline.request_count == len(expected) == 13
    assert timeline.requests_until(5) == 13
    assert timeline.phase_spans()[0][0].name == "recorded"


def test_a_recording_longer_than_the_run_is_cut() -> None:
    timeline = RecordedTimeline([float(i) for i in range(100)], speed=1, max_gap=5, wall_seconds=9)
    assert list(timeline.arrivals()) == [float(i) for i in range(10)]


def test_a_recording_at_one_instant_is_a_burst_per_second() -> None:
    timeline = RecordedTimeline([3.0, 3.0, 3.0], speed=1, max_gap=5, wall_seconds=2.5)
    assert list(timeline.arrivals()) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speed": 0}, "speed=0 must be greater than 0"),
        ({"max_gap": -1}, "max_gap=-1 must be greater than 0"),
        ({"offsets": [1.0, 0.5]}, "must not decrease"),
        ({"offsets": []}, "no requests"),
    ],
)
def test_bad_recorded_timelines_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"speed": 1.0, "max_gap": 1.0, "wall_seconds": 10.0}
    offsets = kwargs.pop("offsets", [0.0, 1.0])
    args.update(kwargs)
    with pytest.raises(ProfileError, match=message):
        RecordedTimeline(offsets, **args)  # type: ignore[arg-type]


@settings(deadline=None)
@given(
    gaps=st.lists(st.just(0.0) | st.floats(0.05, 1e4), min_size=0, max_size=40),
    speed=st.floats(0.1, 10),
    max_gap=st.floats(0.01, 10),
    wall=st.floats(0.01, 10),
)
def test_arrivals_agree_with_the_count_and_never_wait_longer_than_max_gap(
    gaps: list[float], speed: float, max_gap: float, wall: float
) -> None:
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    timeline = RecordedTimeline(offsets, speed=speed, max_gap=max_gap, wall_seconds=wall)
    arrivals = list(timeline.arrivals())
    assert len(arrivals) == timeline.request_count
    assert all(0 <= t <= wall for t in arrivals)
    assert all(b >= a for a, b in itertools.pairwise(arrivals))
    within_pass = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap <= max(max_gap, timeline.pass_seconds) + 1e-9 for gap in within_pass)


def test_settings_for_the_recorded_mode() -> None:
    settings = resolve({"replay": "recorded", "speed": 4, "max_gap": "2s"}, mode="quick")
    assert (settings.replay, settings.speed, settings.max_gap) == ("recorded", 4.0, 2.0)
    assert resolve({"peak_rps": 5}, mode="quick").replay == "profile"
    with pytest.raises(SoakError, match="replay='recordd' is not a replay mode"):
        resolve({"replay": "recordd"}, mode="quick")
    with pytest.raises(SoakError, match="speed=0 must be greater than 0"):
        resolve({"replay": "recorded", "speed": 0}, mode="quick")
    with pytest.raises(SoakError, match="max_gap='soon' is not a duration"):
        resolve({"replay": "recorded", "max_gap": "soon"}, mode="quick")


def test_a_soak_test_replays_a_recording_at_its_own_pace(pytester: pytest.Pytester) -> None:
    """40 requests 50 ms apart, a 100 s silence, 40 more: at speed 2 with max_gap 0.5 s."""
    lines = []
    for n in range(80):
        offset = n * 0.05 + (100.0 if n >= 40 else 0.0)
        lines.append(json.dumps({"offset": offset, "method": "GET", "url": f"/item/{n}"}))
    pytester.makefile(".jsonl", recorded="\n".join(lines) + "\n")
    one_pass = [0.025 * n + (0.5 - 0.025 if n >= 40 else 0.0) for n in range(80)]
    period = one_pass[-1] + one_pass[-1] / 79
    in_run = sum(1 for k in range(10) for t in one_pass if k * period + t <= 8.0)
    expected = 9 * (in_run // 9)  # 9 identical cycles, each a window of the recording
    pytester.makepyfile(
        test_recorded_user=textwrap.dedent(
            f"""
            import pytest

            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({{"type": "http.response.start", "status": 200, "headers": []}})
                await send({{"type": "http.response.body", "body": b"ok"}})

            @pytest.mark.soak(replay="recorded", speed=2, max_gap="0.5s", baseline=False)
            def test_recorded(soak, replay_traffic):
                result = soak.run(app, replay_traffic("recorded.jsonl"), check=False)
                assert result.run.profile == "recorded x2"
                assert result.settings["replay"] == "recorded"
                assert result.run.planned_requests == {expected}
                assert result.run.sent == {expected}, result.explain()
                assert result.run.unsent == 0
                assert result.analysis.phases[0].name == "recorded"
                cycle = result.traffic["cycle"]
                assert cycle["size"] * 9 == {expected} and cycle["exemplars"] == 0
            """
        )
    )
    result = pytester.runpytest("--soak-duration=8s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
