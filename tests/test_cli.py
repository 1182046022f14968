"""``pytest-soak report`` and ``pytest-soak compare``, called as a user calls them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_soak.cli import main
from pytest_soak.report.json_report import write_json
from tests.helpers import ROOT, cut_short_dict, soak_result_dict


def _results(path: Path, *results: dict[str, Any]) -> Path:
    """A results file as ``--soak-json`` writes it (schema, metadata, rounded figures)."""
    return write_json(path, list(results), {"version": "0", "started": "2026-11-30T00:00:00Z"})


@pytest.fixture
def before(tmp_path: Path) -> Path:
    healthy = soak_result_dict("t.py::test_a", verdict="ok", per_request=1.0, extras=False)
    return _results(tmp_path / "old.json", healthy)


def test_report_renders_the_html_from_saved_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(tmp_path / "results.json", soak_result_dict())
    assert main(["report", str(results), "-o", str(tmp_path / "out" / "r.html")]) == 0
    page = (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert "tests/test_shop.py::test_shop" in page and "<h3>Memory over time</h3>" in page
    assert (
        capsys.readouterr().out
        == f"soak report written to {tmp_path / 'out' / 'r.html'} (1 test)\n"
    )


def test_report_draws_a_run_cut_short_from_saved_json(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", [soak_result_dict()], cut_short=[cut_short_dict()])
    assert main(["report", str(path)]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="cut-short-0"' in page and "tests/t.py::test_cut" in page
    assert '"id":"chart-cut-0-memory-1"' in page  # heap and rss, as they were sampled


def test_report_defaults_to_the_results_path_with_html(tmp_path: Path) -> None:
    results = _results(tmp_path / "nightly.json", soak_result_dict())
    assert main(["report", str(results)]) == 0
    assert (tmp_path / "nightly.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_compare_unchanged_exits_0(before: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(before), str(before)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "t.py::test_a"
    assert out[1].startswith("  old: OK ") and out[2].startswith("  new: OK ")
    assert out[3:] == ["  changed: nothing", "no test got worse (1 compared)"]


def test_a_verdict_gone_from_ok_to_leak_exits_1(
    before: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaking = soak_result_dict("t.py::test_a", verdict="leak", per_request=1.0, extras=False)
    after = _results(tmp_path / "new.json", leaking)
    assert main(["compare", str(before), str(after)]) == 1
    out = capsys.readouterr().out
    assert "changed: verdict ok → leak (worse)" in out
    assert out.endswith("1 of 1 test got worse\n")


def test_growth_per_request_past_the_tolerance_exits_1(
    before: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grown = soak_result_dict("t.py::test_a", verdict="ok", per_request=100.0, extras=False)
    after = _results(tmp_path / "new.json", grown)
    assert main(["compare", str(before), str(after)]) == 1
    assert (
        "changed: growth per request 1 B/request → 100 B/request: rose 99 B/request, over the "
        "tolerance 64 B/request (worse)" in capsys.readouterr().out
    )
    # a wider tolerance lets the same rise pass
    assert main(["compare", "--tolerance=128B", str(before), str(after)]) == 0
    assert "(within the tolerance 128 B/request)" in capsys.readouterr().out


def test_the_relative_tolerance_scales_with_the_old_growth(tmp_path: Path) -> None:
    old = soak_result_dict("t.py::test_a", verdict="ok", per_request=1000.0, extras=False)
    new = soak_result_dict("t.py::test_a", verdict="ok", per_request=1200.0, extras=False)
    paths = [str(_results(tmp_path / f"{n}.json", r)) for n, r in (("old", old), ("new", new))]
    assert main(["compare", *paths]) == 0  # +200 B is within 25 % of 1000 B
    assert main(["compare", "--tolerance-percent=10", *paths]) == 1


def test_a_better_verdict_and_tests_in_one_file_only_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _results(
        tmp_path / "old.json",
        soak_result_dict("t.py::test_a", verdict="leak", extras=False),
        soak_result_dict("t.py::test_gone", verdict="ok", extras=False),
    )
    new = _results(
        tmp_path / "new.json",
        soak_result_dict("t.py::test_a", verdict="ok", per_request=1.0, extras=False),
        soak_result_dict("t.py::test_new", verdict="ok", extras=False),
    )
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "changed: verdict leak → ok;" in out
    assert "changed: not in the new file" in out
    assert "changed: only in the new file (a new test)" in out
    assert out.endswith("no test got worse (3 compared)\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "missing.json: no such file; give a results file written by pytest --soak-json"),
        ("<html>", "bad.json: not JSON (line 1, column 1: Expecting value); give a results file"),
        ('{"a": 1}', "bad.json: JSON, but not pytest-soak results (no 'results' list of tests"),
        (b"\xff\xfe", "bad.json: not text (not UTF-8), so not JSON; give a results file"),
    ],
)
def test_bad_input_names_the_file_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    path = tmp_path / ("missing.json" if content is None else "bad.json")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    for command in (["report", str(path)], ["compare", str(path), str(path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"pytest-soak {command[0]}: {tmp_path}{os.sep}")
        assert message in err
        assert "Traceback" not in err


def test_a_bad_tolerance_is_a_usage_error(before: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--tolerance=lots", str(before), str(before)]) == 2
    assert "--tolerance='lots' is not a size" in capsys.readouterr().err


def test_the_pytest_soak_command_is_the_cli_main() -> None:
    from importlib.metadata import entry_points

    [command] = entry_points(group="console_scripts", name="pytest-soak")
    assert command.value == "pytest_soak.cli:main"


def test_the_module_runs_as_the_installed_command(before: Path, tmp_path: Path) -> None:
    """``python -m pytest_soak.cli``, as the ``pytest-soak`` entry point runs ``main``."""
    leaking = soak_result_dict("t.py::test_a", verdict="leak", per_request=1.0, extras=False)
    after = _results(tmp_path / "new.json", leaking)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest_soak.cli", "compare", str(before), str(after)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "verdict ok → leak (worse)" in done.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_soak.cli", "report", str(tmp_path / "nope.json")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr == (
        f"pytest-soak report: {tmp_path / 'nope.json'}: no such file; give a results file "
        "written by pytest --soak-json=PATH\n"
    )
