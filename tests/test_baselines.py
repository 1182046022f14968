"""The baseline store on real files: format, rounding, atomic writes, corrupt files, compare."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soak.baselines import (
    BASELINE_DIR,
    DEFAULT_TOLERANCE,
    FORMAT_VERSION,
    Baseline,
    BaselineFile,
    Environment,
    PhaseRecord,
    Tolerance,
    baseline_path,
    compare,
    traffic_fingerprint,
)
from pytest_soak.driver.records import Checkpoint
from pytest_soak.engine import run_soak
from pytest_soak.errors import BaselineError, SoakError
from pytest_soak.result import SoakResult
from pytest_soak.settings import Settings, resolve
from pytest_soak.traffic import load_traffic
from tests.apps.services import wsgi_app
from tests.helpers import item_traffic_lines

KiB = 1024
MiB = 1024 * KiB
LINUX = Environment(
    "Linux", "x86_64", "cpython-3.11", "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
)
LINUX_KEY = "linux/x86_64/cpython-3.11/intel-xeon-platinum-8375c"
MAC = Environment("Darwin", "arm64", "cpython-3.12", "Apple M2 Pro", label="laptop")


def make(test: str = "test_shop", environment: Environment = LINUX, **changes: Any) -> Baseline:
    baseline = Baseline(
        test=test,
        environment=environment,
        metric="heap",
        growth_per_request=5.04,
        growth=11_403.6,
        requests_measured=2263,
        requests=2400,
        profile="spike-at-8am",
        peak_rps=150.04,
        duration=61.234,
        mode="quick",
        traffic_path="traffic/shop.har",
        traffic_fingerprint="sha256:0123456789abcdef",
        verdict="ok",
        phases=(
            PhaseRecord("night", 300, 0.0, 52_428_800.4),
            PhaseRecord("spike", 900, 6_000.2, 52_430_000.0),
            PhaseRecord("sustained", 1200, 5_403.4, None),
        ),
        plugin_version="0.1.0",
    )
    return dataclasses.replace(baseline, **changes)


def saved(tmp_path: Path, *items: Baseline) -> Path:
    store = BaselineFile(baseline_path(tmp_path / "test_shop.py"))
    for item in items:
        store.put(item)
    store.save()
    return store.path


# --- file and round trip -----------------------------------------------------------------------


def test_baseline_path_is_a_folder_beside_the_test_module(tmp_path: Path) -> None:
    assert baseline_path(tmp_path / "test_shop.py") == tmp_path / BASELINE_DIR / "test_shop.json"
    assert baseline_path("tests/test_x.py") == Path("tests/__soak_baselines__/test_x.json")


def test_round_trip_keeps_the_rounded_figures(tmp_path: Path) -> None:
    path = saved(tmp_path, make())
    loaded = BaselineFile.load(path).get("test_shop", LINUX_KEY)
    assert loaded == make(  # memory figures keep two significant digits, settings three
        growth_per_request=5.0,
        growth=11_000.0,
        peak_rps=150.0,
        duration=61.2,
        phases=(
            PhaseRecord("night", 300, 0.0, 52_000_000.0),
            PhaseRecord("spike", 900, 6_000.0, 52_000_000.0),
            PhaseRecord("sustained", 1200, 5_400.0, None),
        ),
    )


def test_the_file_is_sorted_indented_json_with_whole_bytes(tmp_path: Path) -> None:
    text = saved(
        tmp_path, make(phases=(PhaseRecord("night", 300, -0.3, 52_428_800.4),))
    ).read_text()
    assert text == (
        "{\n"
        '  "format": 1,\n'
        '  "tests": {\n'
        '    "test_shop": {\n'
        f'      "{LINUX_KEY}": {{\n'
        '        "duration": 61.2,\n'
        '        "environment": {\n'
        '          "arch": "x86_64",\n'
        '          "cpu": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",\n'
        '          "label": "",\n'
        '          "os": "Linux",\n'
        '          "python": "cpython-3.11"\n'
        "        },\n"
        '        "growth": 11000,\n'
        '        "growth_per_request": 5.0,\n'
        '        "metric": "heap",\n'
        '        "mode": "quick",\n'
        '        "peak_rps": 150.0,\n'
        '        "phases": [\n'
        "          {\n"
        '            "floor": 52000000,\n'
        '            "floor_growth": 0,\n'
        '            "name": "night",\n'
        '            "requests": 300\n'
        "          }\n"
        "        ],\n"
        '        "plugin_version": "0.1.0",\n'
        '        "profile": "spike-at-8am",\n'
        '        "requests": 2400,\n'
        '        "requests_measured": 2263,\n'
        '        "traffic_fingerprint": "sha256:0123456789abcdef",\n'
        '        "traffic_path": "traffic/shop.har",\n'
        '        "verdict": "ok"\n'
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_same_content_gives_the_same_bytes_whatever_the_order(tmp_path: Path) -> None:
    items = [make("test_b"), make("test_a", MAC), make("test_a"), make("TestShop::test_x[1]")]
    first, second = BaselineFile(tmp_path / "one.json"), BaselineFile(tmp_path / "two.json")
    for item in items:
        first.put(item)
    for item in reversed(items):
        second.put(item)
    assert first.dumps() == second.dumps()
    assert first.tests() == ["TestShop::test_x[1]", "test_a", "test_b"]


def test_noise_below_the_rounding_is_not_a_change(tmp_path: Path) -> None:
    store = BaselineFile(tmp_path / "b.json")
    assert store.put(make()) is True
    assert store.put(make(growth_per_request=5.0 + 1e-9, growth=11_403.9, peak_rps=150.01)) is False
    assert store.put(make(plugin_version="0.2.0")) is False  # an upgrade alone rewrites nothing
    assert store.put(make(growth_per_request=5.2)) is True
    assert store.put(make(verdict="suspicious")) is True


def test_negative_zero_is_written_as_zero(tmp_path: Path) -> None:
    store = BaselineFile(tmp_path / "b.json")
    store.put(make(growth_per_request=-0.0, growth=-0.2))
    assert '"growth_per_request": 0.0' in store.dumps()
    assert '"growth": 0,' in store.dumps()


def test_an_absolute_traffic_path_is_stored_relative_to_the_test_folder(tmp_path: Path) -> None:
    store = BaselineFile(baseline_path(tmp_path / "test_shop.py"))
    store.put(make(traffic_path=str(tmp_path / "traffic" / "shop.har")))
    baseline = store.get("test_shop", LINUX_KEY)
    assert baseline is not None
    assert baseline.traffic_path == "traffic/shop.har"


def test_environments_of_one_test_coexist(tmp_path: Path) -> None:
    path = saved(tmp_path, make(), make(environment=MAC, growth_per_request=9.0))
    store = BaselineFile.load(path)
    assert store.environments("test_shop") == sorted([LINUX_KEY, MAC.key])
    mac = store.get("test_shop", MAC.key)
    assert mac is not None and mac.growth_per_request == 9.0
    linux = store.get("test_shop", LINUX_KEY)
    assert linux is not None and linux.growth_per_request == 5.0
    assert store.get("test_shop", "linux/aarch64/cpython-3.11/unknown") is None
    assert store.get("test_other", LINUX_KEY) is None
    assert store.environments("test_other") == []


def test_remove_and_the_last_test_gone_deletes_the_file(tmp_path: Path) -> None:
    path = saved(tmp_path, make("test_a"), make("test_a", MAC), make("test_b"))
    store = BaselineFile.load(path)
    assert store.remove(["test_a", "test_gone"]) == ["test_a"]
    store.save()
    assert BaselineFile.load(path).tests() == ["test_b"]
    store.remove(["test_b"])
    store.save()
    assert not path.exists()
    assert not path.parent.exists()  # the empty __soak_baselines__ folder goes too
    BaselineFile(path).save()  # nothing to delete: no error


def test_a_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    store = BaselineFile.load(tmp_path / BASELINE_DIR / "test_none.json")
    assert store.tests() == []
    assert store.get("test_x", LINUX_KEY) is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_new_file_is_readable_by_others_like_any_source_file(tmp_path: Path) -> None:
    assert stat.S_IMODE(saved(tmp_path, make()).stat().st_mode) == 0o644


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = saved(tmp_path, make())
    os.utime(path, (1_000_000, 1_000_000))
    store = BaselineFile.load(path)
    store.put(make())
    store.save()
    assert path.stat().st_mtime == 1_000_000


# --- atomic writes -----------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = saved(tmp_path, make())
    before = path.read_bytes()
    store = BaselineFile.load(path)
    store.put(make(growth_per_request=99.0))

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(BaselineError, match="No space left on device") as info:
        store.save()
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_an_interrupted_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = saved(tmp_path, make())
    store = BaselineFile.load(path)
    store.put(make("test_new"))

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        store.save()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert BaselineFile.load(path).tests() == ["test_shop"]


# --- corrupt files -----------------------------------------------------------------------------


def _valid_document() -> dict[str, Any]:
    store = BaselineFile(Path("x.json"))
    store.put(make())
    document: dict[str, Any] = json.loads(store.dumps())
    return document


def _entry(document: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = document["tests"]["test_shop"][LINUX_KEY]
    return entry


def _edited(edit: Any) -> str:
    document = _valid_document()
    edit(document)
    return json.dumps(document)


VALID = json.dumps(_valid_document(), indent=2)
CORRUPT = {
    "truncated": (
        VALID[: VALID.index('"growth"')],
        "line 14 column 9: invalid JSON (Expecting property name enclosed in double quotes)",
    ),
    "a list": ("[1, 2]", "the document: expected an object, got a list"),
    "empty": ("", "line 1 column 1: invalid JSON"),
    "no growth_per_request": (
        _edited(lambda d: _entry(d).pop("growth_per_request")),
        f'tests.test_shop["{LINUX_KEY}"].growth_per_request: is missing',
    ),
    "a string for a number": (
        _edited(lambda d: _entry(d).update(growth="11 KiB")),
        f"tests.test_shop[\"{LINUX_KEY}\"].growth: expected a number, got '11 KiB'",
    ),
    "a bool for a count": (
        _edited(lambda d: _entry(d).update(requests=True)),
        '"].requests: expected a whole number >= 0, got True',
    ),
    "a negative count": (
        _edited(lambda d: _entry(d)["phases"][1].update(requests=-3)),
        '"].phases[1].requests: expected a whole number >= 0, got -3',
    ),
    "a phase that is not an object": (
        _edited(lambda d: _entry(d)["phases"].append("x")),
        "\"].phases[3]: expected an object, got 'x'",
    ),
    "unknown format": (
        _edited(lambda d: d.update(format=FORMAT_VERSION + 1)),
        "format: 2 is not a format this pytest-soak reads (1); upgrade pytest-soak",
    ),
    "no format": (_edited(lambda d: d.pop("format")), "format: is missing"),
    "an unknown key": (
        _edited(lambda d: _entry(d).update(note="hi")),
        '"].note: is not a known key',
    ),
    "a key that does not match its environment": (
        _edited(lambda d: _entry(d)["environment"].update(python="cpython-3.12")),
        "does not match its environment, whose key is "
        "'linux/x86_64/cpython-3.12/intel-xeon-platinum-8375c'",
    ),
    "NaN": (
        json.dumps(_valid_document()).replace('"growth": 11000', '"growth": NaN'),
        "NaN is not a number JSON allows",
    ),
    "1e999": (
        json.dumps(_valid_document()).replace('"growth": 11000', '"growth": 1e999'),
        '"].growth: expected a finite number, got inf',
    ),
    "a duplicate key": (
        json.dumps(_valid_document()).replace('"format": 1', '"format": 1, "format": 1'),
        "the key 'format' appears twice",
    ),
    "merge conflict": (
        '{\n<<<<<<< HEAD\n  "format": 1,\n=======\n>>>>>>> main\n}\n',
        "line 2: unresolved merge conflict marker",
    ),
    "not UTF-8": ("\udcff", "is not UTF-8 text"),
    "empty test name": (
        json.dumps(_valid_document()).replace('"test_shop"', '""'),
        'tests[""]: a test name must not be empty',
    ),
}


@pytest.mark.parametrize(("content", "expected"), CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_is_a_baseline_error_naming_the_file_and_the_place(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / BASELINE_DIR / "test_shop.json"
    path.parent.mkdir()
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(BaselineError) as info:
        BaselineFile.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "delete the file" in message
    assert "--soak-update-baselines" in message


def test_an_unreadable_path_is_a_baseline_error(tmp_path: Path) -> None:
    path = tmp_path / "test_shop.json"
    path.mkdir()
    with pytest.raises(BaselineError, match="cannot be read"):
        BaselineFile.load(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"growth_per_request": float("nan")}, "growth_per_request: expected a finite number"),
        ({"peak_rps": -1.0}, "peak_rps: expected a finite number >= 0"),
        ({"requests": -1}, "requests: expected a whole number >= 0"),
        ({"metric": ""}, "metric: expected a non-empty string"),
        ({"test": ""}, "a test name must not be empty"),
    ],
)
def test_put_refuses_what_could_not_be_loaded_again(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    store = BaselineFile(tmp_path / "b.json")
    with pytest.raises(BaselineError, match="the baseline is not recorded") as info:
        store.put(make(**change))
    assert expected in str(info.value)
    assert store.tests() == []


# --- from a soak result ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> tuple[SoakResult, Settings]:
    """A real in-process run of a few seconds; tests reshape its typed parts as they need."""
    path = tmp_path_factory.mktemp("traffic") / "items.jsonl"
    path.write_text(item_traffic_lines(200))
    settings = resolve(
        {"profile": "constant", "peak_rps": 100}, mode="quick", duration_override=2.0
    )
    return run_soak(wsgi_app(0), load_traffic(path), settings, check=False), settings


def test_from_result_reads_the_typed_result(soaked: tuple[SoakResult, Settings]) -> None:
    from pytest_soak import __version__

    result, settings = soaked
    primary = result.analysis.primary
    assert primary is not None
    baseline = Baseline.from_result("test_shop", result, settings, LINUX)
    assert dataclasses.replace(baseline, phases=()) == Baseline(
        test="test_shop",
        environment=LINUX,
        metric=result.analysis.metric,
        growth_per_request=result.growth_per_request,
        growth=result.growth,
        requests_measured=primary.requests_measured,
        requests=result.run.sent,
        profile="constant",
        peak_rps=100.0,
        duration=2.0,
        mode="quick",
        traffic_path=str(result.traffic["path"]),
        traffic_fingerprint=result.traffic["fingerprint"],
        verdict=result.verdict,
        phases=(),
        plugin_version=__version__,
    )
    assert [(p.name, p.requests, p.floor_growth) for p in baseline.phases] == [
        (p.name, p.requests, p.floor_growth) for p in result.analysis.phases
    ]


def test_phase_floors_are_relative_to_the_warm_up_floor(
    soaked: tuple[SoakResult, Settings],
) -> None:
    """A phase's floor is the judged metric's floor at its last checkpoint (none in the third
    phase here) above the warm-up's floor (checkpoint 1 here), not the lowest sample."""
    result, settings = soaked
    metric = result.analysis.metric
    run = dataclasses.replace(result.run)
    run.reserve_checkpoints(3)
    for number, phase in enumerate((0, 0, 1)):
        run.record_checkpoint(Checkpoint(number, 100 * (number + 1), float(number), phase, True))
    one = result.analysis.phases[0]
    reshaped = dataclasses.replace(
        result,
        run=run,
        analysis=dataclasses.replace(
            result.analysis,
            warmup_checkpoints=1,
            phases=tuple(dataclasses.replace(one, name=name) for name in ("a", "b", "c")),
        ),
        floors=[
            {metric: 52_000_000.0, "other": 9e9},
            {metric: 52_428_800.4, "other": 9e9},
            {metric: 52_430_000, "other": 9e9},
        ],
    )
    baseline = Baseline.from_result("test_shop", reshaped, settings, LINUX)
    assert [p.floor for p in baseline.phases] == [0.0, 52_430_000 - 52_428_800.4, None]
    all_warm_up = dataclasses.replace(
        reshaped, analysis=dataclasses.replace(reshaped.analysis, warmup_checkpoints=3)
    )
    assert [p.floor for p in Baseline.from_result("t", all_warm_up, settings, LINUX).phases] == [
        None,
        None,
        None,
    ]


