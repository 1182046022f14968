"""The parsed-traffic cache (``traffic/cache.py``) and the fast parsing paths behind big
recordings (issue 14, part 3): the cache holds exactly what parsing gives, is used when valid,
rebuilt silently when not, survives read-only folders and two processes at once, and can be
turned off; the fast HAR and GoReplay readers give what the checked readers give."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import cache, formats, goreplay, har, jsonl, load_traffic
from pytest_soak.traffic.formats import FORMATS, TrafficFormat
from pytest_soak.traffic.model import Exchange, Skipped, Traffic
from tests.helpers import mutations, node_paths

DATA = Path(__file__).resolve().parent / "data" / "traffic"
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ("shop.har", "shop.gor", "shop.gor.gz", "shop.jsonl")


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths ``load_traffic`` parsed (rather than read from the cache) in this test."""
    calls: list[str] = []
    real = formats.parse_traffic

    def counting(data: bytes, path: str = "<memory>", format: str | None = None) -> Traffic:
        calls.append(path)
        return real(data, path, format)

    monkeypatch.setattr(formats, "parse_traffic", counting)
    return calls


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.ENV, raising=False)


def copied(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(DATA / name, target)
    return target


def cache_files(folder: Path) -> list[Path]:
    return sorted((folder / cache.CACHE_DIR).glob(f"*{cache.SUFFIX}"))


def big_har(entries: int, tag: str = "") -> bytes:
    """A HAR of ``entries`` distinct entries (over 1 MiB from about 4,000)."""
    rows = [
        {
            "startedDateTime": f"2024-03-01T08:{n // 600 % 60:02d}:{n // 10 % 60:02d}.{n % 10}Z",
            "request": {
                "method": "POST" if n % 5 == 0 else "GET",
                "url": f"http://shop.local/products/{n}?page={n % 7}{tag}",
                "headers": [
                    {"name": "Accept", "value": "application/json"},
                    {"name": "User-Agent", "value": f"client/{n % 3}"},
                    {"name": "X-Request-Id", "value": f"{n:032x}"},
                ],
                "postData": {"mimeType": "application/json", "text": json.dumps({"n": n})}
                if n % 5 == 0
                else None,
            },
            "response": {
                "status": 200 if n % 11 else 404,
                "headers": [{"name": "Content-Type", "value": "application/json"}],
                "content": {"text": json.dumps({"id": n, "name": f"item {n}"})},
            },
            "timings": {"send": 0.1, "wait": 12.5, "receive": 0.4},
        }
        for n in range(entries)
    ]
    for row in rows:
        if row["request"]["postData"] is None:  # type: ignore[index]
            del row["request"]["postData"]  # type: ignore[attr-defined]
    return json.dumps({"log": {"version": "1.2", "entries": rows}}).encode()


# -- the cache is written, used, and holds what parsing gives ---------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_the_cache_holds_exactly_what_parsing_gives(
    tmp_path: Path, name: str, parses: list[str]
) -> None:
    path = copied(tmp_path, name)
    parsed = load_traffic(path, cache=False)
    assert not (tmp_path / cache.CACHE_DIR).exists()
    first = load_traffic(path, cache=True)  # parses and writes the cache
    second = load_traffic(path, cache=True)  # reads it
    assert len(parses) == 2
    assert second == first == parsed
    assert (second.format, second.skipped, second.path) == (
        parsed.format,
        parsed.skipped,
        str(path),
    )
    assert all(a == b for a, b in zip(second, parsed, strict=True))
    assert len(cache_files(tmp_path)) == 1


