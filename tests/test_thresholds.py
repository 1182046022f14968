"""Thresholds (``thresholds=`` on the soak marker): the parser, the judge on hand-made phases,
the reports' renderings, and the plugin as a user meets it: a slow spike fails ``p99[spike]``,
injected errors fail ``errors``, bad syntax is an error before any load."""

from __future__ import annotations

import contextlib
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_soak.analysis import PhaseSummary
from pytest_soak.analysis.thresholds import (
    ThresholdOutcome,
    crossed,
    judge_thresholds,
    verdict_suffix,
)
from pytest_soak.baselines import Baseline, BaselineFile, Environment, PhaseRecord
from pytest_soak.baselines.comparison import compare_latency
from pytest_soak.driver.records import PhaseStats
from pytest_soak.report.failure import render_thresholds
from pytest_soak.report.json_report import (
    public_result,
    threshold_entry,
    verdict_text,
)
from pytest_soak.report.junit import junit_properties
from pytest_soak.report.openmetrics import render_openmetrics
from pytest_soak.report.terminal import threshold_line
from pytest_soak.settings import MARKER_KEYS, resolve
from pytest_soak.thresholds import (
    DEFAULT_LATENCY_TOLERANCE,
    FIGURES,
    LatencyTolerance,
    Threshold,
    ThresholdError,
    parse_threshold,
    parse_thresholds,
)

SPIKE_PHASES = ("night", "spike", "sustained", "decline", "late-night")

# -- the parser ---------------------------------------------------------------------------------


def test_the_issues_example_parses_with_units_and_default_comparisons() -> None:
    parsed = parse_thresholds(
        {
            "p99": "250ms",
            "p95[spike]": "150ms",
            "errors": "1%",
            "late": "0.5%",
            "rps[sustained]": ">= 0.98",
        },
        phases=SPIKE_PHASES,
    )
    assert parsed == (
        Threshold("p99", "p99", None, "<=", 0.25),
        Threshold("p95[spike]", "p95", "spike", "<=", 0.15),
        Threshold("errors", "errors", None, "<=", 0.01),
        Threshold("late", "late", None, "<=", 0.005),
        Threshold("rps[sustained]", "rps", "sustained", ">=", 0.98),
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("p50", "0.3s", ("<=", 0.3)),
        ("p99.9", "< 1s", ("<", 1.0)),
        ("P90", "1500us", ("<=", 0.0015)),
        ("errors", 0.01, ("<=", 0.01)),
        ("errors", "0", ("<=", 0.0)),
        ("late", "< 2.5%", ("<", 0.025)),
        ("rps", 0.98, (">=", 0.98)),
        ("rps", "98%", (">=", 0.98)),
        ("rps", "> 0.9", (">", 0.9)),
        ("rps", "=> 0.9", (">=", 0.9)),
    ],
)
def test_values_with_units_and_comparisons(
    key: str, value: Any, expected: tuple[str, float]
) -> None:
    threshold = parse_threshold(key, value)
    assert (threshold.comparison, threshold.limit) == pytest.approx(expected)


def test_text_form_for_ini_soak_defaults() -> None:
    assert parse_thresholds("p99: 250ms, p95[spike]: 150ms; errors: 1%") == (
        Threshold("p99", "p99", None, "<=", 0.25),
        Threshold("p95[spike]", "p95", "spike", "<=", 0.15),
        Threshold("errors", "errors", None, "<=", 0.01),
    )
    assert parse_thresholds(None) == () == parse_thresholds({})


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"p98": "1ms"}, ["'p98' is not a threshold key", "p99.9", "errors", "rps"]),
        ({"p99": 250}, ["'p99': 250", "needs its unit", "'250ms', '0.3s'"]),
        ({"p99": "fast"}, ["'p99': 'fast'", "not a latency", "'250ms'"]),
        ({"p99": "0ms"}, ["longer than zero"]),
        ({"errors": "> 1%"}, ["'errors': '> 1%'", "at most ('<' or '<=')"]),
        ({"errors": "200%"}, ["at most 100%"]),
        ({"errors": "lots"}, ["not a number or a percentage", "'1%', '0.01'"]),
        ({"rps": "<= 2"}, ["at least ('>=' or '>')", "'>= 0.98'"]),
        ({"p99": None}, ["'p99': None", "not a limit"]),
        ({"p99": "1ms", "P99": "2ms"}, ["the same threshold"]),
        ({1: "1ms"}, ["the key must be text"]),
        (["p99"], ["must be a dict", "{'p99': '250ms'"]),
        ("p99 250ms", ["is not 'key: limit'"]),
    ],
)
def test_bad_thresholds_name_the_key_the_value_and_the_accepted_forms(
    value: Any, says: list[str]
) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_thresholds(value)
    for text in says:
        assert text in str(caught.value)


