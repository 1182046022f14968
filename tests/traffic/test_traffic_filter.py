from __future__ import annotations

from pathlib import Path

import pytest

from pytest_soak.traffic import Exchange, Traffic, load_traffic

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    exchanges = (
        Exchange(0.0, "GET", "/products?page=2", (("X-Tenant", "a"),)),
        Exchange(0.1, "DELETE", "/cart/delete/c000123", (("x-tenant", "b"),)),
        Exchange(0.2, "DELETE", "/cart/delete/c000999"),
        Exchange(0.3, "GET", "/users/42/orders", (("X-Tenant", "a"),)),
        Exchange(0.4, "POST", "/api/v1/items"),
    )
    return Traffic(exchanges, path="t.jsonl", format="jsonl")


def targets(traffic: Traffic) -> list[str]:
    return [exchange.target for exchange in traffic]


def test_exclude_a_template_or_a_literal_path_of_it(traffic: Traffic) -> None:
    by_template = traffic.filter(exclude="/cart/delete/{id}")
    by_literal = traffic.filter(exclude="/cart/delete/c000123")
    assert targets(by_template) == targets(by_literal)
    assert targets(by_template) == ["/products?page=2", "/users/42/orders", "/api/v1/items"]


def test_include_with_methods_wildcards_and_rest(traffic: Traffic) -> None:
    assert targets(traffic.filter(include="DELETE /cart/**")) == [
        "/cart/delete/c000123",
        "/cart/delete/c000999",
    ]
    assert targets(traffic.filter(include=["/products", "/users/*/orders"])) == [
        "/products?page=2",
        "/users/42/orders",
    ]
    assert targets(traffic.filter(include="/api/**", exclude="POST /api/v1/items")) == []


def test_methods_and_header_values(traffic: Traffic) -> None:
    assert len(traffic.filter(methods="get")) == 2
    assert len(traffic.filter(methods=["GET", "POST"])) == 3
    assert targets(traffic.filter(headers={"x-tenant": "a"})) == [
        "/products?page=2",
        "/users/42/orders",
    ]


def test_filtered_traffic_keeps_its_origin(traffic: Traffic) -> None:
    kept = traffic.filter(methods="DELETE")
    assert (kept.path, kept.format) == ("t.jsonl", "jsonl")
    assert kept.endpoints() == {"DELETE /cart/delete/{id}": 2}


def test_endpoints_of_a_loaded_file() -> None:
    shop = load_traffic(DATA / "shop.gor")
    assert shop.endpoints() == {
        "DELETE /cart/delete/{id}": 1,
        "GET /products": 1,
        "POST /cart/add": 1,
        "POST /upload": 1,
    }
