"""pytest-soak as a user meets it: pytester runs of real soak tests against real services."""

from __future__ import annotations

import json
import textwrap
import uuid

import psutil
import pytest

from tests.helpers import item_traffic_lines

FAST = ("--soak-duration=8s", "-p", "no:cacheprovider")


def _module(body: str) -> str:
    return textwrap.dedent(body).lstrip()


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*memory soak tests (pytest-soak)*",
            "*--soak-mode=quick|nightly*",
            "*--soak-duration=DURATION*",
            "*--soak-json=PATH*",
            "*--soak-report=PATH*",
            "*--soak-allow-host=HOST*",
            "*soak_mode *default --soak-mode*",
            "*soak_defaults *",
        ]
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    from pytest_soak.settings import MARKER_KEYS

    result.stdout.fnmatch_lines(["@pytest.mark.soak(baseline=..., *): shape and limits*"])
    [line] = [line for line in result.outlines if line.startswith("@pytest.mark.soak(")]
    assert all(f"{key}=..." in line for key in MARKER_KEYS)


def test_a_leaking_app_fails_with_an_explained_verdict(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_leak=_module(
            """
            import pytest
            from apps.services import leaky_app

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_leaks(soak, replay_traffic):
                soak.run(leaky_app(2048), replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SoakFailure: soak verdict: LEAK*grew in every one of 8 identical cycles*",
            "*Python heap (tracemalloc): limit max_growth_per_request=0 B*",
            "*Python heap (tracemalloc): observed *KiB/request*",
            "*9 identical cycles of 89 requests*",
            "*phase *requests*rps target/got*p50*p95*p99*errors*late*heap end (1st)*floor growth",
            "*steady *801 *100.0/10*",
            "*growth by cycle: warm-up: *, 1: +*KiB, 2: +*KiB*",
            "*top allocation sites that grew in every cycle (attribution pass: the cycle replayed*",
            "*apps/services.py:* in remember: kept.append(*",
            "*soak summary*",
            "test_leak.py::test_leaks *LEAK*heap*KiB*",
        ]
    )
    per_request = [line for line in result.outlines if "observed" in line and "/request" in line]
    observed = per_request[0].split("observed ")[1].split("/request")[0]
    assert observed.endswith("KiB")
    assert 1.6 <= float(observed.split()[0]) <= 2.6  # 2 KiB a request, within the estimate's noise


def test_a_healthy_app_passes(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_ok=_module(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="spike-at-8am", peak_rps=120)
            def test_ok(soak, replay_traffic):
                result = soak.run(healthy_app(), replay_traffic("items.jsonl"))
                assert result.verdict == "ok", result.explain()
                assert [p.name for p in result.analysis.phases] == [
                    "night", "spike", "sustained", "decline", "late-night"]
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*soak summary*", "test_ok.py::test_ok *OK*heap*"])


@pytest.mark.parametrize("service", ["cache_app(max_entries=700)", "late_gc_app()"])
def test_plateauing_cache_and_late_gc_are_not_leaks(
    soak_project: pytest.Pytester, service: str
) -> None:
    """1,440 requests over 1,500 ids: the cache fills past the warm-up (576 requests) and hits
    its cap of 700 in the measured part, then stays there."""
    soak_project.makefile(".jsonl", ids=item_traffic_lines(1500))
    soak_project.makepyfile(
        test_svc=_module(
            f"""
            import pytest
            from apps.services import cache_app, late_gc_app

            @pytest.mark.soak(profile="constant", peak_rps=120)
            def test_svc(soak, replay_traffic):
                result = soak.run({service}, replay_traffic("ids.jsonl"))
                assert result.verdict != "leak", result.explain()
            """
        )
    )
    result = soak_project.runpytest_subprocess("--soak-duration=12s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_bounded_caches_still_filling_on_a_recording_20x_longer_pass(
    soak_project: pytest.Pytester,
) -> None:
    """Issue 10's case: a recording far longer than the run, a cache keyed by it that one
    pass could never fill. Every cycle replays the same requests: the cache fills in the
    warm-up and stays flat, and the summary says what was replayed."""
    soak_project.makefile(".jsonl", long=item_traffic_lines(20_000))
    soak_project.makepyfile(
        test_long=_module(
            """
            import pytest
            from apps.services import cache_app

            @pytest.mark.soak(profile="spike-at-8am", peak_rps=150)
            def test_long(soak, replay_traffic):
                result = soak.run(cache_app(max_entries=4000), replay_traffic("long.jsonl"))
                assert result.verdict == "ok", result.explain()
                cycle = result.traffic["cycle"]
                assert cycle["recording"] == 20000 and cycle["size"] < 1000
                assert any("in the warm-up" in note for note in result.analysis.notes)
            """
        )
    )
    result = soak_project.runpytest_subprocess("--soak-duration=15s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_fresh_ids_make_an_unbounded_per_id_table_grow(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_ids=_module(
            """
            import pytest
            from apps.services import per_id_table_app

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_recorded_ids(soak, replay_traffic):
                result = soak.run(per_id_table_app(), replay_traffic("items.jsonl"), check=False)
                assert result.passed, result.explain()

            @pytest.mark.soak(profile="constant", peak_rps=100, ids="fresh")
            def test_fresh_ids(soak, replay_traffic):
                soak.run(per_id_table_app(), replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST, "-n", "0")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_fresh_ids*", "*LEAK*grew in every one of 8 identical cycles*"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('profile="spike-at-9am", peak_rps=10',
         "*ProfileError: profile='spike-at-9am' is not a built-in profile "
         "(did you mean 'spike-at-8am'?)*"),
        ('profile="constant", peak_rps=0',
         "*peak_rps=0 must be greater than 0 (requests per second at the profile's peak)*"),
        ('profile="constant", peak_rsp=10',
         "*unknown argument 'peak_rsp' (did you mean 'peak_rps'?)*"),
        ('profile="constant", peak_rps=10, max_growth="5 parsecs"',
         "*max_growth='5 parsecs' is not a size*"),
    ],
)  # fmt: skip
def test_bad_markers_are_clear_errors_before_any_load(
    soak_project: pytest.Pytester, marker: str, message: str
) -> None:
    soak_project.makepyfile(
        test_bad=_module(
            f"""
            import pytest

            @pytest.mark.soak({marker})
            def test_bad(soak, replay_traffic):
                raise AssertionError("must not run")
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    # the short test summary gives the message after the test's id, not the id again
    result.stdout.fnmatch_lines(["ERROR test_bad.py::test_bad - *Error: *"])
    _assert_no_internal_traceback(result)


def _assert_no_internal_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str()
    assert "Traceback" not in text
    assert "pytest_soak/" not in text, text


def test_truncated_har_names_the_file(soak_project: pytest.Pytester) -> None:
    soak_project.makefile(
        ".har", shop='{"log": {"version": "1.2", "entries": [{"startedDateTime": "2026'
    )
    soak_project.makepyfile(
        test_user_har=_module(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="constant", peak_rps=10)
            def test_har(soak, replay_traffic):
                soak.run(healthy_app(), replay_traffic("shop.har"))
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TrafficFormatError: *shop.har*truncated*"])
    _assert_no_internal_traceback(result)


def test_goreplay_with_a_broken_header_names_the_payload(soak_project: pytest.Pytester) -> None:
    sep = "\n\U0001f435\U0001f648\U0001f649\n"
    good = "1 a1 1568139746437296000\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = "1 zz\nGET /cart HTTP/1.1\r\nHost: x\r\n\r\n"
    (soak_project.path / "capture.gor").write_text(good + sep + bad + sep)
    soak_project.makepyfile(
        test_gor=_module(
            """
            def test_gor(soak, replay_traffic):
                replay_traffic("capture.gor")
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TrafficFormatError: *capture.gor: payload 2*header '1 zz'*"])
    _assert_no_internal_traceback(result)


def test_service_that_exits_at_start_is_a_clear_error_and_leaves_nothing(
    soak_project: pytest.Pytester,
) -> None:
    token = f"soak-crash-{uuid.uuid4().hex[:8]}"
    soak_project.makepyfile(
        test_crash=_module(
            f"""
            import sys

            def test_crash(soak):
                soak.serve([sys.executable, "-c",
                            "import sys; print('{token}: DATABASE_URL is not set'); sys.exit(3)"])
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*DriverError: command=*exited with exit status 3 before it was ready at http://127.0.0.1:*/health*",
         f"*{token}: DATABASE_URL is not set*"]
    )  # fmt: skip
    _assert_no_internal_traceback(result)
    assert not [
        p for p in psutil.process_iter(["cmdline"]) if token in " ".join(p.info["cmdline"] or [])
    ]


@pytest.mark.parametrize(
    ("leak", "agent", "outcome", "judged"),
    [
        ("1", True, "failed", "service heap (pymalloc + malloc, agent)"),
        ("1", False, "failed", "USS"),
        ("0", True, "passed", ""),
    ],
)
def test_served_native_leak_is_found_by_the_agent_or_by_uss(
    soak_project: pytest.Pytester, leak: str, agent: bool, outcome: str, judged: str
) -> None:
    """A uvicorn service that leaks malloc'd memory tracemalloc cannot see: the agent's heap
    counts malloc's in-use bytes; without the agent, USS finds it."""
    soak_project.makepyfile(
        test_native=_module(
            f"""
            import sys
            import pytest

            @pytest.mark.soak(profile="constant", peak_rps=150)
            def test_native(soak, replay_traffic):
                svc = soak.serve(
                    [sys.executable, "-m", "uvicorn", "apps.services:native_service",
                     "--port", "{{port}}", "--log-level", "warning"],
                    env={{"NATIVE_LEAK": "{leak}", "NATIVE_LEAK_BYTES": "8192"}},
                    agent={agent},
                )
                soak.run(svc, replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess("--soak-duration=12s", "-p", "no:cacheprovider")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(
            [f"*soak verdict: LEAK — {judged} grew in every one of * cycles*", "*served process*"]
        )


def test_json_results(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_json=_module(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="step", peak_rps=80)
            def test_json(soak, replay_traffic):
                soak.run(healthy_app(), replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST, "--soak-json=out/soak.json")
    result.assert_outcomes(passed=1)
    document = json.loads((soak_project.path / "out" / "soak.json").read_text())
    [entry] = document["results"]
    assert entry["test_id"] == "test_json.py::test_json"
    assert entry["verdict"] == "ok"
    assert [p["name"] for p in entry["phases"]] == ["step-1", "step-2", "step-3", "step-4"]
    assert sum(p["requests"] for p in entry["phases"]) == entry["run"]["sent"] > 0
    # A floor before any load, then at the end of each of 4 phases of 9 cycles.
    assert len(entry["checkpoints"]) == 1 + 4 * 9
    assert [c["kind"] for c in entry["cycles"]] == ["warm-up"] + ["measured"] * 8
    assert entry["cycle_requests"] * 9 == entry["run"]["sent"]
    assert entry["traffic"]["endpoints"] == {"GET /item/{id}": 400}
    assert entry["traffic"]["cycle"]["size"] == entry["cycle_requests"]
    assert all("heap" in cp["floor"] for cp in entry["checkpoints"])
    assert entry["growth_bytes"] == entry["judgements"][0]["growth"]  # one growth figure


def test_html_report_from_the_ini_on_the_xdist_controller(soak_project: pytest.Pytester) -> None:
    """ini ``soak_report`` (the twin of ``--soak-report``): under xdist the controller writes
    the one report, from the results the worker sent."""
    soak_project.makeini("[pytest]\nsoak_report = out/report.html\n")
    soak_project.makepyfile(
        test_html=_module(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="step", peak_rps=80)
            def test_html(soak, replay_traffic):
                soak.run(healthy_app(), replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST, "-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*soak report written to *report.html"])
    page = (soak_project.path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<a href="#test-0">test_html.py::test_html</a>' in page
    assert '<span class="verdict good">OK</span>' in page
    assert page.count('<figure class="chart"') >= 3  # the judged metrics, rate, latency
    assert sorted(p.name for p in (soak_project.path / "out").iterdir()) == ["report.html"]


def test_non_loopback_targets_are_refused_unless_allowed(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_host=_module(
            """
            def test_host(soak):
                soak.url("http://shop.example.com:8080", pid=1)
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*DriverError: url='http://shop.example.com:8080': refusing to send traffic to "
            "non-loopback host*--soak-allow-host=shop.example.com*"
        ]
    )
    allowed = soak_project.runpytest(*FAST, "--soak-allow-host=shop.example.com")
    allowed.assert_outcomes(passed=1)


def test_settings_precedence_cli_run_marker_module_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        soak_mode = nightly
        soak_duration = 45s
        soak_defaults =
            profile = step
            peak_rps = 60
        """
    )
    pytester.makepyfile(
        test_precedence=_module(
            """
            import pytest

            pytestmark = pytest.mark.soak(peak_rps=80, concurrency=3)

            @pytest.mark.soak(concurrency=7, duration="20s")
            def test_marker_beats_module_and_ini(soak):
                s = soak.settings
                assert (s.mode, s.profile.name, s.peak_rps) == ("nightly", "step", 80)
                assert (s.concurrency, s.duration) == (7, 20)

            def test_ini_duration_when_no_marker_says(soak):
                assert soak.settings.duration == 45
                assert soak.settings.concurrency == 3
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=2)
    # --soak-duration beats every marker and the ini key
    result = pytester.runpytest("--soak-duration=5s", "-k", "ini_duration")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 5.0 == 45*"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('soak.run(healthy_app(), replay_traffic("items.jsonl"), peak_rsp=10)',
         "*soak.run() got unknown argument 'peak_rsp' (did you mean 'peak_rps'?)*"),
        ('soak.run(healthy_app(), replay_traffic("items.jsonl"), concurrency=0.5)',
         "*concurrency=0.5 must be a whole number of at least 1*"),
        ('replay_traffic("items.jsonl", include_endpoints=["/item/{id}"])',
         "*replay_traffic() got unknown filter 'include_endpoints'; accepted: exclude, headers,*"),
        ('soak.run(soak.url("http://127.0.0.1:9", pid=99999999), replay_traffic("items.jsonl"))',
         "*pid=99999999: cannot watch that process (NoSuchProcess)*"),
        ('soak.serve(["python", "-m", "http.server"], ready="health")',
         "*ready='health' must be a path starting with '/'*"),
        ('soak.serve(["python", "-m", "http.server"], env={"WORKERS": 2})',
         "*env?'WORKERS'?=2 must be a string*"),
        ('soak.serve(["no-such-program-xyz", "{port}"])',
         "*program 'no-such-program-xyz' was not found on PATH*"),
    ],
)  # fmt: skip
def test_bad_calls_are_clear_errors(soak_project: pytest.Pytester, call: str, message: str) -> None:
    soak_project.makepyfile(
        test_call=_module(
            f"""
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_call(soak, replay_traffic):
                {call}
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    _assert_no_internal_traceback(result)


def test_readme_documents_every_option_ini_key_and_marker_key() -> None:
    """The README's tables are written by hand; the vocabulary lives in one table each
    (``plugin.options.OPTIONS``, ``plugin.options.INI_ONLY``, ``settings.MARKERS``): none may
    go missing."""
    from pathlib import Path

    from pytest_soak.plugin.options import INI_ONLY, OPTIONS
    from pytest_soak.settings import MARKER_KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [o.flag for o in OPTIONS if f"`{o.flag}" not in readme]
    missing += [o.dest for o in OPTIONS if o.ini is not None and f"`{o.dest}`" not in readme]
    missing += [name for name in INI_ONLY if f"`{name}`" not in readme]
    missing += [key for key in MARKER_KEYS if f"`{key}`" not in readme]
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_many_late_requests_are_explained_in_the_summary(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_slow=_module(
            """
            import asyncio
            import pytest

            async def slow_app(scope, receive, send):  # answers after 100 ms
                if scope["type"] != "http":
                    return
                await asyncio.sleep(0.1)
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})

            @pytest.mark.soak(profile="constant", peak_rps=60, concurrency=2)
            def test_slow(soak, replay_traffic):
                soak.run(slow_app, replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest(*FAST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_slow.py::test_slow: late: * of * requests (*%) left more than 25 ms after their "
            "time: * found all 2 in-flight slots taken (the service answers slower than the rate "
            "needs: raise concurrency= or lower peak_rps=)*"
        ]
    )