# --- tolerance ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "relative", "absolute"),
    [
        ("20%", 0.2, 0.0),
        ("1MB", 0.0, 1_000_000.0),
        ("64KiB", 0.0, 65_536.0),
        ("20% + 1MB", 0.2, 1_000_000.0),
        ("1MB+20%", 0.2, 1_000_000.0),
        (("20%", "1MB"), 0.2, 1_000_000.0),
        (["12.5%"], 0.125, 0.0),
        (4096, 0.0, 4096.0),
        ("0", 0.0, 0.0),
        ("20", 0.0, 20.0),  # a bare number is bytes, as for max_growth
        (None, 0.25, 0.0),
    ],
)
def test_tolerance_forms(value: Any, relative: float, absolute: float) -> None:
    assert Tolerance.parse(value) == Tolerance(relative, absolute)


@pytest.mark.parametrize(
    "bad", ["", "abc", "-5%", "%", "20%%", "20% + 30%", "1MB + 2MB", "20% +", "nan%",
            True, -1, float("inf"), (), ("20%", None)],
)  # fmt: skip
def test_a_bad_tolerance_names_itself_and_the_accepted_forms(bad: Any) -> None:
    with pytest.raises(SoakError) as info:
        Tolerance.parse(bad, name="tolerance")
    assert str(info.value).startswith(f"tolerance={bad!r} is not a tolerance")
    assert "'20%', '1MB', '20% + 1MB'" in str(info.value)


