from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import jsonl, load_traffic, parse_traffic
from pytest_soak.traffic.model import Exchange, RecordedResponse

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"


def test_loads_the_hand_written_fixture() -> None:
    traffic = load_traffic(DATA / "shop.jsonl")
    assert traffic.format == "jsonl"
    assert [(e.source, e.offset, e.method, e.target) for e in traffic] == [
        ("line 3", 0.0, "GET", "/products?page=2"),
        ("line 6", 0.125, "DELETE", "/cart/delete/c000123"),
        ("line 4", 0.25, "POST", "/cart/add"),  # "post" is upper-cased
        ("line 7", 1.5, "PUT", "/upload"),
    ]
    post = traffic[2]
    assert post.host == "shop.local"
    assert post.headers == (
        ("Content-Type", "application/json"),
        ("X-Tag", "a"),
        ("X-Tag", "b"),
    )
    assert post.body == b'{"variant_id": "11"}'
    assert post.response == RecordedResponse(201, (), b'{"ok": 1}')
    put = traffic[3]
    assert put.body == b"\x00\x01\xfe\xff"
    assert put.response == RecordedResponse(200, (("Content-Type", "text/plain"),), b"ok")
    assert traffic[0].host is None and traffic[0].response is None


def test_a_bad_line_is_named_with_the_json_error() -> None:
    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(DATA / "bad-line.jsonl")
    assert str(caught.value).startswith(
        f"{DATA / 'bad-line.jsonl'}: line 4: not valid JSON (Expecting ',' delimiter at column 35)"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"url": "/"}', "'method' is missing"),
        ('{"method": "GET"}', "'url' is missing"),
        ('{"method": 1, "url": "/"}', "'method' is a number, not a string"),
        ('{"method": "G ET", "url": "/"}', "'method' 'G ET' is not an HTTP method"),
        ('{"method": "GET", "url": "shop.local/x"}', "is neither a path ('/cart?id=1') nor"),
        ('{"method": "GET", "url": "/a b"}', "'url' '/a b' is neither a path"),
        ('{"method": "GET", "url": "ftp://h/x"}', "nor an absolute http(s) URL"),
        ('{"method": "GET", "url": "/", "bdy": "x"}', "unknown key 'bdy'; did you mean 'body'?"),
        ('{"method": "GET", "url": "/", "offset": "1"}', "'offset' '1' is not a number"),
        ('{"method": "GET", "url": "/", "offset": NaN}', "'offset' nan is not a finite number"),
        ('{"method": "GET", "url": "/", "headers": "x"}', "'headers' is a string; write an"),
        ('{"method": "GET", "url": "/", "headers": [["a"]]}', "'headers' is a list; write an"),
        ('{"method": "GET", "url": "/", "headers": {"a": 1}}', "'headers' 'a' has value 1"),
        ('{"method": "GET", "url": "/", "headers": {"a:": "1"}}', "has 'a:', which is not a"),
        ('{"method": "GET", "url": "/", "headers": {"a": "x\\ny"}}', "not a one-line string"),
        ('{"method": "GET", "url": "/", "body": "a", "body_b64": "YQ=="}', "are both given"),
        ('{"method": "GET", "url": "/", "body_b64": "*"}', "'body_b64' is not valid base64"),
        ('{"method": "GET", "url": "/", "body": "\\ud800"}', "'body' has a lone surrogate"),
        ('{"method": "GET", "url": "/", "response": 200}', "'response' is a number, not an"),
        ('{"method": "GET", "url": "/", "response": {}}', "'response.status' is missing"),
        ('{"method": "GET", "url": "/", "response": {"status": true}}', "'response.status' True"),
        ('{"method": "GET", "url": "/", "response": {"status": 7}}', "is not an HTTP status"),
        ('{"method": "GET", "url": "/", "response": {"status": 200, "x": 1}}', "'response.x'"),
        ("[1, 2]", "is a list, not a JSON object"),
        ("[" * 50_000, "JSON is nested too deeply"),
    ],
)
def test_errors_name_the_line_and_the_key(line: str, expected: str) -> None:
    data = b'{"method": "GET", "url": "/"}\n' + line.encode()
    with pytest.raises(TrafficFormatError) as caught:
        jsonl.parse(data, "x.jsonl")
    assert str(caught.value).startswith("x.jsonl: line 2: ")
    assert expected in str(caught.value)