def test_the_folder_explains_itself_and_git_ignores_it(tmp_path: Path) -> None:
    load_traffic(copied(tmp_path, "shop.har"), cache=True)
    folder = tmp_path / cache.CACHE_DIR
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert "PYTEST_SOAK_TRAFFIC_CACHE=0" in (folder / "README.md").read_text()
    assert (
        (folder / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )


def test_a_cached_load_keeps_the_path_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    path = copied(tmp_path, "shop.jsonl")
    load_traffic(path, cache=True)
    monkeypatch.chdir(tmp_path)
    again = load_traffic("shop.jsonl", cache=True)
    assert again.path == "shop.jsonl" and len(parses) == 1


def test_big_files_are_cached_by_default_small_ones_only_when_asked(
    tmp_path: Path, parses: list[str]
) -> None:
    small = copied(tmp_path, "shop.har")
    load_traffic(small)
    assert not (tmp_path / cache.CACHE_DIR).exists()
    big = tmp_path / "big.har"
    big.write_bytes(big_har(5000))
    assert big.stat().st_size >= cache.MIN_BYTES
    assert load_traffic(big) == load_traffic(big) == load_traffic(big, cache=False)
    assert parses == [str(small), str(big), str(big)]  # the second big load: from the cache


def test_gzipped_recordings_are_cached_without_decompressing_again(
    tmp_path: Path, parses: list[str]
) -> None:
    path = tmp_path / "big.har.gz"
    path.write_bytes(gzip.compress(big_har(2000)))
    first = load_traffic(path, cache=True)
    again = load_traffic(path, cache=True)
    assert again == first and again.format == "har" and len(parses) == 1


def test_another_format_asked_for_is_another_entry(tmp_path: Path, parses: list[str]) -> None:
    path = copied(tmp_path, "shop.gor")
    detected = load_traffic(path, cache=True)
    forced = load_traffic(path, format="goreplay", cache=True)
    assert forced == detected and len(parses) == 2
    assert len(cache_files(tmp_path)) == 1  # the other variant was removed
    assert load_traffic(path, format="goreplay", cache=True) == detected and len(parses) == 2


def test_any_registered_format_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
        calls.append(path)
        lines = data.decode().split()
        exchanges = [
            Exchange(float(n), "GET", line, source=f"word {n}") for n, line in enumerate(lines)
        ]
        return exchanges, [Skipped("word 0", "just to see it kept")]

    before = cache.fingerprint((name, fmt.parse) for name, fmt in FORMATS.items())
    monkeypatch.setitem(
        FORMATS, "paths", TrafficFormat("paths", lambda head: head[:1] == b"/", parse, "paths")
    )
    assert cache.fingerprint((name, fmt.parse) for name, fmt in FORMATS.items()) != before
    path = tmp_path / "paths.txt"
    path.write_text("/a\n/b?x=1\n/c\n")
    first = load_traffic(path, cache=True)
    again = load_traffic(path, cache=True)
    assert again == first and again.format == "paths" and len(calls) == 1
    assert [e.target for e in again] == ["/a", "/b?x=1", "/c"]
    assert again.skipped == (Skipped("word 0", "just to see it kept"),)


def test_errors_are_not_cached(tmp_path: Path) -> None:
    path = copied(tmp_path, "truncated.har")
    for _ in range(2):
        with pytest.raises(TrafficFormatError, match="the file looks truncated"):
            load_traffic(path, cache=True)
    assert cache_files(tmp_path) == []


# -- a cache that does not check is rebuilt, silently ------------------------------------------


def truncate(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


def flip_a_payload_byte(blob: bytes) -> bytes:
    at = len(blob) - 10
    return blob[:at] + bytes([blob[at] ^ 0x20]) + blob[at + 1 :]


def other_version(blob: bytes) -> bytes:
    return blob.replace(b'"version":%d,' % cache.VERSION, b'"version":99,', 1)


def other_recording(blob: bytes) -> bytes:
    header, _, payload = blob.partition(b"\n{")
    start = payload.index(b'"digest":"') + len(b'"digest":"')
    return header + b"\n{" + payload[:start] + b"0" * 64 + payload[start + 64 :]


def checksummed_garbage(blob: bytes) -> bytes:
    newline = blob.index(b"\n", len(cache.MAGIC))
    head = json.loads(blob[len(cache.MAGIC) : newline])
    garbage = b"\x93\x01\x02\x03" * 50
    head.update(payload=len(garbage), crc32=zlib.crc32(garbage))
    return cache.MAGIC + json.dumps(head).encode() + b"\n" + garbage


def foreign_field(blob: bytes) -> bytes:
    """A checksummed index naming a Traffic field there is not."""
    newline = blob.index(b"\n", len(cache.MAGIC))
    head = json.loads(blob[len(cache.MAGIC) : newline])
    start, end = newline + 1, newline + 1 + head["index"]
    index = cache._INDEX_DECODER.decode(blob[start:end])
    index.extra = {**index.extra, "colour": "blue"}
    new = msgspec.msgpack.encode(index)
    head.update(
        index=len(new), crc32=zlib.crc32(new), payload=head["payload"] + len(new) - (end - start)
    )
    return cache.MAGIC + json.dumps(head).encode() + b"\n" + new + blob[end:]


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "a foreign Traffic field": foreign_field,
    "truncated": truncate,
    "empty": lambda blob: b"",
    "flipped payload byte": flip_a_payload_byte,
    "other version": other_version,
    "foreign file": lambda blob: b"PK\x03\x04" + blob[4:],
    "other recording's": other_recording,
    "checksummed garbage": checksummed_garbage,
    "a header line only": lambda blob: blob[: blob.index(b"\n", len(cache.MAGIC)) + 1],
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS)
def test_a_bad_cache_file_is_never_trusted_and_is_rebuilt(
    tmp_path: Path, corrupt: Callable[[bytes], bytes], parses: list[str]
) -> None:
    path = copied(tmp_path, "shop.har")
    expected = load_traffic(path, cache=False)
    load_traffic(path, cache=True)  # writes the cache (the traffic is dropped, and its file)
    [entry] = cache_files(tmp_path)
    entry.write_bytes(corrupt(entry.read_bytes()))
    assert load_traffic(path, cache=True) == expected  # parsed again
    assert load_traffic(path, cache=True) == expected  # from the rebuilt cache
    assert len(parses) == 3


def test_a_damaged_stat_file_only_costs_a_hash(tmp_path: Path, parses: list[str]) -> None:
    path = copied(tmp_path, "shop.gor")
    expected = load_traffic(path, cache=True)
    [stat] = (tmp_path / cache.CACHE_DIR).glob("*.stat")
    stat.write_bytes(b"{not json")
    assert load_traffic(path, cache=True) == expected and len(parses) == 1


def test_new_content_at_the_same_path_is_parsed_again(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "shop.har"
    path.write_bytes(big_har(50, tag="&v=1"))
    old = load_traffic(path, cache=True)
    before = path.stat()
    path.write_bytes(big_har(50, tag="&v=2"))  # the same size, the same second
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    new = load_traffic(path, cache=True)
    assert new != old and new == load_traffic(path, cache=False)
    assert all(e.target.endswith("&v=2") for e in new)
    path.write_bytes(big_har(60))  # another size
    assert len(load_traffic(path, cache=True)) == 60
    assert len(parses) == 4  # old, new, new without the cache, the other size


def test_the_hash_is_not_taken_again_while_the_file_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    path = copied(tmp_path, "shop.har")
    hashed: list[Path] = []
    real = cache._file_digest
    monkeypatch.setattr(cache, "_file_digest", lambda p: hashed.append(p) or real(p))
    load_traffic(path, cache=True)
    load_traffic(path, cache=True)
    assert len(hashed) == 1  # just written: within the racy window, so hashed
    monkeypatch.setattr(cache, "RACY_NS", 0)  # as if the file had been written long ago
    for _ in range(3):
        load_traffic(path, cache=True)
    assert len(hashed) == 1 and len(parses) == 1
    path.touch()  # a new mtime and ctime: hashed again (the content is the same)
    load_traffic(path, cache=True)
    load_traffic(path, cache=True)
    assert len(hashed) == 2 and len(parses) == 1


# -- read-only folders, opting out -----------------------------------------------------------


def test_a_folder_where_no_cache_can_be_made_loads_without_one(
    tmp_path: Path, parses: list[str]
) -> None:
    path = copied(tmp_path, "shop.har")
    (tmp_path / cache.CACHE_DIR).write_text("a file where the folder would be")
    assert load_traffic(path, cache=True) == load_traffic(path, cache=True)
    assert len(parses) == 2


def test_writes_that_fail_are_no_cache_and_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    path = copied(tmp_path, "shop.jsonl")
    expected = load_traffic(path, cache=True)  # a cache from before the folder became read-only

    def refused(target: object, data: object) -> None:
        raise PermissionError(30, "Read-only file system", str(target))

    monkeypatch.setattr(cache, "write_atomic", refused)
    assert load_traffic(path, cache=True) == expected  # still read
    other = copied(tmp_path, "shop.gor")
    assert load_traffic(other, cache=True) == load_traffic(other, cache=False)  # none written
    assert cache_files(tmp_path) == cache_files(tmp_path)[:1]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_read_only_folder_loads_without_a_cache_even_for_root(tmp_path: Path) -> None:
    path = copied(tmp_path, "shop.har")
    tmp_path.chmod(0o555)
    try:
        assert load_traffic(path, cache=True) == load_traffic(path, cache=False)
        assert not (tmp_path / cache.CACHE_DIR).exists()
    finally:
        tmp_path.chmod(0o755)
    load_traffic(path, cache=True)
    (tmp_path / cache.CACHE_DIR).chmod(0o555)  # a cache folder made read-only: read, not written
    try:
        shutil.copyfile(DATA / "shop.gor", tmp_path / "shop.gor")
        assert load_traffic(tmp_path / "shop.har", cache=True).format == "har"
        assert load_traffic(tmp_path / "shop.gor", cache=True).format == "goreplay"
        assert [p.name.split(".")[1] for p in cache_files(tmp_path)] == ["har"]
    finally:
        (tmp_path / cache.CACHE_DIR).chmod(0o755)


@pytest.mark.parametrize("value", ["0", "off", "false", "NO"])
def test_the_environment_variable_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(cache.ENV, value)
    monkeypatch.setattr(cache, "MIN_BYTES", 0)
    load_traffic(copied(tmp_path, "shop.har"))
    assert not (tmp_path / cache.CACHE_DIR).exists()
    load_traffic(tmp_path / "shop.har", cache=True)  # asking for it wins
    assert len(cache_files(tmp_path)) == 1


def test_cache_false_reads_and_writes_no_cache(tmp_path: Path, parses: list[str]) -> None:
    path = copied(tmp_path, "shop.har")
    load_traffic(path, cache=True)
    load_traffic(path, cache=False)
    assert len(parses) == 2
    shutil.rmtree(tmp_path / cache.CACHE_DIR)
    load_traffic(path, cache=False)
    assert not (tmp_path / cache.CACHE_DIR).exists()


# -- two processes at once --------------------------------------------------------------------

CHILD = """
import hashlib, sys, time
from pathlib import Path
from pytest_soak.traffic import load_traffic
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.0005)
traffic = load_traffic(sys.argv[1])
print(len(traffic), hashlib.sha256(repr(tuple(traffic)).encode()).hexdigest())
"""


def test_two_processes_loading_one_file_at_once_both_succeed(
    tmp_path: Path, parses: list[str]
) -> None:
    path = tmp_path / "big.har"
    path.write_bytes(big_har(5000))
    expected = load_traffic(path, cache=False)
    digest = hashlib.sha256(repr(tuple(expected)).encode()).hexdigest()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(3):  # racing on an empty cache, then on one being replaced
        go = tmp_path / f"go{attempt}"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        time.sleep(0.5)  # both imported and waiting
        go.touch()
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            assert out.split() == [str(len(expected)), digest]
        if attempt == 1:
            [entry] = cache_files(tmp_path)
            entry.write_bytes(truncate(entry.read_bytes()))
    parses.clear()
    assert load_traffic(path) == expected and parses == []  # the cache they left is valid
    leftovers = [p.name for p in (tmp_path / cache.CACHE_DIR).iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


# -- the fast readers give what the checked readers give ---------------------------------------

checks = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(parse: Callable[[bytes, str], object], data: bytes) -> object:
    try:
        return parse(data, "x")
    except TrafficFormatError as exc:
        return str(exc)


SNIPPETS = [b'"', b"null", b"1", b'""', b"[]", b"{}", b"\r\n", b"\n", b" ", b"\t", b":", b"\x00"]


def mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """1 to 3 flips, deletions of up to 8 bytes and insertions of up to 4 (no cutting off)."""
    return mutations(original, SNIPPETS, edits=3, cut=8, inserted=(0, 4), truncate=False)


@checks
@given(mutated((DATA / "shop.har").read_bytes()))
def test_har_fast_path_equals_checked_path(data: bytes) -> None:
    assert outcome(har.parse, data) == outcome(har.parse_checked, data)


HAR_TREE = json.loads((DATA / "shop.har").read_bytes())
JSON_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-2, 1000)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "",
            "x",
            ":authority",
            "base64",
            "aGk=",
            "http://h/",
            "data:,",
            "2024-03-01T08:00:00Z",
            "GET",
            "GE T",
        ]
    )
    | st.lists(st.none(), max_size=1)
    | st.just({})
)


