"""The leak rule on synthetic floors: what must be a leak, what must not."""

from __future__ import annotations

import random

import pytest

from pytest_soak.analysis import NOISE_FLOORS, Limits, judge_metric

MiB = 1024 * 1024


def _requests(n: int, step: int = 200) -> list[int]:
    return [step * k for k in range(n)]


def test_steady_growth_is_a_leak_with_its_rate() -> None:
    reqs = _requests(13)
    floors = [50 * MiB + 2000 * r for r in reqs]  # 2000 B per request
    judged = judge_metric("rss", floors, reqs, Limits())
    assert judged.verdict == "leak"
    assert judged.slope == pytest.approx(2000)
    assert judged.grew_every_repetition


def test_noisy_leak_still_found() -> None:
    rng = random.Random(3)
    reqs = _requests(13, step=1000)
    floors = [50 * MiB + 600 * r + rng.gauss(0, 150_000) for r in reqs]
    assert judge_metric("rss", floors, reqs, Limits()).verdict == "leak"


def test_cache_that_plateaus_is_not_a_leak() -> None:
    reqs = _requests(13)
    floors = [50 * MiB + min(r, 800) * 3000 for r in reqs]  # grows, then flat
    judged = judge_metric("rss", floors, reqs, Limits())
    assert judged.verdict != "leak"
    assert judged.verdict in ("suspicious", "inconclusive")


def test_noise_without_trend_is_ok() -> None:
    rng = random.Random(5)
    reqs = _requests(13)
    floors = [50 * MiB + rng.gauss(0, 200_000) for _ in reqs]
    assert judge_metric("rss", floors, reqs, Limits()).verdict == "ok"


def test_growth_under_the_noise_floor_is_not_a_leak() -> None:
    reqs = _requests(13)
    floors = [50 * MiB + 100 * r for r in reqs]  # 240 KB total: below 1 MiB for RSS
    assert judge_metric("rss", floors, reqs, Limits()).verdict != "leak"


def test_one_step_up_is_suspicious_not_leak() -> None:
    reqs = _requests(13)
    floors = [50 * MiB if r < 1200 else 60 * MiB for r in reqs]
    judged = judge_metric("rss", floors, reqs, Limits())
    assert judged.verdict == "suspicious"


def test_budget_per_request_lets_small_growth_pass() -> None:
    reqs = _requests(13)
    floors = [50 * MiB + 2000 * r for r in reqs]
    assert judge_metric("rss", floors, reqs, Limits(max_growth_per_request=4096)).verdict != "leak"
    assert judge_metric("rss", floors, reqs, Limits(max_growth_per_request=1024)).verdict == "leak"


def test_max_growth_replaces_the_noise_floor() -> None:
    reqs = _requests(13)
    floors = [50 * MiB + 2000 * r for r in reqs]  # ~4.6 MiB in total
    assert judge_metric("rss", floors, reqs, Limits(max_growth=10 * MiB)).verdict != "leak"


def test_too_few_floors_are_inconclusive_never_ok() -> None:
    judged = judge_metric("heap", [1.0, 2.0, 3.0], [0, 10, 20], Limits())
    assert judged.verdict == "inconclusive"
    assert "too few memory floors" in judged.reason


# Each case below breaks exactly one condition of the rule while the others hold, so that
# removing or weakening any single condition turns one of these into a (false) "leak".
XS = _requests(13)


def _conditions(judged: object) -> dict[str, bool]:
    from pytest_soak.analysis import FLATTENING, P_LIMIT, MetricJudgement

    assert isinstance(judged, MetricJudgement)
    return {
        "trend": judged.p_value < P_LIMIT,
        "size": judged.growth > judged.threshold,
        "steady": judged.slope > 0 and judged.second_half_slope >= FLATTENING * judged.slope,
        "every": judged.grew_every_repetition,
    }


def test_only_the_trend_is_missing() -> None:
    # Noisy floors that do rise, but not significantly (Mann–Kendall p = 0.015 >= 0.01).
    floors = [
        102.4,
        99.9,
        103.0,
        103.9,
        101.5,
        105.4,
        105.2,
        103.5,
        102.8,
        105.1,
        104.1,
        104.3,
        106.4,
    ]
    judged = judge_metric("rss", [f * MiB for f in floors], XS, Limits(max_growth=MiB))
    assert _conditions(judged) == {"trend": False, "size": True, "steady": True, "every": True}
    assert judged.verdict == "suspicious"


def test_only_the_size_is_missing() -> None:
    judged = judge_metric("rss", [50 * MiB + 300 * r for r in XS], XS, Limits())  # 0.7 MiB
    assert _conditions(judged) == {"trend": True, "size": False, "steady": True, "every": True}
    assert judged.verdict == "inconclusive"


def test_only_the_noise_of_the_floors_hides_the_growth() -> None:
    # Growth of 0.4 MiB a segment under ±0.48 MiB zigzag: above the fixed 1 MiB floor, below
    # 6 × the MAD of the deltas.
    step = 0.4 * MiB
    floors = [100 * MiB + k * step + (1.2 * step if k % 2 == 0 else -1.2 * step) for k in range(13)]
    judged = judge_metric("rss", floors, XS, Limits())
    assert judged.growth > NOISE_FLOORS["rss"]
    assert _conditions(judged) == {"trend": True, "size": False, "steady": True, "every": True}
    assert judged.verdict == "inconclusive"


def test_only_the_steadiness_is_missing() -> None:
    floors = [100 * MiB + (5000 * r if r <= 1200 else 5000 * 1200 + 400 * (r - 1200)) for r in XS]
    judged = judge_metric("rss", floors, XS, Limits())
    assert _conditions(judged) == {"trend": True, "size": True, "steady": False, "every": True}
    assert judged.verdict == "suspicious"


def test_only_growth_in_every_repetition_is_missing() -> None:
    floors = [100 * MiB + 2000 * r for r in XS]
    floors[6] = floors[3] - 0.1 * MiB  # the third repetition's lowest floor is below the second's
    judged = judge_metric("rss", floors, XS, Limits())
    assert _conditions(judged) == {"trend": True, "size": True, "steady": True, "every": False}
    assert judged.verdict == "suspicious"


def test_the_newest_floor_counts_in_the_repetitions() -> None:
    floors = [100 * MiB + 2000 * r for r in XS]
    floors[-1] = floors[6] - 0.1 * MiB  # only the 13th floor falls back below the 3rd group
    assert not judge_metric("rss", floors, XS, Limits()).grew_every_repetition