def test_an_unknown_phase_lists_the_profiles_phases() -> None:
    with pytest.raises(ThresholdError, match=r"'p99\[spiek\]' names phase 'spiek'.*"):
        parse_thresholds({"p99[spiek]": "1s"}, phases=SPIKE_PHASES)
    with pytest.raises(ThresholdError, match="night, spike, sustained, decline, late-night"):
        parse_thresholds({"p99[spiek]": "1s"}, phases=SPIKE_PHASES)


@given(key=st.text(max_size=20), value=st.one_of(st.text(max_size=20), st.floats(), st.none()))
def test_the_parser_raises_nothing_but_its_own_error(key: str, value: Any) -> None:
    with contextlib.suppress(ThresholdError):
        parse_thresholds({key: value}, phases=SPIKE_PHASES)


@given(text=st.text(max_size=60))
def test_the_text_form_raises_nothing_but_its_own_error(text: str) -> None:
    with contextlib.suppress(ThresholdError):
        parse_thresholds(text)


@given(
    figure=st.sampled_from(sorted(FIGURES)),
    phase=st.one_of(st.none(), st.sampled_from(SPIKE_PHASES)),
    limit=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False),
    strict=st.booleans(),
)
def test_a_threshold_written_back_parses_to_itself(
    figure: str, phase: str | None, limit: float, strict: bool
) -> None:
    upper = FIGURES[figure].upper
    comparison = ("<" if strict else "<=") if upper else (">" if strict else ">=")
    threshold = Threshold(
        figure + (f"[{phase}]" if phase else ""),
        figure,
        phase,
        comparison,  # type: ignore[arg-type]
        limit,
    )
    assert parse_threshold(threshold.key, threshold.to_text()) == threshold


def test_the_marker_key_and_resolve() -> None:
    assert "thresholds" in MARKER_KEYS
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 50, "thresholds": {"p99[spike]": "20ms"}},
        mode="quick",
    )
    assert settings.thresholds == (Threshold("p99[spike]", "p99", "spike", "<=", 0.02),)
    with pytest.raises(ThresholdError, match="its phases: steady"):
        resolve({"peak_rps": 50, "thresholds": {"p99[spike]": "20ms"}}, mode="quick")
    recorded = resolve(
        {"replay": "recorded", "thresholds": {"errors[recorded]": "0%"}}, mode="quick"
    )
    assert recorded.thresholds[0].phase == "recorded"


# -- the judge ----------------------------------------------------------------------------------


def _phase(name: str, latencies: list[float], *, errors: int = 0, late: int = 0) -> PhaseStats:
    stats = PhaseStats(name, 0, planned_seconds=10.0, expected=float(len(latencies)))
    for seconds in latencies:
        stats.latency.record(seconds)
    stats.sent = len(latencies)
    stats.late = late
    if errors:
        stats.errors["5xx"] = errors
    stats.first_intended, stats.last_intended = 0.0, 9.0
    stats.first_sent_at, stats.last_sent_at = 0.0, 10.0
    return stats