def test_tolerance_reads_like_it_is_written() -> None:
    assert str(Tolerance.parse("20% + 1MiB")) == "20% + 1.0 MiB"
    assert str(Tolerance.parse("12.5%")) == "12.5%"
    assert str(Tolerance.parse("64KiB")) == "64.0 KiB"
    assert str(DEFAULT_TOLERANCE) == "25%"


# --- compare -----------------------------------------------------------------------------------

TOLERANCE = Tolerance(relative=0.25, absolute=64 * KiB)
WHERE = "__soak_baselines__/test_shop.json"


def test_growth_over_the_baseline_and_tolerance_is_over() -> None:
    result = compare(
        make(growth_per_request=5.0),
        observed_growth=1.2 * MiB,
        requests_measured=2263,
        tolerance=TOLERANCE,
        path=WHERE,
    )
    assert result.status == "over"
    assert result.expected == 5.0 * 2263
    assert result.allowed == 11_315 * 1.25 + 65_536
    assert result.observed == 1.2 * MiB
    assert result.message == (
        "+1.2 MiB observed over 2,263 requests (556 B/request) > 77.8 KiB allowed: "
        "baseline 5.0 B/request (11.0 KiB expected) + 25% + 64.0 KiB tolerance "
        f"({WHERE}, {LINUX_KEY})"
    )


