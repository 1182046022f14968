"""Choosing the cycle every load cycle replays, and fresh ids per cycle."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.traffic.cycle import choose_cycle
from pytest_soak.traffic.fresh_ids import fresh_id, freshen
from pytest_soak.traffic.model import Exchange, RecordedResponse


def _shop(n: int, *, rare_every: int = 33) -> list[Exchange]:
    """A long recording: browsing, carts made and deleted, and a rare delete of an unknown
    id (answered 404) every ``rare_every`` requests."""
    out: list[Exchange] = []
    for i in range(n):
        t = i * 0.1
        if i % rare_every == rare_every - 1:
            out.append(
                Exchange(t, "DELETE", f"/cart/delete/c9{i:05d}", response=RecordedResponse(404))
            )
        elif i % 5 == 0:
            out.append(Exchange(t, "POST", f"/cart/c{i:06d}", response=RecordedResponse(201)))
        elif i % 5 == 1:
            out.append(
                Exchange(t, "DELETE", f"/cart/delete/c{i - 1:06d}", response=RecordedResponse(204))
            )
        else:
            out.append(Exchange(t, "GET", f"/product/{i % 997}", response=RecordedResponse(200)))
    return out


def test_a_short_recording_is_repeated_whole() -> None:
    recording = _shop(120)
    choice = choose_cycle(recording, 300)
    assert choice.size == 300
    assert choice.indices == tuple(i % 120 for i in range(300))
    assert choice.passes == 2.5
    assert choice.kinds_covered == choice.kinds_total
    assert "x2.5" in choice.describe()


def test_a_long_recording_gives_a_window_with_every_kind_of_request() -> None:
    recording = _shop(20_000, rare_every=3001)  # the unknown-id delete: 6 of 20,000
    choice = choose_cycle(recording, 300)
    assert choice.size == 300
    assert list(choice.indices) == sorted(choice.indices)  # recorded order
    assert choice.kinds_covered == choice.kinds_total
    assert choice.endpoints_covered == choice.endpoints_total
    statuses = Counter(e.response.status for e in choice.exchanges if e.response)
    assert statuses[404] >= 1  # the rare kind is in every cycle
    # Sessions stay whole in the window: a cart is made before it is deleted.
    start, end = choice.window
    assert end - start >= 300 - choice.exemplars
    assert choice.mix_distance < 0.05
    assert "of 20,000 recorded requests" in choice.describe()


def test_contiguous_cycles_add_no_exemplars() -> None:
    recording = _shop(20_000, rare_every=3001)
    choice = choose_cycle(recording, 300, contiguous=True)
    assert choice.exemplars == 0
    assert choice.indices == tuple(range(*choice.window))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), size=st.integers(1, 600), rare=st.integers(2, 50))
def test_the_cycle_always_has_its_size_and_only_recorded_requests(
    n: int, size: int, rare: int
) -> None:
    recording = _shop(n, rare_every=rare)
    choice = choose_cycle(recording, size)
    assert choice.size == size
    assert all(0 <= i < n for i in choice.indices)
    assert choice.exchanges == tuple(recording[i] for i in choice.indices)
    assert 0.0 <= choice.mix_distance <= 1.0


def test_fresh_ids_keep_their_shape_and_are_consistent_within_a_cycle() -> None:
    assert fresh_id("142", 0) == "142"
    assert fresh_id("142", 2) == "2142"
    assert fresh_id("c000123", 1) == "c1000123"
    uuid = "3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f"
    fresh = fresh_id(uuid, 1)
    assert fresh != uuid and len(fresh) == len(uuid) and fresh.count("-") == 4
    assert fresh_id(uuid, 1) == fresh and fresh_id(uuid, 2) != fresh
    cycle = [
        Exchange(0.0, "POST", "/cart/c000007", body=json.dumps({"cart_id": "c000007"}).encode()),
        Exchange(0.1, "GET", "/books/142.json?owner=c000007&page=2"),
        Exchange(0.2, "DELETE", "/cart/delete/c000007"),
        Exchange(0.3, "GET", "/about"),
    ]
    first = freshen(cycle, 1)
    assert [e.target for e in first] == [
        "/cart/c1000007",
        "/books/1142.json?owner=c1000007&page=2",
        "/cart/delete/c1000007",
        "/about",
    ]
    assert json.loads(first[0].body) == {"cart_id": "c1000007"}
    assert first[3] is cycle[3]  # nothing to change: the same object
    assert freshen(cycle, 0) == tuple(cycle)
    assert [e.target for e in freshen(cycle, 2)] != [e.target for e in first]
