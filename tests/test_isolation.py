"""Leak isolation: the search (pure, against synthetic oracles) and the repro file."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.isolation import (
    MIN_PROBE_SECONDS,
    REDACTED,
    Exhausted,
    find_culprits,
    first_cure,
    probe_settings,
    redact,
    repro_path,
    write_repro,
)
from pytest_soak.runner import MIN_REQUESTS_PER_SEGMENT
from pytest_soak.settings import resolve
from pytest_soak.traffic import Exchange, RecordedResponse, load_traffic

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


@given(universes(), st.data())
@settings(max_examples=200, deadline=None)
def test_one_culprit_is_found_within_2_log2_e_plus_2_replays(
    items: list[str], data: st.DataObject
) -> None:
    culprit = data.draw(st.sampled_from(items))
    oracle = Counting(lambda kept: culprit in kept)
    search = find_culprits(items, oracle)
    assert search.status == "found"
    assert search.culprits == ((culprit,),)
    assert search.replays == len(oracle.calls)
    e = len(items)
    assert search.replays <= 2 * math.log2(e) + 2
    assert search.replays <= math.ceil(math.log2(e)) + 2  # what the algorithm promises
    assert search.cured is (True if e > 1 else None)  # the traffic without it was replayed


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
    search = find_culprits(items, Counting(lambda kept: together <= kept), max_replays=60)
    assert search.status == "interaction"
    assert len(search.culprits) == 1
    assert frozenset(search.culprits[0]) == together  # the smallest set that leaks together
    assert all(len(group) > 1 for group in search.culprits)


@given(universes(min_size=1, max_size=24))
@settings(max_examples=100, deadline=None)
def test_no_subset_leaks_not_even_the_whole_compressed_is_not_reproduced(
    items: list[str],
) -> None:
    oracle = Counting(lambda kept: False)
    search = find_culprits(items, oracle)
    if len(items) == 1:
        # One endpoint: the measured run is the proof; nothing to split.
        assert search.status == "found" and search.replays == 0
        return
    assert search.status == "not-reproduced"
    assert search.culprits == ()
    assert frozenset(items) in oracle.calls  # it replayed the whole traffic before saying so


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
    search = find_culprits(items, oracle, max_replays=2)
    assert search.status == "incomplete"
    assert len(oracle.calls) == 2
    assert items[20] in search.suspects and len(search.suspects) < len(items)


def test_a_time_limit_raised_by_the_oracle_ends_the_search() -> None:
    def leaks(kept: frozenset[str]) -> bool:
        raise Exhausted("time limit of 1s")

    assert find_culprits(endpoints(8), leaks).status == "incomplete"


def test_first_cure_stops_at_the_first_variation_whose_removal_cures() -> None:
    tried: list[str] = []

    def cures(label: str) -> bool:
        tried.append(label)
        return label == "id unknown"

    assert first_cure(["status 5xx", "id unknown", "client bot"], cures, max_replays=3) == (
        "id unknown",
        2,
    )
    assert tried == ["status 5xx", "id unknown"]
    assert first_cure(["a", "b", "c"], lambda _: False, max_replays=2) == (None, 2)


# --------------------------------------------------------------------------- replays


@pytest.mark.parametrize("subset", [10, 200, 900, 5000])
def test_a_replay_plans_a_verdict_and_one_warm_up_pass(subset: int) -> None:
    base = resolve({"profile": "spike-at-8am", "peak_rps": 150}, mode="quick")
    probe = probe_settings(base, subset, measured_requests=2663)
    planned = probe.profile.timeline(probe.peak_rps, probe.duration).request_count
    assert planned >= MIN_REQUESTS_PER_SEGMENT * (base.measured_segments + 1)
    assert planned >= min(2.5 * subset, 2663) * 0.98
    assert probe.duration >= MIN_PROBE_SECONDS
    assert probe.duration <= base.duration  # never longer than the run that found the leak
    assert probe.max_growth is None and probe.profile == base.profile


def test_a_short_test_gets_replays_of_the_shortest_length_with_enough_requests() -> None:
    base = resolve({"profile": "constant", "peak_rps": 20, "duration": "3s"}, mode="quick")
    probe = probe_settings(base, 50, measured_requests=60)
    assert probe.duration == MIN_PROBE_SECONDS or probe.duration > MIN_PROBE_SECONDS
    planned = probe.profile.timeline(probe.peak_rps, probe.duration).request_count
    assert planned >= MIN_REQUESTS_PER_SEGMENT * (base.measured_segments + 1)


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


def test_replays_of_a_recorded_pace_test_use_a_constant_rate() -> None:
    base = resolve({"replay": "recorded", "speed": 4.0, "duration": "20s"}, mode="quick")
    probe = probe_settings(base, 100, measured_requests=800)
    assert probe.replay == "profile" and probe.profile.name == "constant"
    planned = probe.profile.timeline(probe.peak_rps, probe.duration).request_count
    assert planned >= 260
