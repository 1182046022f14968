from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import pytest_soak.traffic
from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import FORMATS, load_traffic, parse_traffic

DATA = Path(__file__).resolve().parents[1] / "data" / "traffic"


def test_formats_are_registered_in_sniffing_order() -> None:
    assert list(FORMATS) == [
        "har", "jsonl", "goreplay", "rrpair", "proxymock", "combined-log", "envoy-log"
    ]  # fmt: skip
    assert {"FORMATS", "TrafficFormat", "load_traffic", "parse_traffic"} <= set(
        pytest_soak.traffic.__all__
    )


@pytest.mark.parametrize(
    ("name", "expected"), [("shop.har", "har"), ("shop.jsonl", "jsonl"), ("shop.gor", "goreplay")]
)
def test_detection_is_by_content_not_by_name(tmp_path: Path, name: str, expected: str) -> None:
    renamed = tmp_path / "traffic.txt"
    renamed.write_bytes((DATA / name).read_bytes())
    assert load_traffic(renamed).format == expected
    compressed = tmp_path / "traffic.bin"
    compressed.write_bytes(gzip.compress((DATA / name).read_bytes()))
    assert load_traffic(compressed).format == expected


def test_offsets_are_sorted_stably_and_rebased_to_zero() -> None:
    lines = [
        {"offset": 10.5, "method": "GET", "url": "/c"},
        {"offset": 10.25, "method": "GET", "url": "/a"},
        {"offset": 10.5, "method": "GET", "url": "/d"},
        {"offset": 10.25, "method": "GET", "url": "/b"},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    traffic = parse_traffic(data)
    assert [(e.target, e.offset) for e in traffic] == [
        ("/a", 0.0),
        ("/b", 0.0),
        ("/c", 0.25),
        ("/d", 0.25),
    ]
    assert traffic.path == "<memory>" and traffic.span == 0.25


def test_format_can_be_forced_by_name() -> None:
    data = (DATA / "shop.jsonl").read_bytes()
    assert parse_traffic(data, "x", format="jsonl").format == "jsonl"
    with pytest.raises(TrafficFormatError, match="x: format='csv' is not a traffic format; use"):
        parse_traffic(data, "x", format="csv")
    with pytest.raises(TrafficFormatError, match="x: is not valid JSON at line 1 column 1"):
        parse_traffic(data, "x", format="har")


def test_unknown_content_names_the_formats_and_their_shape() -> None:
    with pytest.raises(TrafficFormatError) as caught:
        parse_traffic(b"GET / HTTP/1.1\r\n\r\n", "traffic/shop.txt")
    message = str(caught.value)
    assert message.startswith("traffic/shop.txt: is not a traffic file pytest-soak can read")
    assert "b'GET / HTTP/1.1\\r\\n\\r\\n'" in message
    for name, traffic_format in FORMATS.items():
        assert f"  - {name}: {traffic_format.looks_like}" in message


def test_the_suffix_picks_the_parser_when_content_is_unrecognisable() -> None:
    with pytest.raises(TrafficFormatError, match=r"x\.har\.gz: is not valid JSON at line 1"):
        parse_traffic(gzip.compress(b"<html>oops</html>"), "x.har.gz")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "x.gor: is empty; record some traffic into it first"),
        (b" \n\t\n", "x.gor: is empty"),
        (gzip.compress(b"", mtime=0), "x.gor: is empty"),
        (b"\x1f\x8b\x08\x00garbage", "x.gor: starts like gzip but does not decompress"),
        (gzip.compress(b"x" * 1000, mtime=0)[:-9], "the file looks truncated or corrupt"),
    ],
)
def test_empty_and_corrupt_files(data: bytes, expected: str) -> None:
    with pytest.raises(TrafficFormatError, match=expected):
        parse_traffic(data, "x.gor")


def test_missing_file_and_directory_are_traffic_errors(tmp_path: Path) -> None:
    with pytest.raises(TrafficFormatError, match=r"nope\.har: no such traffic file"):
        load_traffic(tmp_path / "nope.har")
    with pytest.raises(TrafficFormatError, match="is a directory, not a traffic file"):
        load_traffic(tmp_path)
    with pytest.raises(TrafficFormatError, match="is empty"):
        (tmp_path / "empty.jsonl").touch()
        load_traffic(str(tmp_path / "empty.jsonl"))


def test_a_file_with_only_skipped_entries_lists_the_reasons() -> None:
    entries = [
        {"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method": "GET", "url": url}}
        for url in ["data:,a", "blob:x", "ws://h/", "about:blank", "chrome-extension://e/", "wss:/"]
    ]
    data = json.dumps({"log": {"entries": entries}}).encode()
    with pytest.raises(TrafficFormatError) as caught:
        parse_traffic(data, "x.har")
    message = str(caught.value)
    assert message.startswith("x.har: has no usable exchanges; every entry was skipped:\n")
    assert "  - entry 0: data: URL 'data:,a' is not an HTTP request" in message
    assert "  - … and 1 more" in message
