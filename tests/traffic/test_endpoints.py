from __future__ import annotations

import re

import pytest

from pytest_soak.errors import SoakError
from pytest_soak.traffic.endpoints import EndpointPattern, template_path
from pytest_soak.traffic.fields import split_url


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/cart/delete/c000123", "/cart/delete/{id}"),
        ("/users/42/orders", "/users/{id}/orders"),
        ("/orders/0b7e3d4a-6c1f-4e8a-9d2b-5f3a9c8e7d61", "/orders/{id}"),
        ("/blobs/5f3a9c8e7d61aabbccdd", "/blobs/{id}"),
        ("/charges/ch_3MqLiJ2eZvKYlo2C", "/charges/{id}"),
        ("/archive/2024-01-15/", "/archive/{id}/"),
        ("/api/v1/items/7", "/api/v1/items/{id}"),
        ("/api/v2/users/u12/posts", "/api/v2/users/{id}/posts"),
        ("/api/v10/ping", "/api/v10/ping"),
        ("/products/monitoring-stein", "/products/monitoring-stein"),
        ("/static/index.html", "/static/index.html"),
        ("/assets/bundle.c60a6d54.css", "/assets/bundle.c60a6d54.css"),
        ("/oauth2/token", "/oauth2/token"),
        ("/cafe", "/cafe"),
        ("/", "/"),
        ("", ""),
        ("/cart/delete/{id}", "/cart/delete/{id}"),
    ],
)
def test_template_path(path: str, expected: str) -> None:
    assert template_path(path) == expected


@pytest.mark.parametrize(
    ("pattern", "method", "path", "expected"),
    [
        ("/cart/delete/{id}", "DELETE", "/cart/delete/c000123", True),
        ("/cart/delete/c000123", "DELETE", "/cart/delete/c999999", True),  # an endpoint
        ("/cart/delete/*", "GET", "/cart/delete/anything", True),
        ("/cart/delete/{x}", "GET", "/cart/delete", False),
        ("/cart/delete/{x}", "GET", "/cart/delete/a/b", False),
        ("DELETE /cart/delete/{id}", "DELETE", "/cart/delete/1", True),
        ("delete /cart/delete/{id}", "delete", "/cart/delete/1", True),
        ("DELETE /cart/delete/{id}", "GET", "/cart/delete/1", False),
        ("/users/{id}", "GET", "/users/42/", True),  # one trailing slash is ignored
        ("/users/", "GET", "/users", True),
        ("/api/**", "GET", "/api", True),
        ("/api/**", "GET", "/api/v1/users/42", True),
        ("/api/**", "GET", "/apis", False),
        ("/**", "GET", "/", True),
        ("/", "GET", "/", True),
        ("/", "GET", "/x", False),
        ("/products/monitoring-stein", "GET", "/products/monitoring-stein", True),
        ("/products/monitoring-stein", "GET", "/products/datadog-tote", False),
    ],
)
def test_pattern_matches(pattern: str, method: str, path: str, expected: bool) -> None:
    assert EndpointPattern.parse(pattern).matches(method, path) is expected


def test_pattern_text_round_trips_in_canonical_form() -> None:
    assert str(EndpointPattern.parse(" delete  /cart/delete/c000123 ")) == "DELETE /cart/delete/*"
    assert str(EndpointPattern.parse("/api/**")) == "/api/**"
    assert str(EndpointPattern.parse("/**")) == "/**"
    assert str(EndpointPattern.parse("/")) == "/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cart/x", "is not a path"),
        ("GET", "is not a path"),
        ("", "is not a path"),
        ("/a b", "is not a path"),
        ("/products?page=2", "has a query or fragment"),
        ("/a/**/b", "'**' may only be the last segment"),
    ],
)
def test_bad_patterns_say_what_to_write(text: str, expected: str) -> None:
    with pytest.raises(SoakError, match=re.escape(expected)):
        EndpointPattern.parse(text)


def test_split_url() -> None:
    assert split_url("HTTPS://user@h:1?q#f") == ("https", "h:1", "/?q")
    assert split_url("http://h/a/b?c=d") == ("http", "h", "/a/b?c=d")
    assert split_url("data:text/plain,x") == ("data", None, "text/plain,x")
    with pytest.raises(ValueError, match="has no scheme"):
        split_url("/just/a/path")
