"""Leak isolation: the searches (pure, against synthetic oracles), trial sizing and budget, one
real trial, and the repro file."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.analysis import Limits, judge_metric
from pytest_soak.cycles import MIN_REQUESTS_PER_CYCLE
from pytest_soak.engine import run_soak
from pytest_soak.isolation import (
    REDACTED,
    Exhausted,
    Trials,
    TrialSizing,
    find_culprits,
    redact,
    repro_path,
    write_repro,
)
from pytest_soak.isolation.search import Kind, find_kind
from pytest_soak.isolation.trials import (
    MAX_RATE_FACTOR,
    MAX_SCALE,
    measured_cycle,
    visibility_scale,
)
from pytest_soak.settings import resolve
from pytest_soak.traffic import Exchange, RecordedResponse, Traffic, load_traffic
from pytest_soak.traffic.variations import candidates
from tests.apps.services import leaky_app

Oracle = Callable[[frozenset[str]], bool]


def endpoints(n: int) -> list[str]:
    return [f"GET /e{k:02d}/{{id}}" for k in range(n)]


class Counting:
    """An oracle that counts its calls and checks it is never asked the empty set."""

    def __init__(self, leaks: Oracle) -> None:
        self.leaks = leaks
        self.calls: list[frozenset[str]] = []

    def __call__(self, kept: frozenset[str]) -> bool:
        assert kept, "the search replayed no traffic"
        self.calls.append(kept)
        return self.leaks(kept)


@st.composite
def universes(draw: st.DrawFn, min_size: int = 1, max_size: int = 64) -> list[str]:
    size = draw(st.integers(min_value=min_size, max_value=max_size))
    return draw(st.permutations(endpoints(size)))


# --------------------------------------------------------------------------- the endpoint search


@given(universes(), st.data())
@settings(max_examples=200, deadline=None)
def test_one_culprit_is_found_within_log2_e_plus_2_trials(
    items: list[str], data: st.DataObject
) -> None:
    culprit = data.draw(st.sampled_from(items))
    oracle = Counting(lambda kept: culprit in kept)
    search = find_culprits(items, oracle)
    assert search.status == "found"
    assert search.culprits == ((culprit,),)
    assert search.trials == len(oracle.calls)
    e = len(items)
    assert search.trials <= math.ceil(math.log2(e)) + 2 if e > 1 else search.trials == 0
    if e > 1:  # confirmed both ways: it leaked alone, the traffic without it did not
        assert frozenset([culprit]) in oracle.calls
        assert frozenset(items) - {culprit} in oracle.calls
    assert search.cured is (True if e > 1 else None)


@given(universes(min_size=4, max_size=40), st.data())
@settings(max_examples=300, deadline=None)
def test_a_false_leak_of_healthy_traffic_never_names_it(
    items: list[str], data: st.DataObject
) -> None:
    """Noise: one set of healthy endpoints (one alone, or a few) comes back "leak" whenever it
    is replayed. A named culprit needs its traffic alone to leak *and* the traffic without the
    culprits not to (and, among several, to be needed), so the healthy ones are never named."""
    culprit = data.draw(st.sampled_from(items))
    healthy = [e for e in items if e != culprit]
    noisy = frozenset(
        data.draw(st.sets(st.sampled_from(healthy), min_size=1, max_size=len(items) - 2))
    )
    search = find_culprits(items, Counting(lambda kept: culprit in kept or kept == noisy))
    assert search.status == "found"
    assert search.culprits == ((culprit,),)
    assert search.cured is True


@given(universes(min_size=2), st.data())
@settings(max_examples=150, deadline=None)
def test_two_independent_culprits_are_both_reported(items: list[str], data: st.DataObject) -> None:
    a, b = data.draw(st.lists(st.sampled_from(items), min_size=2, max_size=2, unique=True))
    search = find_culprits(items, Counting(lambda kept: a in kept or b in kept))
    assert search.status == "found"
    assert sorted(search.culprits) == sorted([(a,), (b,)])
    assert search.cured is (True if len(items) > 2 else None)


@given(universes(min_size=2, max_size=24), st.data())
@settings(max_examples=150, deadline=None)
def test_an_interaction_is_reported_as_such_never_as_a_culprit(
    items: list[str], data: st.DataObject
) -> None:
    size = data.draw(st.integers(min_value=2, max_value=min(3, len(items))))
    together = frozenset(data.draw(st.permutations(items))[:size])
    search = find_culprits(items, Counting(lambda kept: together <= kept), max_trials=60)
    assert search.status == "interaction"
    assert len(search.culprits) == 1
    assert frozenset(search.culprits[0]) == together  # the smallest set that leaks together
    assert all(len(group) > 1 for group in search.culprits)


@given(universes(min_size=1, max_size=24))
@settings(max_examples=100, deadline=None)
def test_no_subset_leaks_not_even_the_whole_again_is_not_reproduced(items: list[str]) -> None:
    oracle = Counting(lambda kept: False)
    search = find_culprits(items, oracle)
    if len(items) == 1:
        # One endpoint: the measured run is the proof; nothing to split.
        assert search.status == "found" and search.trials == 0
        return
    assert search.status == "not-reproduced"
    assert search.culprits == ()
    assert frozenset(items) in oracle.calls  # it replayed the whole traffic before saying so


def test_a_culprit_whose_removal_did_not_surely_stop_the_leak_is_not_named() -> None:
    """The culprit's traffic leaks alone, but one trial of the traffic without it leaked too
    (a second leak at the edge of what a trial sees): not confirmed, so nothing is named."""
    items = endpoints(8)
    culprit = items[2]
    rest = frozenset(items) - {culprit}
    seen: list[frozenset[str]] = []

    def leaks(kept: frozenset[str]) -> bool:
        seen.append(kept)
        return culprit in kept or (kept == rest and seen.count(rest) == 1)

    search = find_culprits(items, Counting(leaks), max_trials=60)
    assert search.status == "not-confirmed"
    assert search.culprits == ()
    assert culprit in search.suspects
    assert "still leaked" in search.why


def test_an_endpoint_that_leaks_only_when_another_is_removed_is_not_a_culprit() -> None:
    """The shop's shape: reads of a cart leak when the cart was never created. Replayed without
    the create endpoint they leak; with it, only the delete endpoint does."""
    read, create, delete = "GET /cart/{id}", "POST /cart/{id}", "DELETE /cart/{id}"
    others = [f"GET /p{k}" for k in range(5)]

    def leaks(kept: frozenset[str]) -> bool:
        return delete in kept or (read in kept and create not in kept)

    for order in ([read, create, delete, *others], [read, delete, create, *others]):
        search = find_culprits(order, Counting(leaks))
        assert search.culprits == ((delete,),), order
        assert search.cured is True


def test_the_budget_stops_the_search_with_what_it_narrowed() -> None:
    items = endpoints(32)
    oracle = Counting(lambda kept: items[20] in kept)
    search = find_culprits(items, oracle, max_trials=2)
    assert search.status == "incomplete"
    assert search.culprits == ()
    assert len(oracle.calls) == 2
    assert items[20] in search.suspects and len(search.suspects) < len(items)


def test_a_time_limit_raised_by_the_oracle_ends_the_search() -> None:
    def leaks(kept: frozenset[str]) -> bool:
        raise Exhausted("time limit of 1s")

    assert find_culprits(endpoints(8), leaks).status == "incomplete"


# --------------------------------------------------------------------------- kinds of request


def _products(shapes: list[str]) -> list[Exchange]:
    return [
        Exchange(k * 0.1, "GET", f"/shop/products.json?{shapes[k % len(shapes)].format(k=k)}")
        for k in range(60)
    ]


def test_two_query_shapes_sharing_the_leaking_parameter_name_the_parameter() -> None:
    """``_sort`` comes in two shapes (with ``_size``, with ``_next``): the leak is on every
    request that sorts, and the kind named is ``query _sort=*``, not one of the shapes; one
    replay of the traffic without it confirms it."""
    shapes = [
        "_sort=price&_size={k}",
        "_sort=name&_next={k}",
        "_size={k}&_next={k}",
        "_col=a&_col=b",
    ]
    exchanges = _products(shapes)
    leaking = frozenset(i for i, e in enumerate(exchanges) if "_sort=" in e.target)
    kinds = [
        Kind(c.label, c.indices, c.suspect)
        for c in candidates(exchanges, "GET /shop/products.json")
    ]
    confirmations: list[str] = []

    def without(kind: Kind) -> bool:
        confirmations.append(kind.label)
        return not leaking <= kind.requests

    found = find_kind(kinds, lambda kind: bool(kind.requests & leaking), without)
    assert found.label is not None and found.label.startswith("query _sort=*")
    assert confirmations == [found.label]
    assert (found.label, True, False) in found.tried  # confirmed both ways


def test_no_kind_is_named_when_every_request_of_the_endpoint_leaks() -> None:
    exchanges = _products(["_sort=price", "_size={k}", "_next={k}"])
    kinds = [
        Kind(c.label, c.indices, c.suspect)
        for c in candidates(exchanges, "GET /shop/products.json")
    ]
    found = find_kind(kinds, lambda kind: True, lambda kind: True, max_alone=8, max_confirmations=2)
    assert found.label is None
    # Every parameter's requests leaked alone: no single kind overlaps all of them without
    # holding them all, so screening stops early and nothing is worth a replay without it.
    assert all(without is None for _, _, without in found.tried)
    assert len(found.tried) < len(kinds)


def test_a_suspect_kind_that_leaks_alone_is_confirmed_at_once() -> None:
    """The shop: replayed alone, every delete asks for an unknown cart and leaks, so screening
    tells nothing; the suspect kind (unknown ids) is confirmed first."""
    unknown, known = (
        Kind("id unknown", frozenset({1, 2}), suspect=True),
        Kind("id known", frozenset({3, 4})),
    )
    asked: list[str] = []

    def alone(kind: Kind) -> bool:
        asked.append(kind.label)
        return True

    found = find_kind([unknown, known], alone, lambda kind: kind is not unknown)
    assert found.label == "id unknown" and asked == ["id unknown"]


def test_kinds_inside_one_that_did_not_leak_alone_are_not_replayed() -> None:
    a, b, c = (
        Kind("a", frozenset({1, 2, 3})),
        Kind("b", frozenset({1, 2})),
        Kind("c", frozenset({4, 5})),
    )
    asked: list[str] = []

    def alone(kind: Kind) -> bool:
        asked.append(kind.label)
        return bool(kind.requests & {4})

    found = find_kind([a, b, c], alone, lambda kind: False)
    assert asked == ["a", "c"]
    assert found.label == "c"


# --------------------------------------------------------------------------- trials


def _sizing(scale: float = 1.0, **marker: Any) -> TrialSizing:
    base = resolve({"profile": "spike-at-8am", "peak_rps": 150, **marker}, mode="quick")
    cycles = base.warmup_cycles + base.measured_cycles
    cycle = base.profile.timeline(base.peak_rps, base.duration / cycles)
    return TrialSizing(base, cycle.request_count, cycle.wall_seconds, scale)


@pytest.mark.parametrize("kept", [1, 12, 100, 295])
def test_a_trial_replays_per_cycle_what_the_measured_cycle_held_at_the_same_rate(kept: int) -> None:
    sizing = _sizing()
    # The warm-up and half the measured cycles hold at least one measured cycle of requests.
    early = sizing.settings.warmup_cycles + sizing.settings.measured_cycles / 2
    assert sizing.min_per_cycle == math.ceil(sizing.cycle_requests / early)
    assert sizing.min_per_cycle >= MIN_REQUESTS_PER_CYCLE
    per_cycle = sizing.requests_per_cycle(kept)
    assert per_cycle == max(sizing.min_per_cycle, kept)
    trial = sizing.settings_for(per_cycle)
    cycles = trial.warmup_cycles + trial.measured_cycles
    timeline = trial.profile.timeline(trial.peak_rps, trial.duration / cycles)
    assert timeline.request_count == per_cycle  # what run_soak will replay per cycle
    assert trial.profile == sizing.settings.profile
    assert trial.peak_rps == pytest.approx(sizing.settings.peak_rps, rel=0.05)
    assert trial.duration == pytest.approx(
        sizing.settings.duration * per_cycle / sizing.cycle_requests, rel=0.05
    )
    assert trial.max_growth is None and trial.isolate == "off"


def test_a_scaled_trial_raises_the_rate_before_it_lasts_longer() -> None:
    sizing = _sizing(scale=MAX_SCALE)
    whole = sizing.requests_per_cycle(sizing.cycle_requests)
    assert whole == MAX_SCALE * sizing.cycle_requests
    trial = sizing.settings_for(whole)
    assert trial.peak_rps == pytest.approx(MAX_RATE_FACTOR * sizing.settings.peak_rps, rel=0.05)
    assert trial.duration == pytest.approx(
        sizing.settings.duration * MAX_SCALE / MAX_RATE_FACTOR, rel=0.05
    )


def _result(floors: list[float], cycle: int = 300) -> Any:
    judgement = judge_metric("heap", floors, [k * cycle for k in range(len(floors))], Limits())
    return SimpleNamespace(analysis=SimpleNamespace(primary=judgement))


def test_a_leak_near_the_noise_floor_gets_bigger_trials_a_large_one_does_not() -> None:
    base = resolve({"profile": "constant", "peak_rps": 100}, mode="quick")
    large = _result([k * 100_000.0 for k in range(9)])
    assert visibility_scale(large, base) == 1.0
    near = _result([k * 2_500.0 for k in range(9)])  # 20 KiB over 8 cycles: the floor is 16 KiB
    assert 1.0 < visibility_scale(near, base) <= MAX_SCALE
    # Each cycle grew about 100 KiB, give or take 40 KiB: the step a cycle needs is large.
    noisy = _result(
        [sum((100_000.0, 60_000.0, 140_000.0)[j % 3] for j in range(k)) for k in range(9)]
    )
    assert visibility_scale(noisy, base) >= 2.0  # each cycle twice the step (3 x MAD)


def test_the_budget_stops_trials_before_they_start() -> None:
    sizing = _sizing()
    traffic = Traffic(tuple(Exchange(0.0, "GET", f"/item/{k}") for k in range(50)))
    none_left = Trials(None, traffic, traffic, sizing, test_id="t", max_trials=0, time_limit=600.0)
    with pytest.raises(Exhausted, match="0 trials"):
        none_left.run(range(50), "only GET /item/{id}")
    clock = iter([0.0, 0.0, 0.0]).__next__
    no_time = Trials(
        None, traffic, traffic, sizing, test_id="t", max_trials=5, time_limit=1.0, clock=clock
    )
    with pytest.raises(Exhausted, match="time limit of 1s"):
        no_time.run(range(50), "only GET /item/{id}")
    assert no_time.count == 0


def test_a_real_trial_replays_its_part_of_the_cycle_whole_and_reports_its_true_wall_time() -> None:
    """The same machinery: a run finds the leak; a trial of the leaking endpoint's part of the
    measured cycle is a full cycles run that replays exactly that part (repeated to its size),
    and its reported duration is the wall time it took."""
    app = leaky_app(8192)
    traffic = Traffic(
        tuple(Exchange(k * 0.01, "GET", f"/item/i{k % 40:04d}") for k in range(200))
        + tuple(Exchange(2 + k * 0.01, "GET", "/health") for k in range(200))
    )
    base = resolve({"profile": "constant", "peak_rps": 150, "duration": "3s"}, mode="quick")
    result = run_soak(app, traffic, base, check=False)
    assert result.verdict == "leak"
    cycle = measured_cycle(traffic, base)
    assert cycle.size == result.analysis.cycle_requests  # recomputed: the same cycle
    sizing = TrialSizing.from_result(cycle.size, base, result)
    trials = Trials(
        app, cycle.exchanges, traffic, sizing, test_id="t", max_trials=3, time_limit=120
    )
    items = [p for p, e in enumerate(cycle.exchanges) if e.path.startswith("/item/")]
    trial = trials.run(items, "only GET /item/{id}")
    assert trial.exchanges == len(items)
    assert trial.cycle_requests == sizing.requests_per_cycle(len(items))
    assert trial.leaks and trial.verdict == "leak"
    assert trial.requests >= trial.cycle_requests * (base.warmup_cycles + base.measured_cycles)
    assert trial.seconds >= trial.planned_seconds
    assert trials.timing()["replay_seconds"] == round(trial.seconds, 1)


# --------------------------------------------------------------------------- the repro file


def test_repro_path_is_beside_the_test_and_names_module_and_test(tmp_path: Path) -> None:
    assert repro_path(tmp_path, "tests/test_shop.py::test_stable") == (
        tmp_path / "test_shop.test_stable.leak-repro.jsonl"
    )
    assert repro_path(tmp_path, "t.py::TestShop::test_x[a/b]", run=2).name == (
        "t.TestShop.test_x_a_b-2.leak-repro.jsonl"
    )


def _secret_exchange() -> Exchange:
    return Exchange(
        offset=1.5,
        method="POST",
        target="/login?user=ann&access_token=abc123&page=2",
        headers=(
            ("Authorization", "Bearer s3cret"),
            ("Cookie", "sid=42"),
            ("X-Api-Key", "k-1"),
            ("User-Agent", "curl/8.0"),
            ("Content-Type", "application/json"),
        ),
        body=json.dumps({"user": "ann", "password": "hunter2", "nested": {"token": "t"}}).encode(),
        response=RecordedResponse(200, headers=(("Set-Cookie", "sid=43"),), body=b"secret body"),
        source="line 3",
    )


def test_redact_removes_every_secret_and_keeps_the_request_shape() -> None:
    clean = redact(_secret_exchange())
    headers = dict(clean.headers)
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Api-Key"] == REDACTED
    assert headers["User-Agent"] == "curl/8.0"
    assert "abc123" not in clean.target and "access_token=REDACTED" in clean.target
    assert "user=ann" in clean.target and "page=2" in clean.target
    body = json.loads(clean.body)
    assert body == {"user": "ann", "password": REDACTED, "nested": {"token": REDACTED}}
    assert clean.response == RecordedResponse(200)  # status only: no cookies, no body
    assert clean.endpoint == _secret_exchange().endpoint


def test_repro_file_is_native_jsonl_that_load_traffic_reads_back(tmp_path: Path) -> None:
    exchanges = [_secret_exchange(), dataclasses.replace(_secret_exchange(), offset=2.0)]
    path = write_repro(tmp_path / "t.test_x.leak-repro.jsonl", exchanges, header=["a leak"])
    text = path.read_text()
    assert text.startswith("# a leak\n")
    for secret in ("s3cret", "sid=42", "k-1", "abc123", "hunter2", "secret body"):
        assert secret not in text
    loaded = load_traffic(path)
    assert [e.method for e in loaded] == ["POST", "POST"]
    assert [e.offset for e in loaded] == [0.0, 0.5]  # rebased, gaps kept
    assert loaded[0].response is not None and loaded[0].response.status == 200
    assert not list(tmp_path.glob(".*"))  # written atomically: no temp file left
