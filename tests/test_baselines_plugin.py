"""Baselines as a user meets them: pytester runs that record, compare, prune and merge."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.helpers import copy_test_services, item_traffic_lines

SHORT = ("--soak-duration=4s", "-p", "no:cacheprovider")

LEAKY_MODULE = """
    import os
    import pytest
    from apps.services import leaky_app

    @pytest.mark.soak(profile="constant", peak_rps=100)
    def test_leaky(soak, replay_traffic):
        soak.run(leaky_app(int(os.environ.get("LEAK", "0"))), replay_traffic("items.jsonl"))
"""


def _write(pytester: pytest.Pytester, name: str, body: str) -> None:
    pytester.makepyfile(**{name: textwrap.dedent(body).lstrip()})


def _baseline_file(pytester: pytest.Pytester, module: str) -> Path:
    return pytester.path / "__soak_baselines__" / f"{module}.json"


def test_run_then_update_then_rerun(soak_project: pytest.Pytester) -> None:
    _write(soak_project, "test_shop", LEAKY_MODULE)
    first = soak_project.runpytest_subprocess(*SHORT)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(
        ["*test_leaky: baseline: no baseline yet: run with --soak-update-baselines*"]
    )
    assert not _baseline_file(soak_project, "test_shop").exists()

    update = soak_project.runpytest_subprocess(*SHORT, "--soak-update-baselines")
    update.assert_outcomes(passed=1)
    update.stdout.fnmatch_lines(
        ["soak baselines written: *__soak_baselines__*test_shop.json (test_leaky)"]
    )
    document = json.loads(_baseline_file(soak_project, "test_shop").read_text())
    [environment] = document["tests"]["test_leaky"]
    assert "cpython-3" in environment

    rerun = soak_project.runpytest_subprocess(*SHORT, "--soak-json=out.json")
    rerun.assert_outcomes(passed=1)
    assert "no baseline" not in rerun.stdout.str()
    [result] = json.loads((soak_project.path / "out.json").read_text())["results"]
    assert result["baseline"]["status"] == "within"
    assert result["baseline"]["allowed"] > result["baseline"]["observed"]


def test_an_inflated_leak_fails_against_the_baseline_with_both_numbers(
    soak_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(soak_project, "test_shop", LEAKY_MODULE)
    monkeypatch.setenv("LEAK", "1024")  # a known, accepted growth: recorded, then within it
    recorded = soak_project.runpytest_subprocess(*SHORT, "--soak-update-baselines")
    recorded.assert_outcomes(passed=1)
    [entry] = json.loads(_baseline_file(soak_project, "test_shop").read_text())["tests"][
        "test_leaky"
    ].values()
    assert entry["verdict"] == "leak"  # what the rule said, not the pass of recording it
    accepted = soak_project.runpytest_subprocess(*SHORT)
    accepted.assert_outcomes(passed=1)

    monkeypatch.setenv("LEAK", "4096")
    inflated = soak_project.runpytest_subprocess(*SHORT)
    inflated.assert_outcomes(failed=1)
    inflated.stdout.fnmatch_lines(
        [
            "*SoakFailure: soak verdict: LEAK*",
            "*baseline: *observed over * requests (*KiB/request) > *allowed: baseline *KiB/request "
            "(*expected) + 25% + 16.0 KiB tolerance (__soak_baselines__*test_shop.json*",
        ]
    )

    monkeypatch.setenv("LEAK", "0")
    fixed = soak_project.runpytest_subprocess(*SHORT)
    fixed.assert_outcomes(passed=1)
    fixed.stdout.fnmatch_lines(
        ["*test_leaky: baseline: *much better than the baseline*--soak-update-baselines*"]
    )


def test_growth_over_the_baseline_fails_even_without_a_steady_trend(
    soak_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regression is judged against the committed figure, not only by the leak rule: one
    step of 200 KiB in a measured cycle (request 300 of 396; the warm-up is 44), then flat
    cycles, is no leak, but it is 200 KiB over a healthy baseline."""
    _write(soak_project, "test_shop", LEAKY_MODULE)
    monkeypatch.setenv("LEAK", "0")
    soak_project.runpytest_subprocess(*SHORT, "--soak-update-baselines").assert_outcomes(passed=1)
    stepped = LEAKY_MODULE.replace('leaky_app(int(os.environ.get("LEAK", "0")))', "step_app(300)")
    _write(soak_project, "test_shop", stepped.replace("import leaky_app", "import step_app"))
    result = soak_project.runpytest_subprocess(*SHORT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*SoakFailure: soak verdict: REGRESSION — memory growth over the baseline: *allowed*"]
    )


def test_prune_removes_vanished_tests_but_keeps_deselected_ones(
    soak_project: pytest.Pytester,
) -> None:
    three = """
        import pytest
        from apps.services import healthy_app

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_a(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_b(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_c(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))

        @pytest.mark.soak(profile="constant", peak_rps=100, baseline=False)
        def test_not_baselined(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_fails_after_the_run(soak, replay_traffic):
            result = soak.run(healthy_app(), replay_traffic("items.jsonl"), check=False)
            assert result.run.sent == 0, "a failed test is no baseline"
    """
    _write(soak_project, "test_mod", three)
    update = soak_project.runpytest_subprocess(*SHORT, "--soak-update-baselines")
    update.assert_outcomes(passed=4, failed=1)
    update.stdout.fnmatch_lines(
        ["soak baseline not recorded for test_mod.py::test_fails_after_the_run: the test failed"]
    )
    path = _baseline_file(soak_project, "test_mod")
    assert sorted(json.loads(path.read_text())["tests"]) == ["test_a", "test_b", "test_c"]

    _write(
        soak_project,
        "test_mod",
        re.sub(
            r"@pytest.mark.soak[^\n]*\ndef test_b.*?\n\n", "", textwrap.dedent(three), flags=re.S
        ),
    )
    pruned = soak_project.runpytest_subprocess(
        "--collect-only", "-q", "-k", "test_a", "--soak-prune"
    )
    assert pruned.ret == 0
    pruned.stdout.fnmatch_lines(["soak baselines pruned from *test_mod.json: test_b"])
    assert sorted(json.loads(path.read_text())["tests"]) == ["test_a", "test_c"]

    # Selecting single tests cannot tell "removed" from "left out": nothing is pruned.
    narrowed = soak_project.runpytest_subprocess(
        "--collect-only", "-q", "test_mod.py::test_a", "--soak-prune"
    )
    narrowed.stdout.fnmatch_lines(["soak baselines not pruned: this run selected single tests*"])
    assert sorted(json.loads(path.read_text())["tests"]) == ["test_a", "test_c"]