def test_growth_within_the_tolerance_is_within() -> None:
    result = compare(
        make(growth_per_request=5.0),
        observed_growth=50_000,
        requests_measured=2263,
        tolerance=TOLERANCE,
        path=WHERE,
    )
    assert result.status == "within"
    assert result.message.startswith("+48.8 KiB observed over 2,263 requests (22.1 B/request) <=")


def test_exactly_the_allowance_is_within() -> None:
    result = compare(
        make(growth_per_request=10.0),
        observed_growth=1250.0,
        requests_measured=100,
        tolerance=Tolerance(0.25, 0.0),
        path=WHERE,
    )
    assert (result.status, result.allowed) == ("within", 1250.0)


def test_much_less_growth_than_the_baseline_is_better_and_says_to_update() -> None:
    result = compare(
        make(growth_per_request=500.0),
        observed_growth=100_000,
        requests_measured=2000,
        tolerance=TOLERANCE,
        path=WHERE,
    )
    assert result.status == "better"
    assert (result.expected, result.allowed) == (1_000_000, 1_250_000 + 65_536)
    assert result.message == (
        "+97.7 KiB observed over 2,000 requests (50.0 B/request) is much better than the "
        "baseline 500 B/request (976.6 KiB expected), beyond its tolerance of 25% + 64.0 KiB: "
        f"run --soak-update-baselines to record it ({WHERE}, {LINUX_KEY})"
    )