@checks
@given(st.lists(st.tuples(st.sampled_from(node_paths(HAR_TREE)[1:]), JSON_VALUES), max_size=3))
def test_har_fast_path_equals_checked_path_for_other_json_values(
    changes: list[tuple[tuple[object, ...], object]],
) -> None:
    tree = json.loads(json.dumps(HAR_TREE))
    for path, value in changes:
        node = tree
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    data = json.dumps(tree).encode()
    assert outcome(har.parse, data) == outcome(har.parse_checked, data)


REQUEST_LINES = [
    b"GET /a HTTP/1.1",
    b"POST /b?x=1 HTTP/1.1",
    b"HEAD /h HTTP/1.1",
    b"GET /a HTTP/1.0",
    b"OPTIONS * HTTP/1.1",
    b"GET http://h:81/p HTTP/1.1",
    b"GET /a HTTP/2.0",
    b"GE T /a HTTP/1.1",
    b"CONNECT h:443 HTTP/1.1",
    b"GET /a b HTTP/1.1",
]
STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.0 304",
    b"HTTP/1.1 404 Not  Found",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
    b"HTTP/1.1 20 OK",
    b"HTTP/1.1 500 \x01",
]
HEADER_LINES = [
    b"Host: h",
    b"host:h ",
    b"HOST: \th\t",
    b"Host: other",
    b"Content-Length: 5",
    b"content-length: 05",
    b"Content-Length: 5, 5",
    b"Content-Length: 99",
    b"Content-Length: x",
    b"Transfer-Encoding: chunked",
    b"transfer-encoding: Chunked",
    b"Transfer-Encoding: gzip",
    b"X: a\x01b",
    b"X: a\x0bb",
    b" folded",
    b"Bad Name: x",
    b"X:",
    b"X-Empty: ",
    b"Accept: */*",
    b"X: a\rb",
    b"X: caf\xe9",
]
BODIES = [
    b"",
    b"hello",
    b"hello world, longer",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
    b"5;e=1\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhel",
    b"5\r\nhelloXX0\r\n\r\n",
    b"0\r\n\r\n",
]