@pytest.mark.parametrize(("flags", "shown"), [((), True), (("-q",), False), (("-n", "2"), False)])
def test_a_run_shows_its_progress_unless_quiet_or_in_an_xdist_worker(
    soak_project: pytest.Pytester, flags: tuple[str, ...], shown: bool
) -> None:
    soak_project.makepyfile(
        test_progress=_module(
            """
            import pytest
            from apps.services import leaky_app

            @pytest.mark.soak(profile="spike-at-8am", peak_rps=100)
            def test_progress(soak, replay_traffic):
                soak.run(leaky_app(0), replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*FAST, *flags)
    result.assert_outcomes(passed=1)
    line = (
        "soak test_progress.py::test_progress: warm-up * | *s of 8.0s | */* req/s | * in flight | "
        "* sent, * late, * errors | Python heap (tracemalloc) * (last floor *)"
    )
    if shown:  # off a terminal: a line a second in, then every 10 s
        result.stdout.fnmatch_lines([line])
    else:
        result.stdout.no_fnmatch_line("soak test_progress.py::test_progress: *")


def test_an_xdist_worker_writes_no_progress_line(pytester: pytest.Pytester) -> None:
    """A worker's output never reaches the terminal (execnet drops it), so a run under ``-n``
    cannot show that the worker stays quiet: its config, as xdist marks it, is asked."""
    from pytest_soak.plugin.live import ProgressLine, progress_for

    config = pytester.parseconfig()
    assert isinstance(progress_for(config, "test_x.py::test_y"), ProgressLine)
    config.workerinput = {"workerid": "gw0"}  # type: ignore[attr-defined]
    assert progress_for(config, "test_x.py::test_y") is None


def test_on_a_terminal_the_progress_is_one_line_rewritten_in_place(
    soak_project: pytest.Pytester,
) -> None:
    """Run under ``script``, which gives pytest a pseudo-terminal."""
    import shutil
    import subprocess
    import sys

    if shutil.which("script") is None:
        pytest.skip("no `script` (util-linux) to run pytest on a pseudo-terminal")
    soak_project.makepyfile(
        test_tty=_module(
            """
            import pytest
            from apps.services import leaky_app

            @pytest.mark.soak(profile="constant", peak_rps=50)
            def test_tty(soak, replay_traffic):
                soak.run(leaky_app(0), replay_traffic("items.jsonl"))
            """
        )
    )
    command = f"{sys.executable} -m pytest -p no:cacheprovider -n 0 --soak-duration=4s test_tty.py"
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=soak_project.path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout.decode(errors="replace")
    parts = done.stdout.split(b"\r")
    shown = [p for p in parts if p.startswith(b"soak test_tty.py::test_tty: ")]
    assert len(shown) >= 2  # rewritten: each after a carriage return, on the same line
    assert all(b"\n" not in p for p in shown)
    after = parts[parts.index(shown[-1]) + 1]
    assert after.strip(b" ").startswith((b"\x1b[32m.", b"."))  # cleared, then pytest's dot
