from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.errors import SoakError
from pytest_soak.traffic.endpoints import EndpointPattern, is_id_like, split_id, template_path
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
        # ids before a file suffix keep the suffix
        ("/books/142.json", "/books/{id}.json"),
        ("/books/books/142.json", "/books/books/{id}.json"),
        ("/db/table/abc123.csv", "/db/table/{id}.csv"),
        ("/exports/c000123.tar.gz", "/exports/{id}.tar.gz"),
        ("/files/0b7e3d4a-6c1f-4e8a-9d2b-5f3a9c8e7d61.pdf", "/files/{id}.pdf"),
        ("/books/{id}.json", "/books/{id}.json"),
        ("/books/authors.json", "/books/authors.json"),
        ("/api/v2.json", "/api/v2.json"),
        ("/db/table/abc.csv", "/db/table/abc.csv"),
        ("/releases/1.2.3", "/releases/1.2.3"),
        ("/releases/142.", "/releases/142."),
        # UUIDs in any case, with or without dashes; hashes; dates; numbers
        ("/orders/0B7E3D4A-6C1F-4E8A-9D2B-5F3A9C8E7D61", "/orders/{id}"),
        ("/orders/0b7e3d4a6c1f4e8a9d2b5f3a9c8e7d61", "/orders/{id}"),
        ("/blobs/d41d8cd98f00b204e9800998ecf8427e", "/blobs/{id}"),  # md5
        ("/blobs/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/blobs/{id}"),  # sha1
        ("/blobs/" + "e3b0c44298fc1c149afbf4c8996fb924" * 2, "/blobs/{id}"),  # sha256
        ("/blobs/DEADBEEFDEADBEEF", "/blobs/{id}"),
        ("/reports/2024-01-31", "/reports/{id}"),
        ("/reports/20240131.csv", "/reports/{id}.csv"),
        ("/events/2024-01-31T10:00:00Z", "/events/{id}"),
        ("/events/2024-01-31T10%3A00%3A00.123%2B0100", "/events/{id}"),
        ("/events/2024-01-31T10:00:00-05:00.json", "/events/{id}.json"),
        ("/page/7", "/page/{id}"),
        ("/api/index.html", "/api/index.html"),
        ("/deadbeef", "/deadbeef"),  # 8 hex letters: a word, not a hash
    ],
)
def test_template_path(path: str, expected: str) -> None:
    assert template_path(path) == expected


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("142.json", ("142", ".json")),
        ("c000123", ("c000123", "")),
        ("abc123.tar.gz", ("abc123", ".tar.gz")),
        ("index.html", None),
        ("authors.json", None),
        ("v2", None),
        ("api", None),
        ("{id}.json", None),
        ("", None),
    ],
)
def test_split_id_finds_the_id_before_a_suffix(
    segment: str, expected: tuple[str, str] | None
) -> None:
    assert split_id(segment) == expected
    assert is_id_like(segment) is (expected is not None and expected[1] == "")


IDS = st.from_regex(
    r"[0-9]{1,12}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-fA-F]{32}"
    r"|[0-9a-f]{40}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[a-z]{1,3}_?[0-9]{2,8}",
    fullmatch=True,
).filter(lambda s: re.fullmatch(r"[vV][0-9]+", s) is None)  # v00 is an API version, not an id
SUFFIXES = st.from_regex(r"(\.[a-z][a-z0-9]{0,4}){0,2}", fullmatch=True)
WORDS = st.text(string.ascii_lowercase + "-_", min_size=1, max_size=15) | st.from_regex(
    r"v[0-9]{1,2}|[a-z]+[0-9]", fullmatch=True
)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=3), IDS, SUFFIXES, st.lists(WORDS, max_size=2))
def test_an_id_becomes_id_and_keeps_its_suffix(
    before: list[str], identifier: str, suffix: str, after: list[str]
) -> None:
    path = "/" + "/".join([*before, identifier + suffix, *after])
    expected = "/" + "/".join([*before, "{id}" + suffix, *after])
    assert template_path(path) == expected
    assert template_path(expected) == expected
    for text in (path, expected, f"GET {expected}"):
        assert EndpointPattern.parse(text).matches("GET", path)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=4), SUFFIXES)
def test_words_and_file_names_without_ids_are_kept(words: list[str], suffix: str) -> None:
    path = "/" + "/".join(words) + suffix
    assert template_path(path) == path


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
        ("GET /books/{id}.json", "GET", "/books/142.json", True),
        ("GET /books/142.json", "GET", "/books/9.json", True),  # an endpoint, as above
        ("/books/{id}.json", "GET", "/books/142.csv", False),
        ("/books/{id}.json", "GET", "/books/142", False),
        ("/books/{id}.json", "GET", "/books/.json", False),
        ("/books/{id}.json", "GET", "/books/142.json/x", False),
        ("/books/{id}.json/**", "GET", "/books/142.json/x", True),
        ("/files/{name}.{ext}", "GET", "/files/a.b", True),
        ("/books/authors.json", "GET", "/books/authors.json", True),
        ("/books/authors.json", "GET", "/books/authorsXjson", False),  # the dot is literal
    ],
)
def test_pattern_matches(pattern: str, method: str, path: str, expected: bool) -> None:
    assert EndpointPattern.parse(pattern).matches(method, path) is expected


def test_pattern_text_round_trips_in_canonical_form() -> None:
    assert str(EndpointPattern.parse(" delete  /cart/delete/c000123 ")) == "DELETE /cart/delete/*"
    assert str(EndpointPattern.parse("/api/**")) == "/api/**"
    assert str(EndpointPattern.parse("/**")) == "/**"
    assert str(EndpointPattern.parse("/")) == "/"
    assert str(EndpointPattern.parse("get /books/142.json")) == "GET /books/{id}.json"


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
