from __future__ import annotations

from pathlib import Path

import pytest

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import goreplay, load_traffic
from pytest_soak.traffic.model import RecordedResponse, Traffic

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"
SEP = goreplay.SEPARATOR


def gor(*payloads: bytes) -> bytes:
    return SEP.join(payloads) + SEP


@pytest.fixture(scope="module", params=["shop.gor", "shop.gor.gz"])
def shop(request: pytest.FixtureRequest) -> Traffic:
    return load_traffic(DATA / request.param)


def test_requests_sorted_by_timestamp_with_their_original_responses(shop: Traffic) -> None:
    assert shop.format == "goreplay"
    assert [(e.source, e.offset, e.method, e.target) for e in shop] == [
        ("payload 7", 0.0, "DELETE", "/cart/delete/c000123"),
        ("payload 1", 1.0, "GET", "/products?page=2"),
        ("payload 3", 1.5, "POST", "/cart/add"),
        ("payload 5", 2.5, "POST", "/upload"),
    ]
    get = shop[1]
    assert get.host == "shop.local"
    assert get.headers == (
        ("Host", "shop.local"),
        ("User-Agent", "fixture/1.0"),
        ("Accept", "text/html"),
    )
    assert get.response == RecordedResponse(
        200,
        (
            ("Content-Type", "text/plain"),
            ("Content-Length", "11"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ),
        b"hello world",
    )


def test_chunked_bodies_are_decoded_and_truncated_ones_kept(shop: Traffic) -> None:
    chunked = shop[2]
    assert chunked.body == b'{"a": 1}'
    assert chunked.response is not None and chunked.response.body == b"made"
    truncated = shop[3]
    assert truncated.body == b"only twenty bytes!!!" and truncated.header("content-length") == "100"
    assert truncated.response is None


def test_replayed_responses_are_listed_as_skipped(shop: Traffic) -> None:
    assert [(s.source, s.reason) for s in shop.skipped] == [
        ("payload 4", "replayed response (type 3) is not used")
    ]


def test_a_broken_header_names_payload_and_line() -> None:
    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(DATA / "broken-header.gor")  # detected by its suffix: it starts fine
    assert str(caught.value).startswith(
        f"{DATA / 'broken-header.gor'}: payload 3 (line 18): header '1 zz' is not "
        "'<type> <id> <timestamp-ns> [latency-ns]'"
    )


def test_invalid_http_is_an_error_naming_the_payload() -> None:
    data = gor(b"1 ab 10\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", b"1 cd 20\nNOT HTTP\r\n\r\n")
    with pytest.raises(TrafficFormatError, match=r"x.gor: payload 2 \(line 7\): not a valid"):
        goreplay.parse(data, "x.gor")
    missing_host = gor(b"1 ab 10\nGET / HTTP/1.1\r\n\r\n")
    with pytest.raises(TrafficFormatError, match="Missing mandatory Host"):
        goreplay.parse(missing_host, "x.gor")


def test_cut_heads_orphans_and_second_responses_are_skipped() -> None:
    data = gor(
        b"1 ab 1000000000\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        b"1 cd 2000000000\nGET /b HTTP/1.1\r\nHost: h\r\nAcc",
        b"2 ab 1000000001 1\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"2 ab 1000000002 2\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        b"2 ef 1000000003 3\nHTTP/1.1 200 OK\r\n\r\n",
    )
    exchanges, skipped = goreplay.parse(data, "x.gor")
    assert [(e.target, e.response and e.response.status) for e in exchanges] == [("/a", 200)]
    assert [s.source for s in skipped] == ["payload 2", "payload 4", "payload 5"]
    assert "no complete HTTP request head" in skipped[0].reason
    assert "another response" in skipped[1].reason and "no request" in skipped[2].reason


def test_head_responses_have_no_body_and_read_until_close_ones_do() -> None:
    data = gor(
        b"1 ab 1\nHEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
        b"2 ab 2\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"1 cd 3\nGET /b HTTP/1.0\r\n\r\n",
        b"2 cd 4\nHTTP/1.0 200 OK\r\n\r\nuntil close",
    )
    exchanges, _ = goreplay.parse(data, "x.gor")
    assert [e.response.body if e.response else None for e in exchanges] == [b"", b"until close"]
    assert exchanges[1].host is None


def test_responses_are_matched_in_file_order_whatever_comes_first() -> None:
    # Plain responses are read in the first pass, before their request is known: the first one
    # in the file still wins (even before its request), and one to a HEAD request is read again
    # by h11, which frames it by the method.
    data = gor(
        b"2 ab 3 1\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"1 ab 1\nPOST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        b"2 ab 4 1\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        b"1 cd 2\nHEAD /h HTTP/1.1\r\nHost: h\r\n\r\n",
        b"2 cd 5 1\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    )
    exchanges, skipped = goreplay.parse(data, "x.gor")
    assert (exchanges, skipped) == goreplay.parse_checked(data, "x.gor")
    assert [(e.target, e.response) for e in exchanges] == [
        ("/a", RecordedResponse(201, (("Content-Length", "2"),), b"ok")),
        ("/h", RecordedResponse(200, (("Content-Length", "5"),), b"")),
    ]
    assert [s.source for s in skipped] == ["payload 3"]
    assert "another response" in skipped[0].reason


def test_absolute_form_targets_give_the_host_and_others_are_skipped() -> None:
    data = gor(
        b"1 ab 1\nGET http://shop.local:8080/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n",
        b"1 cd 2\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    exchanges, skipped = goreplay.parse(data, "x.gor")
    assert [(e.host, e.target) for e in exchanges] == [("shop.local:8080", "/x?y=1")]
    assert "'*' is neither a path nor an http(s) URL" in skipped[0].reason


def test_bare_lf_and_a_missing_final_newline_are_fine() -> None:
    data = (
        b"1 ab 5 -1\nGET /a HTTP/1.1\nHost: h\n\n" + SEP + b"1 cd 6\nGET /b HTTP/1.1\nHost: h\n\n"
    )
    exchanges, _ = goreplay.parse(data + SEP.rstrip(b"\n"), "x.gor")
    assert [e.target for e in exchanges] == ["/a", "/b"]


def test_sniff_wants_a_payload_header_first() -> None:
    assert goreplay.sniff(b"1 b33c9c1a 1568139746437296000\nGET / HTTP/1.1\r\n")
    assert goreplay.sniff(b"2 ab 1 -1\r\nHTTP/1.1 200 OK\r\n")
    assert not goreplay.sniff(b"4 ab 1\n")
    assert not goreplay.sniff(b"1 zz 1\n")
    assert not goreplay.sniff(b'{"method": "GET"}')