@st.composite
def http_message(draw: st.DrawFn, first_lines: list[bytes]) -> bytes:
    newline = draw(st.sampled_from([b"\r\n"] * 4 + [b"\n"]))
    lines = [
        draw(st.sampled_from(first_lines)),
        *draw(st.lists(st.sampled_from(HEADER_LINES), max_size=5)),
    ]
    head = newline.join(lines) + newline + newline
    return head + draw(st.sampled_from(BODIES))


@st.composite
def captures(draw: st.DrawFn) -> bytes:
    payloads = []
    for number in range(draw(st.integers(1, 4))):
        ident = draw(st.sampled_from(["a1", "b2"]))
        payloads.append(b"1 %s %d\n" % (ident.encode(), number) + draw(http_message(REQUEST_LINES)))
        if draw(st.booleans()):
            payloads.append(
                b"2 %s %d 5\n" % (ident.encode(), number) + draw(http_message(STATUS_LINES))
            )
    return goreplay.SEPARATOR.join(payloads) + goreplay.SEPARATOR


@checks
@given(captures())
def test_goreplay_fast_reading_equals_h11(data: bytes) -> None:
    assert outcome(goreplay.parse, data) == outcome(goreplay.parse_checked, data)


PLAIN_REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
]
PLAIN_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
]