def test_an_improvement_within_the_tolerance_is_within() -> None:
    # expected 1,000,000; better needs less than 1,000,000 - 250,000 - 65,536 = 684,464
    kwargs: dict[str, Any] = {"requests_measured": 2000, "tolerance": TOLERANCE, "path": WHERE}
    baseline = make(growth_per_request=500.0)
    assert compare(baseline, observed_growth=684_465, **kwargs).status == "within"
    assert compare(baseline, observed_growth=684_463, **kwargs).status == "better"


def test_a_baseline_inside_the_noise_is_never_much_better() -> None:
    result = compare(
        make(growth_per_request=20.0),  # 40,000 expected < 64 KiB absolute tolerance
        observed_growth=-5 * MiB,
        requests_measured=2000,
        tolerance=TOLERANCE,
        path=WHERE,
    )
    assert result.status == "within"


def test_a_shrinking_baseline_allows_what_a_flat_one_does() -> None:
    """A baseline whose floors fell must not make a flat run (or its noise) a regression."""
    flat = compare(
        make(growth_per_request=-10.0),
        observed_growth=0.0,
        requests_measured=1000,
        tolerance=Tolerance(0.5, 1000.0),
        path=WHERE,
    )
    assert (flat.expected, flat.allowed, flat.status) == (-10_000, 1000, "within")
    grown = compare(
        make(growth_per_request=-10.0),
        observed_growth=1001.0,
        requests_measured=1000,
        tolerance=Tolerance(0.5, 1000.0),
        path=WHERE,
    )
    assert grown.status == "over"