def test_another_environment_is_not_compared_and_the_summary_says_why(
    soak_project: pytest.Pytester,
) -> None:
    _write(soak_project, "test_shop", LEAKY_MODULE)
    soak_project.runpytest_subprocess(
        *SHORT, "--soak-update-baselines", "--soak-env-label=big-box"
    ).assert_outcomes(passed=1)
    here = soak_project.runpytest_subprocess(*SHORT)
    here.assert_outcomes(passed=1)
    here.stdout.fnmatch_lines(
        [
            "*test_leaky: baseline: no baseline for this environment (*) in *test_shop.json; "
            "it has: */big-box*compare skipped, not guessed"
        ]
    )
    strict = soak_project.runpytest_subprocess(*SHORT, "--soak-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(
        ["*soak verdict: ERROR — --soak-strict: no baseline for this environment*"]
    )


def test_a_corrupt_baseline_file_is_a_clear_error(soak_project: pytest.Pytester) -> None:
    _write(soak_project, "test_shop", LEAKY_MODULE)
    path = _baseline_file(soak_project, "test_shop")
    path.parent.mkdir()
    path.write_text('{"pytest-soak baselines": 1, "tests": {"test_leaky": ')
    result = soak_project.runpytest_subprocess(*SHORT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*BaselineError: *test_shop.json*"])
    assert "Traceback" not in result.stdout.str()


MODULE_ONE = """
    import pytest
    from apps.services import leaky_app

    @pytest.mark.soak(profile="constant", peak_rps=100)
    def test_first(soak, replay_traffic):
        soak.run(leaky_app(2458), replay_traffic("items.jsonl"))

    @pytest.mark.soak(profile="constant", peak_rps=100)
    def test_second(soak, replay_traffic):
        soak.run(leaky_app(6208), replay_traffic("items.jsonl"))

    def test_not_a_soak_test():
        assert True
"""
MODULE_TWO = """
    import pytest
    from apps.services import leaky_app

    @pytest.mark.soak(profile="constant", peak_rps=100)
    def test_third(soak, replay_traffic):
        soak.run(leaky_app(2458), replay_traffic("items.jsonl"))
"""


@pytest.mark.parametrize("workers", ["2"])
def test_xdist_writes_the_same_baseline_files_as_a_single_process(
    pytester: pytest.Pytester, workers: str
) -> None:
    """Leaks chosen so every rounded figure sits mid-way between rounding steps."""
    files = {}
    for mode in ("0", workers):
        project = pytester.mkdir(f"run-n{mode}")
        copy_test_services(project)
        (project / "items.jsonl").write_text(item_traffic_lines(400))
        (project / "test_one.py").write_text(textwrap.dedent(MODULE_ONE).lstrip())
        (project / "test_two.py").write_text(textwrap.dedent(MODULE_TWO).lstrip())
        result = pytester.runpytest_subprocess(
            str(project), "-n", mode, "-v", "--soak-duration=8s", "--soak-update-baselines",
            "-p", "no:cacheprovider", "--rootdir", str(project),
        )  # fmt: skip
        result.assert_outcomes(passed=4)
        if mode != "0":
            # Every soak test is in pytest-soak's group: one worker ran them, in order, so each
            # met the same process history as under -n 0 (absolute floors depend on it).
            soak_workers = {
                line.split("]")[0]
                for line in result.outlines
                if "PASSED" in line and "test_not_a_soak_test" not in line
            }
            assert len(soak_workers) == 1, result.outlines
        files[mode] = {
            p.name: p.read_bytes() for p in sorted((project / "__soak_baselines__").glob("*.json"))
        }
    assert sorted(files["0"]) == ["test_one.json", "test_two.json"]
    assert files["0"] == files[workers]


def test_a_bad_tolerance_from_the_ini_is_an_error_before_any_load(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        soak_defaults =
            tolerance = twenty percent
        """
    )
    _write(
        pytester,
        "test_tol",
        """
        import pytest

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_tol(soak):
            raise AssertionError("must not run")
        """,
    )
    result = pytester.runpytest("-n", "0", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*tolerance='twenty percent'*"])


def test_a_users_own_xdist_group_does_not_change_the_test_id(soak_project: pytest.Pytester) -> None:
    _write(
        soak_project,
        "test_grouped",
        """
        import pytest
        from apps.services import healthy_app

        pytestmark = pytest.mark.xdist_group("db")

        @pytest.mark.soak(profile="constant", peak_rps=100)
        def test_db(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))
        """,
    )
    result = soak_project.runpytest_subprocess(*SHORT, "-n", "2", "--soak-json=out.json")
    result.assert_outcomes(passed=1)
    [entry] = json.loads((soak_project.path / "out.json").read_text())["results"]
    assert entry["test_id"] == "test_grouped.py::test_db"  # not "...::test_db@db"
    assert entry["baseline"]["test"] == "test_db"
