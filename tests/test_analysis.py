"""The leak rule on synthetic floors: what must be a leak, what must not."""

from __future__ import annotations

import random

import pytest

from pytest_soak.analysis import Limits, judge_metric

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


def test_too_few_floors_are_not_judged() -> None:
    judged = judge_metric("heap", [1.0, 2.0, 3.0], [0, 10, 20], Limits())
    assert judged.verdict == "ok"
    assert "too few" in judged.reason
