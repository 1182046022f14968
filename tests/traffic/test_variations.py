"""Kinds of request within an endpoint (leak isolation's variations) and mutated requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_soak.traffic import Exchange, RecordedResponse, Traffic, load_traffic
from pytest_soak.traffic.mutations import KINDS, applicable, mutate
from pytest_soak.traffic.variations import (
    FAMILIES,
    FAMILY_NAMES,
    body_shape,
    candidates,
    client_family,
    variations,
)

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


def test_query_shape_family() -> None:
    traffic = [ex("GET", "/search?q=mug"), ex("GET", "/search?q=12"), ex("GET", "/search")]
    found = {v.value: v.indices for v in variations(traffic, "GET /search") if v.family == "query"}
    assert found == {"q=word": {0}, "q=number": {1}, "none": {2}}


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
