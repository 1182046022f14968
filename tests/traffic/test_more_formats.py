"""Speedscale RRPair JSONL and proxymock markdown (their inbound pairs), nginx/Apache combined
and Envoy access logs: what they load to, detection by content, what they are missing, their
errors; the real samples; hypothesis properties (only ``TrafficFormatError``, round trips); and a
soak test replaying an access log as a user writes it."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import shutil
import string
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import FORMATS, access_log, load_traffic, parse_traffic, proxymock, rrpair
from pytest_soak.traffic.fields import is_header_value
from pytest_soak.traffic.model import Exchange, RecordedResponse, Skipped, Traffic
from tests.helpers import mutations, node_paths

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"
RRPAIR = DATA / "rrpair-shop.jsonl"
PROXYMOCK = DATA / "proxymock"
NGINX = DATA / "nginx-combined.log"
APACHE = DATA / "apache-common-and-combined.log"
ENVOY = DATA / "envoy-default.log"  # written by Envoy 1.40 (default format) in front of a toy app
OUTBOUND = "outbound call (direction OUT): use it as a mock with soak_mocks"
MISSING_COMBINED = (
    "request bodies",
    "request headers other than User-Agent and Referer",
    "response headers and bodies",
)
MISSING_ENVOY = (
    "request bodies",
    "request headers other than User-Agent",
    "response headers and bodies",
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"


def rows(traffic: Traffic) -> list[tuple[str, float, str, str]]:
    return [(e.source, round(e.offset, 6), e.method, e.target) for e in traffic]


# -- Speedscale RRPair JSONL ---------------------------------------------------------------------


def test_rrpair_inbound_pairs_become_exchanges_and_outbound_ones_are_skipped() -> None:
    traffic = load_traffic(RRPAIR)
    assert (traffic.format, traffic.missing) == ("rrpair", ())
    assert rows(traffic) == [
        ("line 1", 0.0, "GET", "/products?page=2"),  # uri (path and query), not url (path)
        ("line 3", 0.361686, "POST", "/cart/add"),
        ("line 7", 1.129569, "DELETE", "/cart/delete/c000123"),
    ]
    get, post, delete = traffic
    assert get.host == "shop.local:8080"
    assert get.headers == (
        ("Accept", "application/json"),
        ("User-Agent", "shop-ios/4.2 (build 311)"),
    )
    assert get.response == RecordedResponse(
        200, (("Content-Type", "application/json"),), b'{"items": [41, 42]}'
    )
    assert post.body == b'{"variant_id": "11", "quantity": 1}'
    assert post.header("cookie") == "session=s3cr3t"
    assert [value for name, value in post.headers if name == "X-Tag"] == ["a", "b"]
    assert delete.response is not None and (delete.response.status, delete.response.body) == (
        204,
        b"",
    )
    assert traffic.skipped == (
        Skipped("line 2", OUTBOUND),
        Skipped("line 4", OUTBOUND),
        Skipped("line 5", OUTBOUND),  # a postgres query made by the service: outbound too
        Skipped("line 6", "not an HTTP pair (l7protocol 'tcp'): only HTTP is replayed"),
    )


def _pair(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "msgType": "rrpair",
        "ts": "2026-06-12T08:00:00.5Z",
        "direction": "IN",
        "l7protocol": "http",
        "http": {
            "req": {"method": "GET", "uri": "/a?b=1", "host": "shop", "headers": {"A": ["1"]}},
            "res": {"statusCode": 200, "headers": {}, "bodyBase64": "b2s="},
        },
    }
    item.update(changes)
    return item


def _lines(*items: object) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def test_rrpair_direction_from_the_proxy_location_tag_and_http2_pseudo_headers() -> None:
    http = {"req": {"method": "GET", "uri": "/x", "headers": {":authority": ["shop:443"]}}}
    older = _pair(direction=None, tags={"proxyLocation": "in"}, http=http)
    del older["direction"]
    (exchange,) = parse_traffic(_lines(older), "x.jsonl")
    assert (exchange.host, exchange.headers, exchange.response) == ("shop:443", (), None)


def test_rrpair_decoded_bodies_lose_their_content_encoding_header() -> None:
    http = {
        "req": {
            "method": "POST",
            "uri": "/upload",
            "headers": {"Content-Encoding": ["gzip"], "Content-Type": ["text/plain"]},
            "bodyBase64": base64.b64encode(b"plain text").decode(),
        }
    }
    decoded, raw = _pair(http=http, tags={"decoded": "true"}), _pair(http=http)
    first, second = parse_traffic(_lines(decoded, raw), "x.jsonl")
    assert first.headers == (("Content-Type", "text/plain"),) and first.body == b"plain text"
    assert second.header("content-encoding") == "gzip"


def test_rrpair_with_only_outbound_pairs_says_to_use_it_as_mocks() -> None:
    out = _pair(direction="OUT")
    with pytest.raises(TrafficFormatError) as caught:
        parse_traffic(_lines(out, out, _pair(direction="IN", http=None)), "calls.jsonl")
    assert str(caught.value) == (
        "calls.jsonl: holds no inbound traffic to replay, only 2 outbound calls (direction OUT): "
        "the service's own requests to its dependencies (1 more skipped, e.g. line 3: not an "
        "HTTP pair (l7protocol 'http'): only HTTP is replayed). Use it as mocks with "
        "soak_mocks(...), and record the service's inbound requests (direction IN) to replay them"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"msgType": "rrpair", "direction": "IN",', "not valid JSON (Expecting"),
        (b'{"msgType": "rrpair"} \xff', "is not UTF-8 (byte 22: invalid start byte)"),
        (_lines(_pair(direction="SIDEWAYS")), "'direction' 'SIDEWAYS' is neither 'IN' (a request"),
        (_lines(_pair(http={"res": {}})), "'http.req' is missing (or null), not an object"),
        (_lines(_pair(http=[])), "'http' is a list, not an object"),
        (_lines(_pair(http={"req": {"method": "G T", "uri": "/"}})), "'http.req.method' 'G T'"),
        (_lines(_pair(http={"req": {"method": "GET"}})), "'http.req.url' is missing (or null)"),
        (
            _lines(_pair(http={"req": {"method": "GET", "uri": "ftp://h/x"}})),
            "'http.req.uri' 'ftp://h/x' is neither a path ('/cart?id=1') nor an absolute http(s)",
        ),
        (
            _lines(_pair(http={"req": {"method": "GET", "uri": "/", "headers": {"A B": ["1"]}}})),
            "'http.req.headers' has 'A B', which is not a header name",
        ),
        (
            _lines(_pair(http={"req": {"method": "GET", "uri": "/", "headers": {"A": [1]}}})),
            "'http.req.headers' 'A' has value 1, not a one-line string",
        ),
        (
            _lines(_pair(http={"req": {"method": "GET", "uri": "/", "bodyBase64": "!!"}})),
            "'http.req.bodyBase64' is not valid base64",
        ),
        (
            _lines(
                _pair(http={"req": {"method": "GET", "uri": "/"}, "res": {"statusCode": "200"}})
            ),
            "'http.res.statusCode' '200' is not an HTTP status (100-999)",
        ),
        (_lines(_pair(ts="yesterday")), "'ts' 'yesterday' is not an RFC 3339 date-time"),
        (_lines(_pair(ts=None)), "'ts' is missing (or null), not a string"),
        (_lines(_pair()) + b"[1]", "line 2: is a list, not an RRPair object"),
    ],
)
def test_rrpair_errors_name_the_line_and_the_field(line: bytes, expected: str) -> None:
    with pytest.raises(TrafficFormatError) as caught:
        rrpair.parse(line, "traffic/pairs.jsonl")
    message = str(caught.value)
    assert message.startswith("traffic/pairs.jsonl: line ")
    assert expected in message
    assert message.endswith("; fix or delete this line")


def test_rrpair_is_told_from_native_jsonl_by_content(tmp_path: Path) -> None:
    assert rrpair.sniff(RRPAIR.read_bytes())
    assert not rrpair.sniff((DATA / "shop.jsonl").read_bytes())
    native = b'{"method": "GET", "url": "/", "body": "{\\"msgType\\": 1}"}\n'
    assert parse_traffic(native).format == "jsonl"
    renamed = tmp_path / "pairs.txt"
    renamed.write_bytes(gzip.compress(RRPAIR.read_bytes()))
    assert load_traffic(renamed).format == "rrpair"


# -- proxymock markdown ---------------------------------------------------------------------------


def test_a_proxymock_folder_loads_its_inbound_pairs() -> None:
    traffic = load_traffic(PROXYMOCK)
    assert (traffic.format, traffic.path, traffic.missing) == ("proxymock", str(PROXYMOCK), ())
    assert rows(traffic) == [
        ("localhost/2026-06-12_08-00-00.120431Z.md", 0.0, "GET", "/products?page=2"),
        ("localhost/2026-06-12_08-00-00.482117Z.md", 0.361686, "POST", "/cart/add"),
    ]
    get, post = traffic
    assert get.host == "localhost:8080"
    assert get.response == RecordedResponse(
        200,
        (("Content-Type", "application/json"), ("Date", "Fri, 12 Jun 2026 08:00:00 GMT")),
        b'{"items": [41, 42]}',
    )
    assert get.body == b""
    assert post.header("accept-language") == "en-GB, en;q=0.8"  # '\,' is a comma
    assert post.body == b'{\n  "variant_id": "11",\n  "quantity": 1\n}'
    assert post.response is not None and post.response.status == 201
    assert traffic.skipped == (  # proxymock.log is not a .md: not read
        Skipped("README.md", "not a proxymock pair (it does not start with ### REQUEST ###)"),
        Skipped("payments.internal/2026-06-12_08-00-00.499310Z.md", OUTBOUND),
    )


def test_one_proxymock_file_is_detected_by_content(tmp_path: Path) -> None:
    renamed = tmp_path / "pair.txt"
    renamed.write_bytes((PROXYMOCK / "localhost/2026-06-12_08-00-00.482117Z.md").read_bytes())
    (exchange,) = traffic = load_traffic(renamed)
    assert traffic.format == "proxymock"
    assert (exchange.source, exchange.method, exchange.target) == ("pair.txt", "POST", "/cart/add")


def test_proxymock_outbound_only_and_folders_without_pairs(tmp_path: Path) -> None:
    shutil.copytree(PROXYMOCK / "payments.internal", tmp_path / "calls")
    with pytest.raises(
        TrafficFormatError, match="calls: holds no inbound traffic to replay, only 1"
    ):
        load_traffic(tmp_path / "calls")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(tmp_path / "empty")
    assert str(caught.value).endswith(
        "empty: is a directory, not a traffic file; pass one file inside it (a folder is read "
        "only as a recording of proxymock)"
    )
    assert load_traffic(PROXYMOCK, format="proxymock").format == "proxymock"
    with pytest.raises(TrafficFormatError, match="is a directory, not a traffic file"):
        load_traffic(PROXYMOCK, format="har")


GOOD_PAIR = (PROXYMOCK / "localhost/2026-06-12_08-00-00.120431Z.md").read_text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("### REQUEST ###", "### REQUESTS ###", "is not a proxymock pair: it needs a ### REQUEST"),
        ("GET http://localhost:8080/products?page=2 HTTP/1.1", "GET /x",
         "### REQUEST ###: first line 'GET /x' is not 'METHOD URL HTTP/x'"),
        ("GET http://localhost:8080/products", "GET ftp://h/products",
         "### REQUEST ###: URL 'ftp://h/products?page=2' is neither a path nor an http(s) URL"),
        ("Accept: application/json", "Accept application/json",
         "### REQUEST ###: header line 'Accept application/json' is not 'Name: value'"),
        ("HTTP/1.1 200 OK", "200 OK", "### RESPONSE ###: first line '200 OK' is not 'HTTP/x"),
        ("direction: IN", "direction: in", "### METADATA ###: direction 'in' is neither IN"),
        ("direction: IN\n", "", "### METADATA ###: direction None is neither IN"),
        ("ts: 2026-06-12T08:00:00.120431Z", "ts: soon", "ts 'soon' is not an RFC 3339"),
        ("shop-ios/4.2", "shop-ios/4.2 \udcff", "is not UTF-8 (byte"),
    ],
)  # fmt: skip
def test_proxymock_errors_name_the_file_and_the_section(old: str, new: str, expected: str) -> None:
    assert old in GOOD_PAIR
    data = GOOD_PAIR.replace(old, new).encode("utf-8", "surrogateescape")
    with pytest.raises(TrafficFormatError) as caught:
        proxymock.parse(data, "rec/localhost/pair.md")
    message = str(caught.value)
    assert message.startswith("rec/localhost/pair.md: ") and expected in message
    assert message.endswith("; fix or delete this file")


def test_a_proxymock_pair_without_response_is_still_replayed() -> None:
    cut = (
        GOOD_PAIR[: GOOD_PAIR.index("### RESPONSE ###")]
        + GOOD_PAIR[GOOD_PAIR.index("### METADATA ###") :]
    )
    (exchange,), skipped = proxymock.parse(cut.encode(), "pair.md")
    assert exchange.response is None and skipped == []


# -- access logs ----------------------------------------------------------------------------------


def test_nginx_combined_log() -> None:
    traffic = load_traffic(NGINX)
    assert (traffic.format, traffic.missing) == ("combined-log", MISSING_COMBINED)
    assert rows(traffic) == [
        ("line 1", 0.0, "GET", "/products?page=2"),
        ("line 2", 0.0, "POST", "/cart/add"),
        ("line 3", 1.0, "DELETE", "/cart/delete/c000123"),
        ("line 4", 2.0, "GET", "/search?q=café"),  # nginx wrote the UTF-8 bytes as \xC3\xA9
        ("line 8", 5.0, "GET", "/products/42"),  # 499: the client gave up; the request happened
        ("line 9", 6.0, "HEAD", "/health"),
        ("line 10", 8.0, "GET", "/products?page=3"),  # one more field ("$http_x_forwarded_for")
    ]
    first, post = traffic[0], traffic[1]
    assert first.headers == (
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
        ("Referer", "https://shop.example/"),
    )
    assert (post.body, post.host, post.response) == (b"", None, RecordedResponse(201))
    assert traffic[2].headers == (("User-Agent", "shop-ios/4.2 (build 311)"),)  # no "-" Referer
    assert traffic[-1].header("user-agent") == 'Bot "quoted"/1.0'  # \x22
    assert traffic.skipped == (
        Skipped(
            "line 5",
            r"request '\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03' is not HTTP (a TLS "
            "handshake or other bytes sent to an HTTP port)",
        ),
        Skipped("line 6", "no request line: the client sent none (or closed the connection first)"),
        Skipped(
            "line 7",
            "'CONNECT www.example.com:443 HTTP/1.1': CONNECT opens a proxy tunnel; it is not a "
            "request to replay",
        ),
    )


def test_apache_common_and_combined_lines() -> None:
    traffic = load_traffic(APACHE)
    assert rows(traffic) == [
        ("line 1", 0.0, "GET", "/apache_pb.gif"),  # common log format: no referer, no agent
        ("line 2", 1.0, "GET", "/index.html"),
        ("line 3", 2.0, "GET", '/search?q="x"'),  # Apache escapes quotes as \"
    ]
    assert traffic[0].headers == ()
    assert traffic[2].headers == (("User-Agent", 'Bot "quoted" \\ slash'),)
    assert traffic.skipped == (
        Skipped("line 4", "request target '*' is neither a path nor an http(s) URL"),
    )


def test_envoy_default_format_as_envoy_writes_it() -> None:
    traffic = load_traffic(ENVOY)
    assert (traffic.format, traffic.missing) == ("envoy-log", MISSING_ENVOY)
    assert rows(traffic) == [
        ("line 1", 0.0, "GET", "/products?page=2"),
        ("line 2", 0.212, "POST", "/cart/add"),
        ("line 3", 0.374, "DELETE", "/cart/delete/c000123"),
        ("line 4", 0.685, "GET", "/search?q=caf%C3%A9&sort=price"),
        ("line 5", 0.694, "GET", "/missing/item"),
        ("line 9", 0.977, "GET", "/products/42?ref=ad"),  # sent in absolute form to Envoy
        ("line 11", 1.177, "GET", "/slow"),
        ("line 12", 1.191, "HEAD", "/products?page=3"),
    ]
    assert {e.host for e in traffic} == {"shop.local"}  # :authority
    assert traffic[0].headers == (("User-Agent", IPHONE),)
    assert traffic[3].header("user-agent") == 'Bot "quoted" \\ backslash'  # Envoy does not escape
    assert traffic[4].response == RecordedResponse(404)
    assert traffic[6].headers == ()  # "-": no User-Agent
    reason = "no request recorded ('- - HTTP/1.1'): the server could not parse one"
    assert traffic.skipped == (
        Skipped("line 6", reason),  # bytes that were not HTTP
        Skipped("line 7", reason),
        Skipped("line 8", reason),  # a TLS handshake
        Skipped(
            "line 10",
            "'CONNECT - HTTP/1.1': CONNECT opens a proxy tunnel; it is not a request to replay",
        ),
    )


def test_envoy_lines_in_longer_formats_and_without_a_response() -> None:
    istio = (
        b'[2026-06-12T08:00:00.000Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 '
        b'24 23 "-" "Mozilla/5.0" "d3f2" "reviews:9080" "10.244.0.11:9080" '
        b"outbound|9080||reviews.default.svc.cluster.local 10.244.0.12:33230 10.96.0.1:9080 "
        b"10.244.0.12:49254 - default\n"
        b'[2026-06-12T08:00:01.500Z] "POST /orders HTTP/2" 0 DC 120 0 3 - "-" "ios" "e5" '
        b'"shop" "-"\n'
    )
    istio_line, gone = parse_traffic(istio, "istio.txt")
    assert (istio_line.host, istio_line.headers) == (
        "reviews:9080",
        (("User-Agent", "Mozilla/5.0"),),
    )
    assert (gone.offset, gone.method, gone.response) == (1.5, "POST", None)  # status 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1\nnot a log line\n',
         "x.log: line 2: 'not a log line' is not a combined (or common) log line"),
        (b'1.2.3.4 - - [10/Oct/2000:25:55:36 -0700] "GET / HTTP/1.1" 200 1\n',
         "x.log: line 1: time [10/Oct/2000:25:55:36 -0700] is not a log time like"),
        (b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /\xe9 HTTP/1.1" 200 1\n',
         "x.log: line 1: is not UTF-8 (byte 47: invalid continuation byte)"),
        (b'[2026-06-12T08:00:00.000Z] "GET / HTTP/1.1" 200 - 0 0 1 1 "-" "-" "-" "-" "-"\n[x]\n',
         "x.log: line 2: '[x]' is not an Envoy access log line in the default format"),
        (b'[2026-13-12T08:00:00.000Z] "GET / HTTP/1.1" 200 - 0 0 1 1 "-" "-" "-" "-" "-"\n',
         "x.log: line 1: start time [2026-13-12T08:00:00.000Z] is not an ISO 8601 time"),
        (b"garbage\n", "x.log: line 1: 'garbage' is not a combined (or common) log line"),
    ],
)  # fmt: skip
def test_access_log_errors_name_the_line(data: bytes, expected: str) -> None:
    with pytest.raises(TrafficFormatError) as caught:
        parse_traffic(data, "x.log")
    assert str(caught.value).startswith(expected)
    assert str(caught.value).endswith("fix or delete this line")


def test_access_logs_are_detected_by_content(tmp_path: Path) -> None:
    for source, expected in [
        (NGINX, "combined-log"),
        (APACHE, "combined-log"),
        (ENVOY, "envoy-log"),
    ]:
        renamed = tmp_path / "access.txt"
        renamed.write_bytes(source.read_bytes())
        assert load_traffic(renamed).format == expected


FIXTURES = {
    "har": DATA / "shop.har",
    "jsonl": DATA / "shop.jsonl",
    "goreplay": DATA / "shop.gor",
    "rrpair": RRPAIR,
    "proxymock": PROXYMOCK / "localhost/2026-06-12_08-00-00.120431Z.md",
    "combined-log": NGINX,
    "envoy-log": ENVOY,
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_each_format_sniffs_only_its_own_files(name: str) -> None:
    head = FIXTURES[name].read_bytes()[:65536]
    assert [other for other, fmt in FORMATS.items() if fmt.sniff(head)] == [name]


def test_missing_facts_follow_the_traffic_through_filters_and_slices() -> None:
    traffic = load_traffic(NGINX)
    assert traffic.filter(methods="GET").missing == MISSING_COMBINED
    assert traffic[1:3].missing == MISSING_COMBINED
    assert load_traffic(DATA / "shop.har").missing == ()


# -- the real samples -----------------------------------------------------------------------------


def test_sample_dynamodb_rrpair_holds_only_outbound_calls(samples: Path) -> None:
    path = samples / "rrpair" / "dynamodb-default.jsonl"
    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(path)
    assert str(caught.value).startswith(
        f"{path}: holds no inbound traffic to replay, only 45 outbound calls (direction OUT)"
    )
    assert "Use it as mocks with soak_mocks(...)" in str(caught.value)


def test_sample_proxymock_recording_replays_its_inbound_pairs(samples: Path) -> None:
    demo = samples / "rrpair" / "proxymock-go-drift-demo"
    traffic = load_traffic(demo)  # two recordings, 80 pairs, a blueprint .json and two logs
    assert (traffic.format, len(traffic)) == ("proxymock", 40)
    assert traffic.endpoints() == {
        "POST /checkout": 10,
        "GET /search": 10,
        "GET /profile/{id}": 10,
        "GET /cat-fact": 10,
    }
    assert [skip.reason for skip in traffic.skipped] == [OUTBOUND] * 40
    assert {e.host for e in traffic} == {"localhost:8080"}
    assert {e.source.split("/")[1] for e in traffic} == {"localhost"}
    assert traffic.span == pytest.approx(7.302136, abs=1e-3)
    checkout = traffic[0]
    assert (
        checkout.source
        == "recorded-2026-06-12_18-12-07.394946Z/localhost/2026-06-12_18-12-15.100561Z.md"
    )
    assert json.loads(checkout.body)["items"] == ["widget", "gear"]
    assert checkout.header("x-request-id") == "req-81cd5c34"
    assert (
        checkout.response is not None and json.loads(checkout.response.body)["status"] == "queued"
    )
    search = next(e for e in traffic if e.path == "/search")
    assert search.query.startswith("q=widget&session=sess-")
    first = load_traffic(demo / "recorded-2026-06-12_18-12-07.394946Z")
    assert len(first) == 20
    with pytest.raises(TrafficFormatError, match="holds no inbound traffic to replay, only 15"):
        load_traffic(demo / "recorded-2026-06-12_18-12-07.394946Z" / "httpbin.org")


# -- properties ------------------------------------------------------------------------------------

Parse = Callable[[bytes, str], tuple[list[Exchange], list[Skipped]]]
PARSERS: dict[str, tuple[Parse, bytes]] = {
    "rrpair": (rrpair.parse, RRPAIR.read_bytes()),
    "proxymock": (proxymock.parse, GOOD_PAIR.encode()),
    "combined-log": (access_log.parse_combined, NGINX.read_bytes() + APACHE.read_bytes()),
    "envoy-log": (access_log.parse_envoy, ENVOY.read_bytes()),
}
SNIPPETS = [
    b"\n", b"\r\n", b'"', b"\\", b"\\x", b"\\xZZ", b"{", b"}", b"]", b"[", b"null", b"-", b" ",
    b"###", b"### REQUEST ###\n", b"```\n", b"direction: IN\n", b"direction: OUT\n",
    b'"direction":"IN"', b'"direction":"OUT"', b'"statusCode":0', b'"bodyBase64":"=="',
    b"CONNECT", b"HTTP/1.1", b"\xc3\xa9", b"\xff", b"2026-02-30T25:00:00Z", b"31/Feb/2026",
    b"+9999", b'"-" 400 0',
]  # fmt: skip


def inputs(name: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and the format's fixture mutated or cut."""
    return st.binary(max_size=400) | mutations(PARSERS[name][1], SNIPPETS)