def test_invalid_utf8_is_named() -> None:
    with pytest.raises(TrafficFormatError, match=r"x.jsonl: line 1: is not UTF-8 \(byte 30"):
        jsonl.parse(b'{"method": "GET", "url": "/x"}\xff\n', "x.jsonl")


def test_offsets_on_every_line_or_on_none() -> None:
    without = jsonl.parse(b'{"method": "GET", "url": "/a"}\n{"method": "GET", "url": "/b"}', "x")
    assert [e.offset for e in without[0]] == [0.0, 0.0]
    with pytest.raises(TrafficFormatError, match="line 3: 'offset' is missing, unlike on line 1"):
        jsonl.parse(
            b'{"offset": 1, "method": "GET", "url": "/a"}\n\n{"method": "GET", "url": "/"}', "x"
        )
    with pytest.raises(TrafficFormatError, match="line 2: 'offset' is given, unlike on line 1"):
        jsonl.parse(
            b'{"method": "GET", "url": "/a"}\n{"offset": 1, "method": "GET", "url": "/"}', "x"
        )


def test_absolute_urls_keep_the_host_and_drop_userinfo_and_fragment() -> None:
    line = b'{"method": "GET", "url": "https://u:p@shop.local:8443?q=1#top"}'
    [exchange], _ = jsonl.parse(line, "x")
    assert (exchange.host, exchange.target) == ("shop.local:8443", "/?q=1")


def test_comments_blank_lines_bom_and_crlf_are_fine() -> None:
    data = (
        b'\xef\xbb\xbf# c\r\n\r\n  \t\r\n{"method": "GET", "url": "/a"}\r\n#{"method": "GET"}\r\n'
    )
    [exchange], skipped = jsonl.parse(data, "x")
    assert exchange.source == "line 4" and skipped == []


def test_a_file_of_comments_only_has_no_exchanges() -> None:
    with pytest.raises(
        TrafficFormatError, match=r"x\.jsonl: has no usable exchanges; add at least"
    ):
        parse_traffic(b"# nothing yet\n", "x.jsonl")


def test_dumps_writes_lines_that_parse_back_equal() -> None:
    exchanges = [
        Exchange(0.0, "GET", "/a?b=1", (("X", "1"), ("X", "2")), host="h:1", source="s"),
        Exchange(0.5, "POST", "/b", (("Content-Type", "text/plain"),), b"\xff\x00"),
        Exchange(1.25, "PUT", "/c", body="é".encode(), response=RecordedResponse(204)),
    ]
    text = jsonl.dumps(exchanges)
    assert text.count("\n") == 3
    assert '"_source": "s"' in text and '"body_b64": "/wA="' in text
    parsed, _ = jsonl.parse(text.encode(), "x")
    assert [e.source for e in parsed] == ["line 1", "line 2", "line 3"]
    assert [replace(e, source="") for e in parsed] == [replace(e, source="") for e in exchanges]


def test_sniff_looks_at_the_first_key_of_the_first_line() -> None:
    assert jsonl.sniff(b'# traffic\n\n{"offset": 0, "method": "GET"')
    assert jsonl.sniff(b'{ "url": "/"}\n')
    assert not jsonl.sniff(b'{"msgType": "rrpair", "http": {"req": {"method": "GET"}}}\n')
    assert not jsonl.sniff(b'{"log": {}}')
    assert not jsonl.sniff(b"# only a comment\n")