@st.composite
def shuffled_captures(draw: st.DrawFn) -> bytes:
    """Requests, responses and replayed responses of a few ids in any order: a response before
    its request, a second one, one to a HEAD request (the fast reading matches plain responses
    as it meets them, the checked one after reading every request)."""
    payloads = []
    for number in range(draw(st.integers(1, 7))):
        ident = draw(st.sampled_from([b"a1", b"b2"]))
        kind = draw(st.sampled_from([b"1", b"2", b"2", b"3"]))
        plain = PLAIN_REQUESTS if kind == b"1" else PLAIN_RESPONSES
        lines = REQUEST_LINES if kind == b"1" else STATUS_LINES
        message = draw(st.sampled_from(plain) | http_message(lines))
        payloads.append(b"%s %s %d\n" % (kind, ident, number) + message)
    return goreplay.SEPARATOR.join(draw(st.permutations(payloads))) + goreplay.SEPARATOR


@checks
@given(shuffled_captures())
def test_goreplay_fast_reading_equals_h11_in_any_payload_order(data: bytes) -> None:
    assert outcome(goreplay.parse, data) == outcome(goreplay.parse_checked, data)


@checks
@given(mutated((DATA / "shop.gor").read_bytes()))
def test_goreplay_fast_reading_equals_h11_on_damaged_files(data: bytes) -> None:
    assert outcome(goreplay.parse, data) == outcome(goreplay.parse_checked, data)


