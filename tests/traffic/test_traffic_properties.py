"""Properties of the parsers: whatever the bytes, the only exception is ``TrafficFormatError``;
native JSONL round-trips; templating is idempotent and patterns match what they were made from."""

from __future__ import annotations

import contextlib
import json
import string
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import goreplay, har, jsonl, parse_traffic
from pytest_soak.traffic.endpoints import EndpointPattern, is_id_like, template_path
from pytest_soak.traffic.model import Exchange, RecordedResponse, Skipped
from tests.helpers import mutations, node_paths

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"
FIXTURES = {name: (DATA / name).read_bytes() for name in ("shop.har", "shop.jsonl", "shop.gor")}
Parse = Callable[[bytes, str], tuple[list[Exchange], list[Skipped]]]
PARSERS: dict[str, Parse] = {
    "shop.har": har.parse,
    "shop.jsonl": jsonl.parse,
    "shop.gor": goreplay.parse,
}

fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = settings(max_examples=150, deadline=None)


def only_format_errors(parse: Callable[[bytes, str], object], data: bytes) -> None:
    with contextlib.suppress(TrafficFormatError):
        parse(data, "fuzz")


SNIPPETS = [
    b"\n",
    b"\r\n",
    b'"',
    b"{",
    b"]",
    b"null",
    b"-1",
    b"\n\xf0\x9f\x90\xb5\xf0\x9f\x99\x88\xf0\x9f\x99\x89\n",
    b"Content-Length: 99\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b'"base64"',
]


@fuzz
@given(st.binary(max_size=300), st.sampled_from(sorted(PARSERS)))
def test_arbitrary_bytes_only_raise_format_errors(data: bytes, name: str) -> None:
    only_format_errors(PARSERS[name], data)
    only_format_errors(parse_traffic, data)


@fuzz
@given(st.data(), st.sampled_from(sorted(PARSERS)))
def test_mutated_and_truncated_files_only_raise_format_errors(
    data: st.DataObject, name: str
) -> None:
    mutated = data.draw(mutations(FIXTURES[name], SNIPPETS))
    only_format_errors(PARSERS[name], mutated)
    only_format_errors(parse_traffic, mutated)


@fuzz
@given(st.sampled_from(sorted(PARSERS)), st.data())
def test_every_prefix_only_raises_format_errors(name: str, data: st.DataObject) -> None:
    original = FIXTURES[name]
    cut = data.draw(st.integers(0, len(original)))
    only_format_errors(PARSERS[name], original[:cut])
    only_format_errors(parse_traffic, original[:cut])


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["http://h/x", "data:,", "2024-01-01T00:00:00Z", "base64", "GET", "/a"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
HAR_TREE = json.loads(FIXTURES["shop.har"])


HAR_PATHS = node_paths(HAR_TREE)[1:]
DELETE = object()


@fuzz
@given(st.sampled_from(HAR_PATHS), JSON | st.just(DELETE))
def test_har_with_wrong_json_types_only_raises_format_errors(
    path: tuple[str | int, ...], value: object
) -> None:
    tree = json.loads(FIXTURES["shop.har"])
    *parents, last = path
    node = tree
    for step in parents:
        node = node[step]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    only_format_errors(har.parse, json.dumps(tree).encode())


LINE_KEYS = ["offset", "method", "url", "headers", "body", "body_b64", "response", "status", "x"]


@fuzz
@given(
    st.lists(
        st.dictionaries(st.sampled_from(LINE_KEYS), JSON, max_size=6)
        | st.fixed_dictionaries(
            {"method": st.just("GET"), "url": st.just("/")},
            optional={"headers": JSON, "response": JSON, "offset": JSON, "body_b64": JSON},
        ),
        min_size=1,
        max_size=4,
    )
)
def test_jsonl_with_wrong_json_types_only_raises_format_errors(
    lines: list[dict[str, object]],
) -> None:
    only_format_errors(jsonl.parse, "\n".join(json.dumps(line) for line in lines).encode())


HTTP_PIECES = [
    b"GET / HTTP/1.1\r\n",
    b"HEAD /x HTTP/1.0\r\n",
    b"CONNECT h:443 HTTP/1.1\r\n",
    b"GET * HTTP/1.1\r\n",
    b"GET http://h/a HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n",
    b"Host: h\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: x\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"hello",
    b"\xff\x00",
]


@fuzz
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "3"]),
            st.sampled_from(["ab", "cd", "ef"]),
            st.integers(0, 2**64),
            st.none() | st.integers(-1, 10**9),
            st.lists(st.sampled_from(HTTP_PIECES), max_size=8).map(b"".join),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_goreplay_with_odd_http_only_raises_format_errors(
    payloads: list[tuple[str, str, int, int | None, bytes]],
) -> None:
    chunks = [
        f"{kind} {pid} {ts}{'' if latency is None else f' {latency}'}\n".encode() + http
        for kind, pid, ts, latency, http in payloads
    ]
    only_format_errors(goreplay.parse, goreplay.SEPARATOR.join(chunks) + goreplay.SEPARATOR)


TOKEN = st.text(string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-", min_size=1, max_size=8)
VALUE = st.text(st.characters(blacklist_categories=("Cc", "Cs")) | st.just("\t"), max_size=12)
HEADERS = st.lists(st.tuples(TOKEN, VALUE), max_size=4).map(tuple)
TARGET = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="#"),
    max_size=16,
).map(lambda rest: "/" + rest)
HOST = st.none() | st.from_regex(r"[a-z0-9][a-z0-9.-]{0,10}(:[0-9]{1,5})?", fullmatch=True)
EXCHANGES = st.builds(
    Exchange,
    offset=st.floats(allow_nan=False, allow_infinity=False),
    method=TOKEN.map(str.upper),
    target=TARGET,
    headers=HEADERS,
    body=st.binary(max_size=20) | st.text(max_size=10).map(str.encode),
    response=st.none()
    | st.builds(RecordedResponse, st.integers(100, 999), HEADERS, st.binary(max_size=10)),
    host=HOST,
)


@shapes
@given(st.lists(EXCHANGES, min_size=1, max_size=5))
def test_jsonl_round_trip(exchanges: list[Exchange]) -> None:
    parsed, skipped = jsonl.parse(jsonl.dumps(exchanges).encode(), "x.jsonl")
    assert skipped == []
    assert [replace(e, source="") for e in parsed] == [replace(e, source="") for e in exchanges]


SEGMENT = st.text(string.ascii_letters + string.digits + "-_.%{}", max_size=10) | st.from_regex(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|v[0-9]{1,2}|[a-z]*[0-9]{2,}",
    fullmatch=True,
)
PATH = st.lists(SEGMENT, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))


@shapes
@given(st.text(max_size=40) | PATH)
def test_template_path_is_idempotent(path: str) -> None:
    templated = template_path(path)
    assert template_path(templated) == templated
    assert not any(is_id_like(segment) for segment in templated.split("/"))


@shapes
@given(PATH.filter(lambda path: "**" not in path.split("/")), st.sampled_from(["GET", "DELETE"]))
def test_a_path_and_its_template_match_the_path(path: str, method: str) -> None:
    for text in (path, template_path(path), f"{method} {template_path(path)}"):
        assert EndpointPattern.parse(text).matches(method, path)
