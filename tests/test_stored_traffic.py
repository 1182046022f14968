"""A recording loaded from the traffic cache reads its exchanges a chunk at a time
(``traffic/stored.py``, issue 14: memory held for replay proportional to the cycle): it equals
the parsed recording however it is read, holds a small part of what the parsed one holds, a
chosen cycle holds the cycle, and the cache file it reads is kept, checked and closed."""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import textwrap
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import cache, load_traffic
from pytest_soak.traffic.cycle import choose_cycle
from pytest_soak.traffic.model import Traffic
from pytest_soak.traffic.stored import KEPT_CHUNKS, StoredExchanges
from tests.helpers import item_traffic_lines
from tests.test_traffic_cache import big_har

ENTRIES = 6000  # 24 chunks of 256


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.ENV, raising=False)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stored") / "big.har"
    path.write_bytes(big_har(ENTRIES))
    return path


@pytest.fixture(scope="module")
def parsed(recording: Path) -> Traffic:
    return load_traffic(recording, cache=False)


@pytest.fixture
def stored(recording: Path) -> Iterator[Traffic]:
    load_traffic(recording)  # writes the cache if it is not there yet
    traffic = load_traffic(recording)
    yield traffic
    del traffic
    gc.collect()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_cached_recording_is_stored_from_its_first_load(tmp_path: Path) -> None:
    path = tmp_path / "big.har"
    path.write_bytes(big_har(ENTRIES))
    first = load_traffic(path)  # parses, writes the cache, gives what it wrote
    assert isinstance(first.exchanges, StoredExchanges)
    assert isinstance(load_traffic(path).exchanges, StoredExchanges)
    assert not isinstance(load_traffic(path, cache=False).exchanges, StoredExchanges)


def test_it_equals_the_parsed_recording_however_it_is_read(
    stored: Traffic, parsed: Traffic
) -> None:
    assert stored == parsed and list(stored) == list(parsed)
    for index in (0, 1, 255, 256, 257, 3001, ENTRIES - 1, -1, -256, -ENTRIES):
        assert stored[index] == parsed[index]
    for index in (ENTRIES, -ENTRIES - 1):
        with pytest.raises(IndexError):
            stored[index]
    for part in (slice(250, 270), slice(-300, None), slice(100, 5000, 7), slice(9, 3), slice(0)):
        assert stored[part] == parsed[part]
        assert list(stored[part]) == list(parsed[part])
    inner = stored[1000:4000][500:600]
    assert list(inner) == list(parsed.exchanges[1500:1600])
    assert stored.span == parsed.span and stored.endpoints() == parsed.endpoints()
    assert stored.filter(methods="POST") == parsed.filter(methods="POST")
    assert hash(stored.exchanges) == hash(tuple(parsed))
    assert pickle.loads(pickle.dumps(stored.exchanges)) == parsed.exchanges


@settings(max_examples=200, deadline=None)
@given(outer=st.slices(ENTRIES), inner=st.slices(ENTRIES), at=st.integers(-ENTRIES, ENTRIES))
def test_any_slice_of_a_slice_reads_what_the_tuple_holds(
    recording: Path, parsed: Traffic, outer: slice, inner: slice, at: int
) -> None:
    stored = load_traffic(recording)
    expected = parsed.exchanges[outer][inner]
    part = stored.exchanges[outer][inner]
    assert len(part) == len(expected) and list(part) == list(expected)
    if -len(expected) <= at < len(expected):
        assert part[at] == expected[at]
    else:
        with pytest.raises(IndexError):
            part[at]


def test_reading_it_keeps_a_few_chunks_built(stored: Traffic) -> None:
    chunks = stored.exchanges._chunks  # type: ignore[attr-defined]
    for _ in stored:
        assert len(chunks._kept) <= KEPT_CHUNKS
    for index in range(0, ENTRIES, 97):
        stored[index]
    assert len(chunks._kept) == KEPT_CHUNKS


def held(make: Callable[[], object]) -> int:
    """Bytes still allocated after ``make()``, with what it returned alive."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = make()
        gc.collect()
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return size


def test_it_holds_a_small_part_of_the_parsed_recording(recording: Path, stored: Traffic) -> None:
    whole = held(lambda: load_traffic(recording, cache=False))
    small = held(lambda: load_traffic(recording))
    assert small < whole / 20, (small, whole)


def test_a_cycle_chosen_from_it_holds_the_cycle(
    recording: Path, stored: Traffic, parsed: Traffic
) -> None:
    size = 300
    expected = choose_cycle(parsed, size)
    choice = choose_cycle(stored, size)
    assert choice == expected  # the same requests, in the same order

    def chosen() -> tuple[Traffic, object]:
        traffic = load_traffic(recording)
        return traffic, choose_cycle(traffic, size)

    whole = held(lambda: load_traffic(recording, cache=False))
    # (the analysis' own bounded caches of paths and templates are warm: the same recording
    # was classified above, so what is measured is what the traffic and the cycle hold)
    cycle = held(chosen)
    assert cycle < whole / 5, (cycle, whole)  # 300 of 6,000 requests, a few chunks, the index


def test_it_keeps_reading_the_file_it_checked(recording: Path, parsed: Traffic) -> None:
    load_traffic(recording)
    traffic = load_traffic(recording)
    shutil.rmtree(recording.parent / cache.CACHE_DIR)  # or rebuilt: a new file by a rename
    assert list(traffic) == list(parsed)


def test_a_cache_file_changed_in_place_under_it_is_an_error_that_says_what_to_do(
    recording: Path,
) -> None:
    load_traffic(recording)
    traffic = load_traffic(recording)
    traffic[0]
    [entry] = (recording.parent / cache.CACHE_DIR).glob(f"*{cache.SUFFIX}")
    blob = bytearray(entry.read_bytes())
    blob[-100] ^= 0x20  # in the last chunk, not built yet
    with open(entry, "r+b") as file:  # the same file, not a new one
        file.write(blob)
    with pytest.raises(TrafficFormatError, match=r"changed after it was checked.*delete the "):
        traffic[-1]
    entry.unlink()


def test_its_file_is_closed_with_it(recording: Path) -> None:
    load_traffic(recording)
    gc.collect()
    before = open_descriptors()
    traffic = load_traffic(recording)
    assert open_descriptors() == before + 1
    derived = traffic[10:20]
    del traffic
    gc.collect()
    assert open_descriptors() == before + 1  # the slice still reads it
    assert len(derived) == 10
    del derived
    gc.collect()
    assert open_descriptors() == before


def test_a_soak_run_replays_a_stored_recording(soak_project: pytest.Pytester) -> None:
    """A recording over 1 MiB, loaded by a soak test: parsed, written to the cache and given
    back stored; the run replays its cycle from the stored recording and judges a healthy
    service healthy (a later load reads the cache: the tests above)."""
    soak_project.makefile(".jsonl", big=item_traffic_lines(1500, 15000))
    assert (soak_project.path / "big.jsonl").stat().st_size > cache.MIN_BYTES
    soak_project.makepyfile(
        test_big=textwrap.dedent(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="spike-at-8am", peak_rps=120)
            def test_stored(soak, replay_traffic):
                traffic = replay_traffic("big.jsonl")
                assert type(traffic.exchanges).__name__ == "StoredExchanges"
                result = soak.run(healthy_app(), traffic)
                assert result.verdict == "ok", result.explain()
            """
        )
    )
    result = soak_project.runpytest_subprocess("--soak-duration=8s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_big.py::test_stored *OK*"])
    assert list((soak_project.path / cache.CACHE_DIR).glob(f"big.jsonl.*{cache.SUFFIX}"))