def test_comparing_allocated_blocks_speaks_in_blocks() -> None:
    result = compare(
        make(metric="blocks", growth_per_request=0.5),
        observed_growth=25_000,
        requests_measured=2000,
        tolerance=Tolerance(0.0, 1000.0),
        path=WHERE,
    )
    assert result.status == "over"
    assert result.message.startswith(
        "+25,000 blocks observed over 2,000 requests (12.5 blocks/request) > 2,000 blocks "
        "allowed: baseline 0.5 blocks/request (1,000 blocks expected) + 1,000 blocks tolerance"
    )


# --- environment -------------------------------------------------------------------------------


def test_the_current_environment_is_filled_in() -> None:
    env = Environment.current()
    assert all([env.os, env.arch, env.python, env.cpu])
    assert env.label == ""
    assert env.python == f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    assert env.key == Environment.current().key
    assert env.key.count("/") == 3
    assert env.key == env.key.lower()


def test_the_label_appears_in_the_key_only_when_set() -> None:
    assert LINUX.key == LINUX_KEY
    labelled = dataclasses.replace(LINUX, label="Nightly box")
    assert labelled.key == f"{LINUX_KEY}/nightly-box"
    assert Environment.current("nightly").key.endswith("/nightly")
    assert Environment.current("  ").key == Environment.current().key


@pytest.mark.parametrize(
    ("model", "slug"),
    [
        ("Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz", "intel-core-i7-9750h"),
        ("AMD EPYC 7R13 Processor", "amd-epyc-7r13"),
        ("Apple M2 Pro", "apple-m2-pro"),
        ("", "unknown"),
    ],
)
def test_cpu_models_become_readable_slugs(model: str, slug: str) -> None:
    assert dataclasses.replace(LINUX, cpu=model).key == f"linux/x86_64/cpython-3.11/{slug}"