def test_a_phase_threshold_is_judged_on_its_phase_and_the_run_on_merged_histograms() -> None:
    quiet = _phase("night", [0.010] * 990)
    spike = _phase("spike", [0.010] * 90 + [0.300] * 10, errors=3)
    thresholds = parse_thresholds(
        {"p99[night]": "20ms", "p95[spike]": "100ms", "p99": "100ms", "errors": "0.2%"}
    )
    night, in_spike, whole, errors = judge_thresholds(thresholds, [quiet, spike])
    assert night.passed and night.observed == pytest.approx(0.010, rel=0.02)
    assert not in_spike.passed and in_spike.observed == pytest.approx(0.300, rel=0.02)
    assert in_spike.requests == 100
    # merged: 10 slow of 1,090 requests is under 1%, so the run's p99 is fast; an average of
    # the phases' p99 (10 ms and 300 ms) would have said 155 ms
    assert whole.passed and whole.observed == pytest.approx(0.010, rel=0.02)
    assert errors.observed == pytest.approx(3 / 1090) and not errors.passed
    assert [o.name for o in crossed([night, in_spike, whole, errors])] == ["p95[spike]", "errors"]


def test_late_counts_unsent_requests_and_rps_is_pace_times_sent_share() -> None:
    stats = _phase("steady", [0.001] * 100, late=4)
    stats.unsent = 1
    late, rps = judge_thresholds(parse_thresholds({"late": "1%", "rps": ">= 0.95"}), [stats])
    assert late.observed == pytest.approx(5 / 101) and not late.passed
    assert rps.observed == pytest.approx(0.9 * 100 / 101)
    assert not rps.passed and rps.describe() == "✗ 0.891, limit >= 0.950"


def test_a_threshold_with_nothing_to_judge_fails_and_says_so() -> None:
    empty = PhaseStats("spike", 1, planned_seconds=1.0, expected=0.0)
    [outcome] = judge_thresholds(parse_thresholds({"p99[spike]": "1s"}), [empty])
    assert outcome.observed is None and not outcome.passed
    assert outcome.describe() == "✗ no requests in phase 'spike', limit <= 1000ms"


def test_verdict_suffix() -> None:
    assert verdict_suffix(0, 0) == ""
    assert verdict_suffix(1, 0) == "the threshold kept"
    assert verdict_suffix(3, 0) == "all 3 thresholds kept"
    assert verdict_suffix(3, 1) == "1 threshold crossed"
    assert verdict_suffix(3, 2) == "2 thresholds crossed"


# -- the renderings, from result dicts ---------------------------------------------------------


def _outcomes() -> list[ThresholdOutcome]:
    return [
        ThresholdOutcome("p99", "p99", None, "<=", 0.25, 0.2123456, True, 1000),
        ThresholdOutcome("errors[spike]", "errors", "spike", "<=", 0.01, 0.021, False, 200),
    ]


def _result(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "test_id": "test_x.py::test_x",
        "verdict": "ok",
        "reason": "no growth",
        "metric": "heap",
        "run": {"sent": 1200, "errors": 4, "late": 0, "elapsed_seconds": 4.0},
        "thresholds": [threshold_entry(o) for o in _outcomes()],
    }
    result.update(changes)
    return result


def test_every_rendering_shows_each_threshold_with_observed_and_limit() -> None:
    result = _result()
    assert verdict_text(result) == "OK (memory), 1 threshold crossed"
    assert verdict_text(_result(thresholds=[])) == "OK"
    assert threshold_line(result) == (
        "thresholds ✓ p99 212ms <= 250ms, ✗ errors[spike] 2.10%, limit <= 1.00%"
    )
    assert render_thresholds(result["thresholds"]) == [
        "  thresholds (1 kept, 1 crossed; judged once on the run's phases merged over its cycles):",
        "    ✓ p99            212ms <= 250ms",
        "    ✗ errors[spike]  2.10%, limit <= 1.00%",
    ]
    properties = dict(junit_properties(result))
    assert properties["soak_threshold_p99"] == "✓ 212ms <= 250ms"
    assert properties["soak_threshold_errors[spike]"] == "✗ 2.10%, limit <= 1.00%"
    metrics = render_openmetrics([result])
    assert 'soak_threshold_passed{test="test_x.py::test_x",threshold="p99"} 1' in metrics
    assert 'soak_threshold_passed{test="test_x.py::test_x",threshold="errors[spike]"} 0' in metrics
    public = public_result(result)["thresholds"][0]
    assert public["observed"] == 0.2123 and public["limit"] == 0.25 and public["passed"] is True


