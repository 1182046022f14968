from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import har, load_traffic
from pytest_soak.traffic.model import Traffic

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"


@pytest.fixture(scope="module")
def shop() -> Traffic:
    return load_traffic(DATA / "shop.har")


def test_loads_the_replayable_entries_sorted_by_start_time(shop: Traffic) -> None:
    assert shop.format == "har"
    assert [e.source for e in shop] == ["entry 1", "entry 0", "entry 2", "entry 4", "entry 5"]
    assert [e.offset for e in shop] == [0.0, 1.5, 2.25, 3.123456, 4.0]


def test_http2_pseudo_headers_are_dropped_and_authority_is_the_host(shop: Traffic) -> None:
    entry = next(e for e in shop if e.source == "entry 0")
    assert entry.method == "GET"
    assert entry.target == "/products?page=2"
    assert entry.host == "shop.local"
    assert entry.headers == (("accept", "text/html"), ("user-agent", "fixture/1.0"))
    assert entry.response is not None
    assert entry.response.status == 200
    assert entry.response.body == b"hello world"  # content.encoding base64
    assert entry.response.headers == (
        ("content-type", "text/plain"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    )


def test_bodies_text_and_base64(shop: Traffic) -> None:
    post = next(e for e in shop if e.method == "POST")
    assert post.body == b'{"variant_id": "11"}'
    assert post.response is not None and post.response.body == b'{"ok": 1}'
    put = next(e for e in shop if e.method == "PUT")
    assert put.body == b"\x00\x01\xfe\xff"
    assert put.target == "/upload"  # the fragment is not part of a request


def test_failed_and_unanswered_entries_keep_the_request(shop: Traffic) -> None:
    failed = next(e for e in shop if e.source == "entry 2")
    assert failed.method == "DELETE" and failed.response is None
    unanswered = next(e for e in shop if e.source == "entry 4")
    assert unanswered.target == "/users/42/orders" and unanswered.response is None


def test_non_http_urls_are_skipped_with_a_reason(shop: Traffic) -> None:
    assert [s.source for s in shop.skipped] == ["entry 3", "entry 6"]
    assert shop.skipped[0].reason.startswith("data: URL")
    assert "wss:" in shop.skipped[1].reason


def test_truncated_file_says_where_and_that_it_looks_truncated() -> None:
    with pytest.raises(TrafficFormatError) as caught:
        load_traffic(DATA / "truncated.har")
    message = str(caught.value)
    assert "truncated.har: is not valid JSON at line 182 column" in message
    assert "the file looks truncated" in message


def test_broken_but_complete_json_is_not_called_truncated() -> None:
    with pytest.raises(TrafficFormatError, match=r"line 1 column 14 .*fix the JSON") as caught:
        har.parse(b'{"log": {"a" 1}}', "x.har")
    assert "truncated" not in str(caught.value)


def entry(**changes: object) -> dict[str, object]:
    request: dict[str, object] = {"method": "GET", "url": "http://shop.local/", "headers": []}
    value: dict[str, object] = {
        "startedDateTime": "2024-03-01T08:00:00Z",
        "request": request,
        "response": {"status": 200, "headers": [], "content": {"text": ""}},
    }
    for key, change in changes.items():
        if key.startswith("request_"):
            request[key.removeprefix("request_")] = change
        else:
            value[key] = change
    return value


def har_bytes(*entries: dict[str, object]) -> bytes:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}}).encode()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"request_url": "htp:/x"},
            "x.har: entry 1: request.url 'htp:/x' is not an absolute http(s) URL",
        ),
        ({"request_url": "/relative"}, "entry 1: request.url '/relative' is not an absolute"),
        ({"request_url": 42}, "entry 1: request.url is a number, not a string"),
        ({"request_method": "GE T"}, "entry 1: request.method 'GE T' is not an HTTP method"),
        ({"request_headers": {"a": "b"}}, "entry 1: request.headers is an object, not a list"),
        ({"request_headers": [{"name": "a"}]}, "request.headers[0].value is missing"),
        ({"startedDateTime": "yesterday"}, "startedDateTime 'yesterday' is not an ISO 8601"),
        ({"startedDateTime": "2024-02-30T00:00:00Z"}, "is not a valid date-time"),
        ({"response": {"status": "200"}}, "response.status '200' is not a whole number"),
        ({"response": {"status": 42}}, "response.status 42 is not an HTTP status"),
        (
            {"response": {"status": 200, "content": {"text": "%%", "encoding": "base64"}}},
            "response.content.text is not valid base64",
        ),
        ({"request": []}, "entry 1: request is a list, not an object"),
    ],
)
def test_errors_name_the_entry_and_the_field(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(TrafficFormatError, match=re.escape(expected)) as caught:
        har.parse(har_bytes(entry(), entry(**changes)), "x.har")
    assert "jq '.log.entries[1]'" in str(caught.value)


def test_iso_8601_forms_and_out_of_order_starts() -> None:
    data = har_bytes(
        entry(startedDateTime="2024-03-01T10:00:00.75+02:00"),  # 08:00:00.75Z
        entry(startedDateTime="2024-03-01T08:00:00.5Z"),
        entry(startedDateTime="2024-03-01 08:00:01,25"),  # no zone: UTC
        entry(startedDateTime="2024-03-01T07:00:02.000000001-0100"),
    )
    exchanges, _ = har.parse(data, "x.har")
    assert [e.offset for e in exchanges] == [0.25, 0.0, 0.75, 1.5]


def test_failure_markers_mean_no_response() -> None:
    data = har_bytes(
        entry(response={"status": 0, "_error": "net::ERR_ABORTED"}),
        entry(response={"status": 200, "_failureText": "reset"}),
        entry(response=None),
        entry(response={"status": -1}),
    )
    exchanges, _ = har.parse(data, "x.har")
    assert [e.response for e in exchanges] == [None] * 4


def test_form_params_without_text_are_rebuilt_or_skipped() -> None:
    form = {
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "q", "value": "a b"}],
    }
    multipart = {"mimeType": "multipart/form-data; boundary=x", "params": [{"name": "f"}]}
    exchanges, skipped = har.parse(
        har_bytes(entry(request_postData=form), entry(request_postData=multipart)), "x.har"
    )
    assert exchanges[0].body == b"q=a+b"
    assert skipped[0].source == "entry 1" and "multipart/form-data" in skipped[0].reason


@pytest.mark.parametrize(
    "data",
    [b"[]", b'{"log": []}', b'{"log": {"entries": {}}}', b'{"log": {"version": "1.2"}}'],
)
def test_a_har_without_an_entries_list_is_an_error(data: bytes) -> None:
    with pytest.raises(TrafficFormatError, match=r"has no list at log\.entries"):
        har.parse(data, "x.har")


def test_invalid_utf8_and_deep_nesting_are_errors() -> None:
    with pytest.raises(TrafficFormatError, match="is not UTF-8"):
        har.parse(b'{"log": "\xff"}', "x.har")
    with pytest.raises(TrafficFormatError, match="nested too deeply"):
        har.parse(b'{"log": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "x.har")


def test_sniff_recognises_a_log_document() -> None:
    assert har.sniff(b'\xef\xbb\xbf\n {\n  "log" : {')
    assert har.sniff(b'{"log":{"version":"1.2"')
    assert not har.sniff(b'{"method": "GET", "url": "/"}\n')
    assert not har.sniff(b'[{"log": {}}]')