@checks
@given(st.data())
def test_jsonl_lines_decode_as_json_loads_decodes_them(data: st.DataObject) -> None:
    value = data.draw(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda kids: (
                st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
            ),
            max_leaves=6,
        )
    )
    line = json.dumps({"method": "GET", "url": "/", "_note": value}).encode()
    assert jsonl._load(line) == json.loads(line)


def test_shared_header_pairs_are_one_object(tmp_path: Path) -> None:
    traffic = har.parse(big_har(100), "x.har")[0]
    accepts = {id(e.headers[0]) for e in traffic}
    assert len(accepts) == 1  # ("Accept", "application/json") a hundred times, one tuple
    names = {id(e.headers[2][0]) for e in traffic}
    assert len(names) == 1  # "X-Request-Id": unique values, one name
    cached_path = tmp_path / "x.har"
    cached_path.write_bytes(big_har(100))
    load_traffic(cached_path, cache=True)
    cached = load_traffic(cached_path, cache=True)
    assert len({id(e.headers[0]) for e in cached}) == 1
    assert len({id(e.headers[2][0]) for e in cached}) == 1


def test_replace_keeps_working_on_cached_exchanges(tmp_path: Path) -> None:
    path = copied(tmp_path, "shop.har")
    load_traffic(path, cache=True)
    exchange = load_traffic(path, cache=True)[0]
    assert replace(exchange, offset=9.0).offset == 9.0


def test_pausing_the_collector_restores_it_and_leaves_frozen_objects_frozen() -> None:
    import gc

    with cache.gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        with cache.gc_paused():
            pass
        assert gc.get_freeze_count() == frozen > 0
        gc.disable()
        with cache.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_other_traffic_fields_are_kept_when_they_are_scalars_or_tuples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copied(tmp_path, "shop.har")
    traffic = load_traffic(path, cache=False)
    stored = tmp_path / "stored.traffic"
    stored.write_bytes(cache.encode(traffic, "shop.har", "d" * 64, 1, "v"))
    assert cache._open(stored, "d" * 64, 1, "v", "shown.har") == replace(traffic, path="shown.har")
    others = {f.name for f in fields(Traffic)} - cache._BUILT
    assert set(cache._extra_fields(traffic)) == others  # kept as they are
    monkeypatch.setattr(cache, "_BUILT", frozenset({"exchanges", "path", "skipped"}))
    assert cache._extra_fields(traffic)["format"] == "har"  # as a field added later would be
    odd = replace(traffic, format=("a", 1))  # type: ignore[arg-type]
    assert cache._extra_fields(odd)["format"] == ("a", 1)
    with pytest.raises(TypeError, match="cannot be cached"):
        cache._extra_fields(replace(traffic, format=object()))  # type: ignore[arg-type]