def test_the_html_report_has_a_thresholds_table_and_marks_the_crossed_ones() -> None:
    from pytest_soak.report.html_report import render_html
    from tests.helpers import soak_result_dict

    result = soak_result_dict(verdict="ok", extras=False)
    result["thresholds"] = [threshold_entry(o) for o in _outcomes()]
    page = render_html([result])
    assert "<h3>Thresholds (OK (memory), 1 threshold crossed)</h3>" in page
    assert '<td class="bad">✗</td><td>errors[spike]</td><td>spike</td>' in page
    assert '<td class="good">✓</td><td>p99</td><td>whole run</td><td>212ms &lt;= 250ms</td>' in page
    assert "1 THRESHOLD ✗" in page  # beside the memory verdict, in the overview and the banner
    assert "Thresholds" not in render_html([soak_result_dict(verdict="ok", extras=False)])


# -- the plugin, as a user meets it ------------------------------------------------------------

#: One app, two behaviours by parameter (each is the other's run without its switch): slow
#: (every answer after 150 ms); failing (every tenth answer a 500). Thresholds: p99 of the
#: spike at most 75 ms, errors at most 1%.
SWITCHED_MODULE = textwrap.dedent(
    """
    import asyncio

    import pytest

    from pytest_soak import Profile

    # two phases (few checkpoints: a short test), ramping up to a spike
    SPIKY = Profile.stages([("30m", 60, "quiet"), ("30m", 200, "spike")])

    def make_app(mode):
        count = [0]

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            count[0] += 1
            if mode == "slow":
                await asyncio.sleep(0.15)
            status = 500 if mode == "failing" and count[0] % 10 == 0 else 200
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        return app

    @pytest.mark.soak(profile=SPIKY, thresholds={"p99[spike]": "75ms", "errors": "1%"})
    @pytest.mark.parametrize("mode", ["slow", "failing"])
    def test_shop(soak, replay_traffic, mode):
        result = soak.run(make_app(mode), replay_traffic("items.jsonl"), check=False)
        print(result.explain())
        assert result.passed, result.explain()
    """
).lstrip()


def test_a_slow_spike_and_injected_errors_fail_their_thresholds(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makepyfile(test_shop=SWITCHED_MODULE)
    run = soak_project.runpytest_subprocess(
        "--soak-duration=3s", "-p", "no:cacheprovider", "--soak-json=soak.json", "--junitxml=j.xml"
    )
    run.assert_outcomes(failed=2)
    run.stdout.fnmatch_lines(
        [
            "*soak summary*",
            "*test_shop?failing?*OK (memory), 1 threshold crossed*",
            "*test_shop?slow?*OK (memory), 1 threshold crossed*",
            "*test_shop?failing?: thresholds ✓ p99?spike? *, ✗ errors *%, limit <= 1.00%",
            "*test_shop?slow?: thresholds ✗ p99?spike? *, limit <= 75.0ms, ✓ errors *",
        ]
    )
    # the failure text: the memory verdict first, then the thresholds, limit against observed
    run.stdout.fnmatch_lines(
        ["*soak verdict: * (memory), 1 threshold crossed*", "*✗ p99?spike?  *, limit <= 75.0ms"]
    )
    document = json.loads((soak_project.path / "soak.json").read_text())
    by_mode = {r["test_id"].split("[")[1].rstrip("]"): r for r in document["results"]}
    outcomes = {
        mode: {t["name"]: t["passed"] for t in result["thresholds"]}
        for mode, result in by_mode.items()
    }
    assert outcomes == {
        "slow": {"p99[spike]": False, "errors": True},
        "failing": {"p99[spike]": True, "errors": False},
    }
    slow = by_mode["slow"]["thresholds"][0]
    assert slow["phase"] == "spike" and slow["observed"] >= 0.15 and slow["limit"] == 0.075
    assert slow["requests"] > 0 and slow["kind"] == "latency"
    for result in by_mode.values():
        assert result["verdict"] not in ("leak", "regression", "error")  # memory: not the cause
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(soak_project.path / "j.xml").getroot().iter("testcase")
    }
    assert cases["test_shop[slow]"]["soak_threshold_p99[spike]"].startswith("✗ ")
    assert cases["test_shop[slow]"]["soak_threshold_errors"].startswith("✓ ")
    assert cases["test_shop[failing]"]["soak_threshold_errors"].startswith("✗ ")