def only_format_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(TrafficFormatError):
        PARSERS[name][0](data, "fuzz")
    with contextlib.suppress(TrafficFormatError):
        parse_traffic(data, "fuzz", format=name)


fuzz = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
long_fuzz = settings(
    max_examples=25_000, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@fuzz
@given(st.data(), st.sampled_from(sorted(PARSERS)))
def test_any_input_only_raises_format_errors(data: st.DataObject, name: str) -> None:
    only_format_errors(name, data.draw(inputs(name)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_any_input_only_raises_format_errors_long(name: str) -> None:
    """25,000 inputs per parser (100,000 for the four): ``pytest -m slow``."""

    tried: list[int] = []

    @long_fuzz
    @given(inputs(name))
    def check(data: bytes) -> None:
        tried.append(len(data))
        only_format_errors(name, data)

    check()
    assert len(tried) >= 25_000


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["IN", "OUT", "http://h/x", "/a", "GET", "2026-01-01T00:00:00Z", "b2s="]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


PAIR_PATHS = node_paths(json.loads(RRPAIR.read_text().splitlines()[2]))[1:]
DELETE = object()


@fuzz
@given(st.sampled_from(PAIR_PATHS), JSON | st.just(DELETE))
def test_rrpair_with_wrong_json_types_only_raises_format_errors(
    path: tuple[str | int, ...], value: object
) -> None:
    tree = json.loads(RRPAIR.read_text().splitlines()[2])
    *parents, last = path
    node = tree
    for step in parents:
        node = node[step]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    with contextlib.suppress(TrafficFormatError):
        rrpair.parse(json.dumps(tree).encode(), "x.jsonl")


TOKEN = st.text(string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-", min_size=1, max_size=8)
METHOD = TOKEN.filter(lambda m: m not in ("-", "CONNECT"))
TARGET = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters='#"'),
    max_size=16,
).map(lambda rest: "/" + rest)
AGENT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16)


def nginx_escape(text: str) -> str:
    """As nginx writes a variable in a log line: ``"``, ``\\`` and bytes outside 0x20-0x7e as
    ``\\xHH``."""
    return "".join(
        chr(b) if 0x20 <= b <= 0x7E and b not in b'"\\' else f"\\x{b:02X}" for b in text.encode()
    )


@settings(max_examples=300, deadline=None)
@given(METHOD, TARGET, AGENT)
def test_combined_lines_round_trip_through_nginx_escaping(
    method: str, target: str, agent: str
) -> None:
    line = (
        f'203.0.113.7 - - [12/Jun/2026:08:00:01 +0000] "{method} {nginx_escape(target)} HTTP/1.1" '
        f'200 5 "-" "{nginx_escape(agent)}"\n'
    )
    (exchange,), skipped = access_log.parse_combined(line.encode(), "x.log")
    assert (exchange.method, exchange.target, skipped) == (method, target, [])
    sent = agent not in ("", "-") and is_header_value(agent)
    assert exchange.headers == ((("User-Agent", agent),) if sent else ())


@settings(max_examples=300, deadline=None)
@given(METHOD, TARGET, AGENT.filter(lambda a: "\n" not in a and "\r" not in a), TOKEN)
def test_envoy_lines_round_trip(method: str, target: str, agent: str, host: str) -> None:
    line = (
        f'[2026-06-12T08:00:00.123Z] "{method} {target} HTTP/1.1" 200 - 0 5 1 1 "-" "{agent}" '
        f'"7c1d" "{host}" "10.0.0.1:80"\n'
    )
    (exchange,), _ = access_log.parse_envoy(line.encode(), "x.log")
    assert (exchange.method, exchange.target) == (method, target)
    assert exchange.host == (host if host != "-" else None)
    sent = agent not in ("", "-") and is_header_value(agent)
    assert exchange.headers == ((("User-Agent", agent),) if sent else ())


# -- as a user meets it -------------------------------------------------------------------------


def test_a_soak_test_replays_an_access_log(soak_project: pytest.Pytester) -> None:
    lines = [
        f"203.0.113.{n % 9} - - [12/Jun/2026:08:{n // 60:02d}:{n % 60:02d} +0000] "
        f'"GET /item/i{n % 40:06d} HTTP/1.1" 200 31 "-" "shop-ios/4.2"'
        for n in range(120)
    ]
    lines.insert(7, '198.51.100.80 - - [12/Jun/2026:08:00:07 +0000] "-" 400 0 "-" "-"')
    soak_project.makefile(".log", access="\n".join(lines) + "\n")
    soak_project.makepyfile(
        test_logs=textwrap.dedent(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="constant", peak_rps=60, duration="4s")
            def test_replays_the_log(soak, replay_traffic):
                traffic = replay_traffic("access.log")
                assert (traffic.format, len(traffic), len(traffic.skipped)) == (
                    "combined-log", 120, 1)
                result = soak.run(healthy_app(), traffic, check=False)
                assert result.run.sent > 0 and result.run.errors == 0
                assert result.traffic["missing"] == [
                    "request bodies",
                    "request headers other than User-Agent and Referer",
                    "response headers and bodies",
                ]
                assert result.traffic["skipped"] == 1
            """
        )
    )
    result = soak_project.runpytest_subprocess("-p", "no:cacheprovider", "--soak-json=soak.json")
    result.assert_outcomes(passed=1)
    (entry,) = json.loads((soak_project.path / "soak.json").read_text())["results"]
    assert entry["traffic"]["missing"][0] == "request bodies"
    assert any(
        note.startswith("the traffic (combined-log) does not record request bodies, request "
                        "headers other than User-Agent and Referer, response headers and bodies")
        for note in entry["notes"]
    )  # fmt: skip