def test_differences_name_the_fields_that_differ() -> None:
    other = Environment("Linux", "x86_64", "cpython-3.12", "AMD EPYC 7R13 Processor", "ci")
    assert LINUX.differences(other) == [
        "python cpython-3.11 != cpython-3.12",
        "cpu intel-xeon-platinum-8375c != amd-epyc-7r13",
        "label (none) != ci",
    ]
    same_chip = dataclasses.replace(LINUX, cpu="Intel Xeon Platinum 8375C CPU @ 3.50GHz")
    assert LINUX.differences(same_chip) == []


# --- traffic fingerprint -----------------------------------------------------------------------


def test_traffic_fingerprint_follows_the_requests_and_their_order() -> None:
    a, b = ("GET", "/cart", b""), ("POST", "/cart", b'{"id": 1}')
    fingerprint = traffic_fingerprint([a, b])
    assert fingerprint.startswith("sha256:") and len(fingerprint) == len("sha256:") + 16
    assert traffic_fingerprint(iter([a, b])) == fingerprint
    assert traffic_fingerprint([b, a]) != fingerprint
    assert traffic_fingerprint([("GET", "/ab", b"")]) != traffic_fingerprint([("GET", "/a", b"b")])


# --- properties --------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10**12)
words = st.text(max_size=20)
environments = st.builds(Environment, words, words, words, words, words)
phases = st.builds(PhaseRecord, words, counts, finite, st.none() | finite)
any_baseline = st.builds(
    Baseline,
    test=st.text(min_size=1, max_size=30),
    environment=environments,
    metric=st.sampled_from(["heap", "uss", "rss", "blocks"]),
    growth_per_request=finite,
    growth=finite,
    requests_measured=counts,
    requests=counts,
    profile=words,
    peak_rps=positive,
    duration=positive,
    mode=words,
    traffic_path=words,
    traffic_fingerprint=words,
    verdict=words,
    phases=st.lists(phases, max_size=4).map(tuple),
    plugin_version=words,
)
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@fixture_ok
@given(items=st.lists(any_baseline, min_size=1, max_size=3))
def test_any_finite_baseline_survives_save_and_load(tmp_path: Path, items: list[Baseline]) -> None:
    store = BaselineFile(tmp_path / BASELINE_DIR / "test_prop.json")
    for item in items:
        store.put(item)
    store.save()
    loaded = BaselineFile.load(store.path)
    assert loaded.dumps() == store.dumps()
    for item in items:
        key = item.environment.key
        assert loaded.get(item.test, key) == store.get(item.test, key) is not None


@given(item=any_baseline)
def test_a_baseline_crosses_to_the_xdist_controller_unchanged(item: Baseline) -> None:
    assert Baseline.from_json(json.loads(json.dumps(item.to_json()))) == item
    assert Baseline.from_json(item.to_json()) == item


@fixture_ok
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_are_loaded_or_a_baseline_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "test_bytes.json"
    path.write_bytes(content)
    try:
        BaselineFile.load(path)
    except BaselineError as exc:
        assert str(path) in str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded document: ``("tests", "test_shop", key, "phases", 0)``."""
    children: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return [at]
    return [at, *(p for key, child in children for p in _leaves(child, (*at, key)))]


@fixture_ok
@given(data=st.data(), replacement=json_values)
def test_any_value_anywhere_in_a_valid_file_loads_or_is_a_baseline_error(
    tmp_path: Path, data: st.DataObject, replacement: Any
) -> None:
    document = _valid_document()
    where = data.draw(st.sampled_from(_leaves(document)[1:]))
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = replacement
    path = tmp_path / "test_edit.json"
    path.write_text(json.dumps(document))
    try:
        BaselineFile.load(path)
    except BaselineError as exc:
        assert str(path) in str(exc)