def test_bad_thresholds_are_errors_before_any_load(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        soak_defaults =
            thresholds = p99[lunch]: 100ms
        """
    )
    pytester.makepyfile(
        test_bad=textwrap.dedent(
            """
            import pytest

            @pytest.mark.soak(profile="constant", peak_rps=100, thresholds={"p99": "250"})
            def test_syntax(soak):
                raise AssertionError("must not run")

            @pytest.mark.soak(profile="spike-at-8am", peak_rps=100)
            def test_ini_phase(soak):
                raise AssertionError("must not run")

            @pytest.mark.soak(thresholds={"errors": "> 1%"})
            def test_syntax_without_a_profile(soak):
                raise AssertionError("must not run")
            """
        )
    )
    run = pytester.runpytest("-n", "0", "-p", "no:cacheprovider")
    run.assert_outcomes(errors=3)
    run.stdout.fnmatch_lines_random(
        [
            "*ThresholdError: thresholds: 'p99': '250': not a latency; p99 * takes '250ms'*",
            "*ThresholdError: thresholds: 'p99?lunch?' names phase 'lunch', which the profile "
            "does not have; its phases: night, spike, sustained, decline, late-night*",
            "*ThresholdError: thresholds: 'errors': '> 1%': errors is limited from one side*",
        ]
    )


# -- latency baselines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "relative", "absolute"),
    [
        ("20% + 5ms", 0.2, 0.005),
        ("50%", 0.5, 0.0),
        ("10ms", 0.0, 0.010),
        (("20%", "0.005s"), 0.2, 0.005),
        (None, 0.5, 0.020),  # the default, from docs/latency-variation.txt
    ],
)
def test_latency_tolerance_forms(value: Any, relative: float, absolute: float) -> None:
    tolerance = LatencyTolerance.parse(value)
    assert (tolerance.relative, tolerance.absolute) == pytest.approx((relative, absolute))
    assert tolerance.allowed(0.010) == pytest.approx(0.010 * (1 + relative) + absolute)


@given(value=st.one_of(st.text(max_size=20), st.floats(), st.none(), st.lists(st.text())))
def test_latency_tolerance_raises_nothing_but_our_error(value: Any) -> None:
    with contextlib.suppress(ThresholdError):
        LatencyTolerance.parse(value)


def test_latency_tolerance_on_the_marker_opts_in_and_a_bad_one_names_itself() -> None:
    with pytest.raises(ThresholdError, match=r"latency_tolerance='5' is not a latency tolerance"):
        resolve({"peak_rps": 10, "latency_tolerance": "5"}, mode="quick")

    def tolerance(value: Any) -> LatencyTolerance | None:
        marker = {"peak_rps": 10} if value is None else {"peak_rps": 10, "latency_tolerance": value}
        return resolve(marker, mode="quick").latency_tolerance

    assert tolerance(None) is None and tolerance(False) is None  # latency not recorded
    assert tolerance(True) == DEFAULT_LATENCY_TOLERANCE == LatencyTolerance(0.5, 0.020)
    assert tolerance("20% + 5ms") == LatencyTolerance(0.2, 0.005)


def _summary(
    name: str, requests: int, p50: float, p95: float, p99: float, lag: float = 0.0
) -> PhaseSummary:
    return PhaseSummary(
        name, requests, 10.0, 10.0, p50, p95, p99, 0, 0, 0, {}, "heap", None, None, None, None,
        0.0, send_lag={"p50": 0.0, "p95": lag / 2, "p99": lag},
    )  # fmt: skip


def _baseline(*phases: PhaseRecord) -> Baseline:
    environment = Environment("Linux", "x86_64", "cpython-3.11", "some cpu")
    return Baseline(
        "test_x", environment, "heap", 0.0, 0.0, 100, 100, "stages", 200.0, 3.0, "quick",
        "items.jsonl", "sha256:0", "ok", phases, "0.1.0",
    )  # fmt: skip


def test_latency_is_compared_phase_by_phase_with_the_tolerance() -> None:
    baseline = _baseline(
        PhaseRecord("quiet", 100, 0.0, None, 0.002, 0.004, 0.005, 0.0),
        PhaseRecord("spike", 500, 0.0, None, 0.002, 0.004, 0.006, 0.0),
        PhaseRecord("tiny", 5, 0.0, None, 0.001, 0.001, 0.001, 0.0),
    )
    tolerance = LatencyTolerance.parse("20% + 5ms")
    # quiet's p99 of 100 requests is its slowest request: not compared, however slow
    fine = [_summary("quiet", 100, 0.003, 0.008, 1.0), _summary("spike", 500, 0.002, 0.004, 0.01)]
    within = compare_latency(baseline, fine, tolerance=tolerance, path="b.json")
    assert within.status == "within" and within.compared == 5
    slow = [_summary("spike", 500, 0.002, 0.004, 0.0122), _summary("tiny", 5, 1.0, 1.0, 1.0)]
    over = compare_latency(baseline, slow, tolerance=tolerance, path="b.json")
    assert over.status == "over" and over.compared == 3  # "tiny": too few requests to compare
    [crossed_one] = over.over
    assert crossed_one["phase"] == "spike" and crossed_one["percentile"] == "p99"
    assert crossed_one["allowed"] == pytest.approx(0.006 * 1.2 + 0.005)
    assert "spike p99 12.2ms > 12.2ms allowed (baseline 6.00ms)" in over.message
    old = _baseline(PhaseRecord("spike", 400, 0.0, None))  # recorded before latency was
    assert compare_latency(old, slow, tolerance=tolerance, path="b.json").status == "missing"


def test_latency_over_only_by_the_harness_send_lag_is_not_judged() -> None:
    baseline = _baseline(
        PhaseRecord("quiet", 100, 0.0, None, 0.002, 0.004, 0.005, 0.0),
        PhaseRecord("spike", 500, 0.0, None, 0.002, 0.004, 0.006, 0.0),
    )
    tolerance = LatencyTolerance.parse("20% + 5ms")  # spike p99 allowed 12.2 ms
    # spike p99 0.4 s, but the driver itself sent 0.395 s late at p99: over by its lag only
    stalled = [
        _summary("quiet", 100, 0.002, 0.004, 0.005),
        _summary("spike", 500, 0.002, 0.004, 0.4, 0.395),
    ]
    late = compare_latency(baseline, stalled, tolerance=tolerance, path="b.json")
    assert late.status == "late" and not late.over
    [excused] = late.excused
    assert (excused["phase"], excused["percentile"], excused["lag"]) == ("spike", "p99", 0.395)
    assert "latency not judged in 1 of 5 percentiles: spike p99 400ms > 12.2ms allowed" in (
        late.message
    )
    assert "rerun on a quieter machine" in late.message
    # over by more than its lag: a regression, and the message says how much was lag
    slow = [_summary("spike", 500, 0.002, 0.004, 0.4, 0.3)]
    over = compare_latency(baseline, slow, tolerance=tolerance, path="b.json")
    assert over.status == "over" and [o["percentile"] for o in over.over] == ["p99"]
    assert "spike p99 400ms > 12.2ms allowed (baseline 6.00ms; 300ms of it" in over.message


def test_the_baseline_file_keeps_latency_and_error_rate(tmp_path: Path) -> None:
    store = BaselineFile(tmp_path / "b.json")
    store.put(
        _baseline(PhaseRecord("spike", 400, 0.0, None, 0.0021234, 0.00456, 0.0123456, 0.01234))
    )
    store.save()
    text = (tmp_path / "b.json").read_text()
    assert '"p99": 0.0123' in text and '"error_rate": 0.012' in text
    [phase] = (
        BaselineFile.load(tmp_path / "b.json").get("test_x", _baseline().environment.key).phases
    )
    assert (phase.p50, phase.p95, phase.p99, phase.error_rate) == (0.0021, 0.0046, 0.0123, 0.012)


#: A test module whose app is slow (30 ms an answer) when SOAK_SLOW is set; with SOAK_STALL
#: set, the process it shares with the driver stalls for 250 ms every second (a busy machine).
SLOW_SWITCH_MODULE = textwrap.dedent(
    """
    import asyncio
    import os
    import time

    import pytest

    from pytest_soak import Profile

    SPIKY = Profile.stages([("30m", 60, "quiet"), ("30m", 200, "spike")])
    STALLING = []

    def stall():
        time.sleep(0.25)
        asyncio.get_running_loop().call_later(1.0, stall)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if os.environ.get("SOAK_STALL") and not STALLING:
            STALLING.append(asyncio.get_running_loop().call_later(1.0, stall))
        if os.environ.get("SOAK_SLOW"):
            await asyncio.sleep(0.03)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    @pytest.mark.soak(profile=SPIKY, latency_tolerance="20% + 10ms")
    def test_shop(soak, replay_traffic):
        soak.run(app, replay_traffic("items.jsonl"))
    """
).lstrip()


def _baseline_then_switched(
    soak_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, switch: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """SLOW_SWITCH_MODULE's baseline recorded as it is, then a run with ``switch`` set: that
    run's outcome and its JSON result."""
    soak_project.makepyfile(test_shop=SLOW_SWITCH_MODULE)
    quick = ("--soak-duration=3s", "-p", "no:cacheprovider")
    soak_project.runpytest_subprocess(*quick, "--soak-update-baselines").assert_outcomes(passed=1)
    monkeypatch.setenv(switch, "1")
    run = soak_project.runpytest_subprocess(*quick, "--soak-json=soak.json")
    [result] = json.loads((soak_project.path / "soak.json").read_text())["results"]
    return run, result


def test_a_slower_service_is_a_regression_against_its_latency_baseline(
    soak_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, result = _baseline_then_switched(soak_project, monkeypatch, "SOAK_SLOW")
    [written] = (soak_project.path / "__soak_baselines__").glob("*.json")
    [entry] = json.loads(written.read_text())["tests"]["test_shop"].values()
    assert {"p50", "p95", "p99", "error_rate"} <= set(entry["phases"][1])
    run.assert_outcomes(failed=1)
    run.stdout.fnmatch_lines(
        ["*soak verdict: REGRESSION — latency over the baseline + 20% + 10.0ms tolerance: *"
         "spike p50 3?.*ms > *ms allowed (baseline *ms)*"]
    )  # fmt: skip
    assert result["verdict"] == "regression"
    assert result["baseline"]["latency"]["status"] == "over"


def test_a_stalled_harness_is_not_called_a_latency_regression(
    soak_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver stalls with its process (250 ms a second): the requests due meanwhile are
    sent late and their latency, measured from the intended time, carries that lag. It is not
    the service's: the test passes, and the summary says which figures were not judged."""
    run, result = _baseline_then_switched(soak_project, monkeypatch, "SOAK_STALL")
    run.assert_outcomes(passed=1)
    run.stdout.fnmatch_lines(
        ["*test_shop: baseline: latency not judged in * of * percentiles: *spike p95 *ms > *ms "
         "allowed, but the harness sent *ms late at that percentile*rerun on a quieter machine*"]
    )  # fmt: skip
    latency = result["baseline"]["latency"]
    assert result["verdict"] == "ok" and latency["status"] == "late" and not latency["over"]
    spike = next(p for p in result["phases"] if p["name"] == "spike")
    assert spike["send_lag"]["p99"] > 0.1  # the stall, measured as the driver's own lag
