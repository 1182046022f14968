"""Kinds of request within an endpoint (leak isolation's variations) and mutated requests."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.traffic import Exchange, RecordedResponse, Traffic, load_traffic
from pytest_soak.traffic.families import FAMILIES, FAMILY_NAMES, body_shape, client_family
from pytest_soak.traffic.mutations import KINDS, applicable, mutate
from pytest_soak.traffic.request_facts import MAX_QUERY_PARAMETERS, OTHERS
from pytest_soak.traffic.variations import candidates, request_kinds, variations

SHOP = Path(__file__).resolve().parents[2] / "examples" / "webshop" / "traffic" / "shop.har"


@pytest.fixture(scope="module")
def shop() -> Traffic:
    return load_traffic(SHOP)


def ex(method: str, target: str, status: int | None = None, **kw: object) -> Exchange:
    response = RecordedResponse(status) if status is not None else None
    return Exchange(0.0, method, target, response=response, **kw)  # type: ignore[arg-type]


def test_every_family_has_a_classifier() -> None:
    assert set(FAMILIES) == set(FAMILY_NAMES)


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0", "browser"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148", "mobile"),
        ("ShopApp/4.2 (Android 14; Pixel 8)", "mobile"),
        ("okhttp/4.12.0", "mobile"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("curl/8.5.0", "cli"),
        ("python-httpx/0.27.0", "cli"),
        ("Go-http-client/1.1", "cli"),
        ("SomethingElse/1", "other"),
        (None, "none"),
    ],
)
def test_client_family(agent: str | None, family: str) -> None:
    assert client_family(agent) == family


@pytest.mark.parametrize(
    ("body", "content_type", "shape"),
    [
        (b"", None, "none"),
        (b'{"qty": 2, "product": "p1"}', "application/json", "json{product,qty}"),
        (b"[1, 2]", None, "json[list]"),
        (b"3", "application/json", "json(scalar)"),
        (b"a=1&b=2&a=3", "application/x-www-form-urlencoded", "form{a,b}"),
        (b"hello", "text/plain", "text"),
        (b"\xff\xfe\x00", "application/octet-stream", "binary"),
        (b"{not json", "application/json", "text"),
    ],
)
def test_body_shape(body: bytes, content_type: str | None, shape: str) -> None:
    headers = (("Content-Type", content_type),) if content_type else ()
    assert body_shape(ex("POST", "/x", body=body, headers=headers)) == shape


def test_the_shops_unknown_carts_are_the_ones_a_replay_cannot_know(shop: Traffic) -> None:
    """The capture starts mid-session: carts made before it are unknown to a replay even where
    the recording answered 204/200. Replaying the file showed exactly these counts of 404s
    (81 deletes, 40 reads, 39 item adds per pass)."""
    expected = {
        "DELETE /cart/delete/{id}": 81,
        "GET /cart/{id}": 40,
        "POST /cart/{id}/items": 39,
    }
    for endpoint, unknown in expected.items():
        found = {(v.family, v.value): v for v in variations(shop.exchanges, endpoint)}
        assert len(found["id", "unknown"].indices) == unknown, endpoint
    deletes = {
        (v.family, v.value): v for v in variations(shop.exchanges, "DELETE /cart/delete/{id}")
    }
    assert len(deletes["status", "4xx"].indices) == 25  # the double-clicked deletes
    assert deletes["status", "4xx"].indices < deletes["id", "unknown"].indices
    assert deletes["id", "unknown"].label == "id unknown (recorded 204 ×56, 404 ×25)"
    # Read-only ids (products) are known when answered 2xx: no id family there.
    assert all(v.family != "id" for v in variations(shop.exchanges, "GET /products/{id}"))


def test_candidates_put_suspect_kinds_first_and_skip_what_selects_everything(
    shop: Traffic,
) -> None:
    found = candidates(shop.exchanges, "DELETE /cart/delete/{id}")
    labels = [c.label for c in found]
    assert labels[:2] == ["id unknown (recorded 204 ×56, 404 ×25)", "recorded status 4xx (404)"]
    assert all(c.suspect for c in found[:2]) and not any(c.suspect for c in found[2:])
    total = sum(1 for e in shop if e.endpoint == "DELETE /cart/delete/{id}")
    assert all(0 < len(c.indices) < total for c in found)
    assert not any(v.family == "method" for c in found for v in c.variations)  # one method


def test_variations_selecting_the_same_requests_are_merged() -> None:
    traffic = [
        ex("POST", "/doc/d0001", 201),
        ex("GET", "/doc/d0001", 200),
        ex("GET", "/doc/d0002", 404),
        ex("GET", "/doc/d0001", 200),
        ex("GET", "/doc/d0003", 404),
    ]
    found = candidates(traffic, "GET /doc/{id}")
    assert [c.label for c in found] == [
        "id unknown (recorded 404) = recorded status 4xx (404)",
        "id known (recorded 200) = recorded status 2xx (200)",
    ]
    assert found[0].indices == frozenset({2, 4})


def test_a_deleted_id_is_unknown_again_and_an_odd_shape_is_malformed() -> None:
    traffic = [
        ex("PUT", "/item/a00001", 201),
        ex("DELETE", "/item/a00001", 204),
        ex("DELETE", "/item/a00001", 404),
        ex("PUT", "/item/a00002", 201),
        ex("DELETE", "/item/a00002", 204),
        ex("DELETE", "/item/12345678-aaaa-bbbb-cccc-1234567890ab", 400),
    ]
    found = {(v.family, v.value): v.indices for v in variations(traffic, "DELETE /item/{id}")}
    assert found["id", "known"] == {1, 4}
    assert found["id", "unknown"] == {2}
    assert found["id", "malformed"] == {5}


def test_without_responses_there_is_no_id_or_status_family() -> None:
    traffic = [ex("GET", f"/item/i{n:05d}", headers=(("User-Agent", "curl/8"),)) for n in range(5)]
    assert variations(traffic, "GET /item/{id}") == []


def query_variations(traffic: list[Exchange], endpoint: str) -> dict[str, frozenset[int]]:
    return {v.value: v.indices for v in variations(traffic, endpoint) if v.family == "query"}


def test_each_query_parameter_is_an_axis_of_presence_and_of_value_kind() -> None:
    traffic = [ex("GET", "/search?q=mug"), ex("GET", "/search?q=12"), ex("GET", "/search")]
    assert query_variations(traffic, "GET /search") == {
        "q=*": {0, 1},
        "q=absent": {2},
        "q=word": {0},
        "q=number": {1},
    }


def test_requests_sharing_a_parameter_are_one_candidate_whatever_their_other_parameters() -> None:
    traffic = [
        ex("GET", "/items?_sort=price&page=1"),
        ex("GET", "/items?page=2&_sort=name"),
        ex("GET", "/items?_sort=price"),
        ex("GET", "/items?page=3"),
        ex("GET", "/items"),
    ]
    found = {c.label: c.indices for c in candidates(traffic, "GET /items")}
    assert found["query _sort=*"] == {0, 1, 2}
    assert found["query page=*"] == {0, 1, 3}
    assert found["query _sort=absent"] == {3, 4}
    assert all(label.startswith("query ") for label in found)  # the only family that varies


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("p=", "empty"),
        ("p", "empty"),
        ("p=42", "number"),
        ("p=-3.5", "number"),
        ("p=true", "bool"),
        ("p=c000123", "id"),
        ("p=0b7e3d4a-6c1f-4e8a-9d2b-5f3a9c8e7d61", "id"),
        ("p=a&p=b", "list"),
        ("p=red,blue", "list"),
        ("p=" + "x" * 65, "long"),
        ("p=red+mug", "word"),
        ("p=,", "word"),
    ],
)
def test_query_value_kinds(query: str, kind: str) -> None:
    traffic = [ex("GET", f"/s?{query}"), ex("GET", "/s")]
    assert request_kinds(traffic)[0] == {"GET /s", "GET /s | query:p=*"}
    traffic.append(ex("GET", "/s?p=other-word" if kind != "word" else "/s?p=7"))
    assert f"GET /s | query:p={kind}" in request_kinds(traffic)[0]


def test_a_parameter_every_request_carries_alike_is_no_variation() -> None:
    traffic = [ex("GET", "/s?lang=en&q=mug"), ex("GET", "/s?lang=de&q=12")]
    assert query_variations(traffic, "GET /s") == {"q=word": {0}, "q=number": {1}}


def test_rare_query_parameters_are_lumped_so_candidates_stay_few() -> None:
    names = [f"p{n:02d}" for n in range(12)]
    traffic = [ex("GET", "/s")]
    for rank, name in enumerate(names):  # p00 on 12 requests, p11 on one
        traffic += [ex("GET", f"/s?{name}=1")] * (len(names) - rank)
    found = query_variations(traffic, "GET /s")
    axes = {value.split("=")[0] for value in found}
    assert axes == {*names[: MAX_QUERY_PARAMETERS - 1], OTHERS}
    others = next(v for v in variations(traffic, "GET /s") if v.value == f"{OTHERS}=*")
    assert len(others.indices) == sum(range(1, len(names) - MAX_QUERY_PARAMETERS + 2))
    assert others.label.startswith(f"query {OTHERS}=* (p05 ×7, p06 ×6, p07 ×5, p08 ×4")
    assert len(candidates(traffic, "GET /s")) <= 2 * MAX_QUERY_PARAMETERS


# --------------------------------------------------------------------------- request kinds


def test_request_kinds_label_each_exchange_with_its_endpoint_and_variations() -> None:
    traffic = [
        ex("POST", "/cart/delete/c000001", 201),
        ex("DELETE", "/cart/delete/c000001", 204),
        ex("DELETE", "/cart/delete/c000002", 404),
        ex("GET", "/books/142.json", 200),
        ex("GET", "/books/143.json", 404),
        ex("GET", "/search?q=mug", 200),
        ex("GET", "/search?q=12", 200),
    ]
    kinds = request_kinds(traffic)
    assert kinds[0] == {"POST /cart/delete/{id}"}  # one of a kind: nothing varies
    assert kinds[1] == {
        "DELETE /cart/delete/{id}",
        "DELETE /cart/delete/{id} | id=known",
        "DELETE /cart/delete/{id} | status=2xx",
    }
    assert "DELETE /cart/delete/{id} | id=unknown" in kinds[2]
    assert "GET /books/{id}.json | status=4xx" in kinds[4]
    assert kinds[5] == {"GET /search", "GET /search | query:q=word"}
    assert kinds[6] == {"GET /search", "GET /search | query:q=number"}


def test_request_kinds_are_the_variations_of_every_endpoint(shop: Traffic) -> None:
    assert_kinds_match_variations(list(shop.exchanges))


TARGETS = st.sampled_from(
    ["/a/c000001", "/a/c000002", "/a/x", "/b?p=1", "/b?p=x&q=", "/b?q=1&q=2", "/b", "//h/b?p"]
)
EXCHANGES = st.builds(
    ex,
    st.sampled_from(["GET", "POST", "DELETE"]),
    TARGETS,
    st.sampled_from([None, 200, 201, 404, 500]),
    headers=st.sampled_from([(), (("User-Agent", "curl/8"),), (("Content-Type", "text/x"),)]),
    body=st.sampled_from([b"", b"{}", b'{"a": 1}']),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(EXCHANGES, max_size=12))
def test_request_kinds_agree_with_variations(traffic: list[Exchange]) -> None:
    assert_kinds_match_variations(traffic)


def assert_kinds_match_variations(traffic: list[Exchange]) -> None:
    kinds = request_kinds(traffic)
    assert len(kinds) == len(traffic)
    expected: list[set[str]] = [{e.endpoint} for e in traffic]
    for endpoint in {e.endpoint for e in traffic}:
        for v in variations(traffic, endpoint):
            separator = ":" if v.family == "query" else "="
            for index in v.indices:
                expected[index].add(f"{endpoint} | {v.family}{separator}{v.value}")
    assert kinds == expected


def test_request_kinds_of_100k_exchanges(shop: Traffic) -> None:
    """A production-sized recording is classified in one pass (its cost is measured by the
    runner's benchmarks, not asserted here)."""
    copies = 100_000 // len(shop) + 1
    traffic = [
        replace(e, target=e.target.replace("/c000", f"/c{n:03d}"))
        for n in range(copies)
        for e in shop.exchanges
    ][:100_000]
    kinds = request_kinds(traffic)
    assert len(kinds) == 100_000
    assert kinds[: len(shop)] == request_kinds(traffic[: len(shop)])


# --------------------------------------------------------------------------- mutations


def test_mutations_apply_where_they_can(shop: Traffic) -> None:
    items = [e for e in shop if e.endpoint == "POST /cart/{id}/items"][:10]
    assert applicable(items) == list(KINDS)
    deletes = [e for e in shop if e.endpoint == "DELETE /cart/delete/{id}"][:10]
    assert applicable(deletes) == ["malformed-id", "unknown-id", "oversized"]
    assert applicable([ex("GET", "/products")]) == []


@pytest.mark.parametrize("kind", KINDS)
def test_mutations_are_seeded_and_change_what_they_say(shop: Traffic, kind: str) -> None:
    items = [e for e in shop if e.endpoint == "POST /cart/{id}/items"][:20]
    first = mutate(items, kind, seed=7)
    assert first == mutate(items, kind, seed=7)  # reproducible
    assert len(first) == len(items)
    for before, after in zip(items, first, strict=True):
        assert after.target.startswith("/")  # always a path on the target
        assert after.method == before.method
        assert after.source.startswith(f"{kind} mutation of ")
        if kind.endswith("-id"):
            assert after.target != before.target and after.body == before.body
        else:
            assert after.target == before.target
            original, changed = json.loads(before.body), json.loads(after.body)
            if kind == "missing-field":
                assert set(changed) < set(original)
            elif kind == "wrong-type":
                assert set(changed) == set(original)
                assert any(type(changed[k]) is not type(original[k]) for k in original)
            else:
                assert max(len(json.dumps(v)) for v in changed.values()) >= 16 * 1024
    assert mutate(items, kind, seed=8) != first or kind == "missing-field"


def test_an_unknown_mutation_kind_is_a_clear_error() -> None:
    from pytest_soak.errors import SoakError

    with pytest.raises(SoakError, match="mutation kind='typo' is not one of: malformed-id"):
        mutate([ex("GET", "/x/1234")], "typo", seed=0)


@pytest.mark.parametrize("segment", ["c000123", "ñ%/x", "a b", "12345678901234567890"])
def test_mutated_targets_are_always_valid_paths(segment: str) -> None:
    from urllib.parse import quote

    exchange = ex("GET", f"/doc/{quote(segment, safe='')}/d00042?x=1")
    for kind in applicable([exchange]):
        for seed in range(3):
            for mutated in mutate([exchange] * 8, kind, seed=seed):
                assert mutated.target.startswith("/") and " " not in mutated.target
                assert "/../" not in mutated.target
