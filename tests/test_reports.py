"""The data reports as a user meets them: ``--soak-json`` (schema, metadata, rounding),
``--junitxml`` properties, ``--soak-openmetrics``, and secrets kept out of all of them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_soak.traffic.redaction import MASK, is_secret_name, redact_text

FAST = ("--soak-duration=4s", "-p", "no:cacheprovider")
SECRET = "s3cr3t-tok-9f2c"


def _module(body: str) -> str:
    return textwrap.dedent(body).lstrip()


#: A test module whose app answers 500 on ``/boom`` (with a secret in its query) and 200 else.
BOOM_MODULE = _module(
    """
    import pytest

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        status = 500 if scope["path"] == "/boom" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    @pytest.mark.soak(profile="step", peak_rps=80)
    def test_boom(soak, replay_traffic):
        result = soak.run(app, replay_traffic("boom.jsonl"))
        print(result.explain())
    """
)


def _boom_traffic(total: int = 200) -> str:
    headers = {"Cookie": f"session={SECRET}", "Authorization": f"Bearer {SECRET}"}
    lines = [
        json.dumps({"offset": round(n * 0.01, 4), "method": "GET",
                    "url": f"/boom?token={SECRET}&n={n}" if n % 5 == 0 else f"/item/{n % 40}",
                    "headers": headers})
        for n in range(total)
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5xx: GET /boom?token=abc&x=1 -> 500", "5xx: GET /boom?token=***&x=1 -> 500"),
        ("GET /a?api_key=k1&page=2", "GET /a?api_key=***&page=2"),
        ("Cookie: session=s1; theme=dark", "Cookie: ***"),
        ("sessionid=s1; theme=dark", "sessionid=***; theme=dark"),
        ("Authorization: Bearer xyz", "Authorization: ***"),
        ("X-Api-Key: k1", "X-Api-Key: ***"),
        ("POST /login password=hunter2&user=ann", "POST /login password=***&user=ann"),
        ("5xx: GET /item/1?page=2 -> 500", "5xx: GET /item/1?page=2 -> 500"),
        (
            "limit max_growth_per_request=0 B, p=2.8e-06",
            "limit max_growth_per_request=0 B, p=2.8e-06",
        ),
        ("phase: spike, reason: timeout", "phase: spike, reason: timeout"),
    ],
)
def test_redact_text_masks_secret_values_only(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_names_are_the_repro_files_rule() -> None:
    """One rule for every artifact: the reproduction file uses the same names."""
    from pytest_soak.isolation import repro

    assert repro.is_secret_name is is_secret_name
    assert all(is_secret_name(n) for n in ("token", "Password", "client_secret", "apikey", "key"))
    assert not any(is_secret_name(n) for n in ("author", "page", "id", "monkey"))
    assert MASK == "***"


# -- pure renderers ---------------------------------------------------------------------------


def _result(**changes: object) -> dict[str, object]:
    """A result dict as ``SoakResult.to_dict()`` gives it (the fields the renderers read)."""
    result: dict[str, object] = {
        "test_id": "test_shop.py::test_cart",
        "verdict": "leak",
        "metric": "heap",
        "growth_bytes": 658534.7,
        "growth_per_request_bytes": 278.4567,
        "judgements": [{"metric": "heap", "p_value": 2.83456e-06, "slope": 278.4567}],
        "run": {"sent": 2664, "errors": 3, "late": 1, "elapsed_seconds": 69.12345},
        "phases": [{"name": "spike", "achieved_rps": 147.6123, "p99": 0.0053321}],
        "samples": [{"t": 0.50123, "heap": 771.6, "blocks": 5432.0, "ratio": 0.123456}],
        "harness": {"rss_start": 1234.5},
    }
    result.update(changes)
    return result


def test_json_figures_are_rounded_for_reading() -> None:
    from pytest_soak.report.json_report import json_document

    isolation = {"growth_per_request_with": 278.4567, "trials": [{"seconds": 1.23456}]}
    [entry] = json_document([_result(isolation=isolation)])["results"]
    assert entry["growth_bytes"] == 658535 and entry["growth_per_request_bytes"] == 278
    assert entry["judgements"][0]["p_value"] == 2.83e-06
    assert entry["run"]["elapsed_seconds"] == 69.123
    assert entry["phases"][0] == {"name": "spike", "achieved_rps": 147.61, "p99": 0.005}
    assert entry["samples"][0] == {"t": 0.501, "heap": 772, "blocks": 5432, "ratio": 0.1235}
    assert entry["harness"] == {"rss_start": 1234}
    # isolation's figure of the whole traffic is the result's, rounded alike
    assert entry["isolation"] == {"growth_per_request_with": 278, "trials": [{"seconds": 1.235}]}


def test_openmetrics_escapes_label_values_and_parses() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from pytest_soak.report.openmetrics import render_openmetrics

    odd = 'test_x.py::test_y[a"b\\c\nd]'
    text = render_openmetrics([_result(test_id=odd)])
    assert text.endswith("# EOF\n")
    assert 'test="test_x.py::test_y[a\\"b\\\\c\\nd]"' in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [growth] = families["soak_growth_bytes"].samples
    assert growth.labels == {"test": odd, "metric": "heap"} and growth.value == 658535
    assert families["soak_growth_bytes"].unit == "bytes"
    states = {s.labels["verdict"]: s.value for s in families["soak_verdict"].samples}
    assert states == {"ok": 0, "inconclusive": 0, "suspicious": 0, "leak": 1, "regression": 0,
                      "error": 0}  # fmt: skip
    assert families["soak_requests"].type == "counter"
    assert [s.value for s in families["soak_requests"].samples] == [2664]
    assert [s.value for s in families["soak_p_value"].samples] == [2.83e-06]


def test_openmetrics_puts_a_metric_without_a_unit_in_its_own_family() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from pytest_soak.report.openmetrics import render_openmetrics

    text = render_openmetrics([_result(metric="cache_entries", growth_bytes=12.0)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "soak_growth_bytes" not in families
    assert [(s.labels["metric"], s.value) for s in families["soak_growth"].samples] == [
        ("cache_entries", 12)
    ]


def test_terminal_summary_masks_secrets_in_what_it_quotes() -> None:
    from pytest_soak.report.terminal import summary_lines

    note = f"probe http://127.0.0.1:9/metrics?api_key={SECRET} did not answer"
    lines = summary_lines([_result(notes=[note])])
    assert any("metrics?api_key=*** did not answer" in line for line in lines)
    assert not any(SECRET in line for line in lines)


# -- as a user meets them ---------------------------------------------------------------------


def test_json_matches_its_schema_with_run_metadata(soak_project: pytest.Pytester) -> None:
    import jsonschema

    import pytest_soak
    from pytest_soak.baselines import Environment
    from pytest_soak.report.json_report import SCHEMA_VERSION, schema_path

    commit = None
    if shutil.which("git"):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
        subprocess.run([*git, "init", "-q"], cwd=soak_project.path, check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=soak_project.path,
                       check=True)  # fmt: skip
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=soak_project.path, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
    soak_project.makefile(".jsonl", boom=_boom_traffic())
    soak_project.makepyfile(test_boom=BOOM_MODULE)
    result = soak_project.runpytest_subprocess(
        *FAST, "--soak-json=soak.json", "--soak-env-label=ci"
    )
    result.assert_outcomes(passed=1)
    document = json.loads((soak_project.path / "soak.json").read_text())
    jsonschema.validate(document, json.loads(schema_path().read_text()))
    assert document["schema"] == SCHEMA_VERSION == 3
    assert document["version"] == pytest_soak.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["started"])
    assert document["environment"] == Environment.current("ci").key
    assert document["environment"].endswith("/ci")
    assert document.get("git_commit") == commit
    assert document["interrupted"] is False
    [entry] = document["results"]
    assert isinstance(entry["growth_bytes"], int)
    assert isinstance(entry["growth_per_request_bytes"], int)
    assert all(round(p["p99"], 3) == p["p99"] for p in entry["phases"])
    assert entry["run"]["errors"] == sum(p["errors"] for p in entry["phases"]) > 0


def test_json_without_a_git_checkout_has_no_commit(soak_project: pytest.Pytester) -> None:
    from pytest_soak.plugin.results import git_commit

    assert git_commit(soak_project.path) is None  # pytester's folder is no checkout
    assert git_commit(soak_project.path / "missing") is None


def _boom_run(soak_project: pytest.Pytester, *args: str) -> dict[str, Any]:
    """Run ``BOOM_MODULE`` with ``args`` (and ``--soak-json``): its one JSON result."""
    soak_project.makefile(".jsonl", boom=_boom_traffic())
    soak_project.makepyfile(test_boom=BOOM_MODULE)
    result = soak_project.runpytest_subprocess(*FAST, "--soak-json=soak.json", *args)
    result.assert_outcomes(passed=1)
    [entry] = json.loads((soak_project.path / "soak.json").read_text())["results"]
    assert entry["run"]["errors"] > 0 and entry["judgements"][0]["p_value"] is not None
    return dict(entry)


def test_junit_xml_carries_the_soak_figures(soak_project: pytest.Pytester) -> None:
    entry = _boom_run(soak_project, "--junitxml=junit.xml")
    [case] = ET.parse(soak_project.path / "junit.xml").getroot().iter("testcase")
    assert case.get("name") == "test_boom"
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {
        "soak_verdict": entry["verdict"],
        "soak_metric": entry["metric"],
        "soak_growth_bytes": str(entry["growth_bytes"]),
        "soak_growth_per_request_bytes": str(entry["growth_per_request_bytes"]),
        "soak_p_value": str(entry["judgements"][0]["p_value"]),
        "soak_requests": str(entry["run"]["sent"]),
        "soak_errors": str(entry["run"]["errors"]),
        "soak_late": str(entry["run"]["late"]),
    }


def test_openmetrics_carries_the_json_figures(soak_project: pytest.Pytester) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    entry = _boom_run(soak_project, "--soak-openmetrics=out/soak.om")
    text = (soak_project.path / "out" / "soak.om").read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = {"test": "test_boom.py::test_boom", "metric": entry["metric"]}

    def value(name: str) -> float:
        [sample] = families[name].samples
        return float(sample.value)

    assert families["soak_growth_bytes"].samples[0].labels == labels
    assert value("soak_growth_bytes") == entry["growth_bytes"]
    assert value("soak_growth_per_request_bytes") == entry["growth_per_request_bytes"]
    assert value("soak_p_value") == entry["judgements"][0]["p_value"]
    assert value("soak_requests") == entry["run"]["sent"] > 0
    assert value("soak_errors") == entry["run"]["errors"] > 0
    assert value("soak_late") == entry["run"]["late"]
    verdicts = {s.labels["verdict"]: s.value for s in families["soak_verdict"].samples}
    assert verdicts[entry["verdict"]] == 1 and sum(verdicts.values()) == 1
    assert "# TYPE soak_growth_bytes gauge" in text and "# UNIT soak_growth_bytes bytes" in text
    assert "# HELP soak_requests " in text and text.endswith("# EOF\n")


def test_openmetrics_path_from_ini(soak_project: pytest.Pytester) -> None:
    soak_project.makeini("[pytest]\nsoak_openmetrics = metrics/soak.prom\n")
    soak_project.makefile(".jsonl", boom=_boom_traffic())
    soak_project.makepyfile(test_boom=BOOM_MODULE)
    result = soak_project.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1)
    text = (soak_project.path / "metrics" / "soak.prom").read_text()
    assert 'soak_requests_total{test="test_boom.py::test_boom"}' in text


def test_reports_under_xdist_carry_the_workers_results(soak_project: pytest.Pytester) -> None:
    """Under ``-n 2`` the controller writes the JSON and OpenMetrics from the results the
    worker handed over; JUnit properties travel with the worker's test reports."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    entry = _boom_run(soak_project, "-n", "2", "--soak-openmetrics=soak.om", "--junitxml=j.xml")
    text = (soak_project.path / "soak.om").read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [requests] = families["soak_requests"].samples
    assert requests.labels == {"test": "test_boom.py::test_boom"}
    assert requests.value == entry["run"]["sent"] > 0
    [case] = ET.parse(soak_project.path / "j.xml").getroot().iter("testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["soak_requests"] == str(entry["run"]["sent"])
    assert properties["soak_verdict"] == entry["verdict"]


def test_a_report_path_that_cannot_be_written_is_said_and_the_others_written(
    soak_project: pytest.Pytester,
) -> None:
    (soak_project.path / "blocker").write_text("a file, not a folder")
    soak_project.makefile(".jsonl", boom=_boom_traffic())
    soak_project.makepyfile(test_boom=BOOM_MODULE)
    result = soak_project.runpytest_subprocess(
        *FAST, "--soak-openmetrics=blocker/soak.om", "--soak-json=soak.json"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "--soak-openmetrics=blocker/soak.om: soak OpenMetrics not written: *; pass a path "
            "in a writable folder",
        ]
    )
    assert json.loads((soak_project.path / "soak.json").read_text())["results"]
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_secrets_stay_out_of_every_report(soak_project: pytest.Pytester) -> None:
    """A token in the query of requests answered 500 reaches the error samples: masked there,
    so it is in none of the JSON, OpenMetrics, JUnit XML, HTML report, baseline or terminal
    output (failure text included); no file the run wrote holds it."""
    soak_project.makefile(".jsonl", boom=_boom_traffic())
    soak_project.makepyfile(test_boom=BOOM_MODULE)
    before = {p for p in soak_project.path.rglob("*") if p.is_file()}
    result = soak_project.runpytest_subprocess(
        *FAST, "-s", "--soak-json=soak.json", "--soak-openmetrics=soak.om", "--junitxml=junit.xml",
        "--soak-report=soak.html", "--soak-update-baselines",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    json_text = (soak_project.path / "soak.json").read_text()
    [entry] = json.loads(json_text)["results"]
    samples = [s for phase in entry["phases"] for s in phase["error_samples"]]
    assert samples and all("/boom?token=***&n=" in s for s in samples)
    output = "\n".join(result.outlines + result.errlines)
    assert "e.g. 5xx: GET /boom?token=***&n=" in output  # the explanation shows a sample
    for name, text in [
        ("soak.json", json_text),
        ("soak.om", (soak_project.path / "soak.om").read_text()),
        ("junit.xml", (soak_project.path / "junit.xml").read_text()),
        ("soak.html", (soak_project.path / "soak.html").read_text()),
        ("terminal", output),
    ]:
        assert SECRET not in text, f"{name} shows the secret"
    written = {p for p in soak_project.path.rglob("*") if p.is_file()} - before
    assert any("__soak_baselines__" in p.parts for p in written), sorted(written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), f"{path} holds the secret"


def test_every_renderer_masks_what_a_result_quotes() -> None:
    """The end-to-end test above cannot tell, since error samples are masked where they are
    recorded: here the secret sits in what a result quotes elsewhere (its reason, its notes, a
    mock's unmatched request, its test id) and each renderer is handed the raw result."""
    from pytest_soak.report.html_report import render_html
    from pytest_soak.report.json_report import json_document
    from pytest_soak.report.junit import junit_properties
    from pytest_soak.report.openmetrics import render_openmetrics
    from pytest_soak.report.terminal import summary_lines

    quoted = f"GET /boom?token={SECRET}"
    result = _result(
        test_id=f"test_x.py::test_y[/a?api_key={SECRET}]",
        verdict="suspicious",
        reason=f"heap grew after {quoted}",
        notes=[f"probe 'x': {quoted} failed"],
        mocks={
            "payments": {
                "transport": "respx",
                "requests": 1,
                "unmatched_count": 1,
                "unmatched": [{"method": "GET", "path": f"/pay?token={SECRET}", "count": 1}],
            }
        },
    )
    rendered = {
        "json": json.dumps(json_document([result])),
        "openmetrics": render_openmetrics([result]),
        "junit": repr(junit_properties(result)),
        "html": render_html([result]),
        "terminal": "\n".join(summary_lines([result])),
    }
    for name, text in rendered.items():
        assert SECRET not in text, f"{name} shows the secret"
    assert f"token={MASK}" in rendered["json"] and f"api_key={MASK}" in rendered["openmetrics"]


def test_ctrl_c_writes_the_finished_runs_and_what_the_cut_run_measured(
    soak_project: pytest.Pytester,
) -> None:
    """SIGINT while the second soak runs: the reports still hold the first one, the JSON says
    the session was interrupted, and what the second had measured is kept as cut short (not
    judged: no verdict, and not in OpenMetrics)."""
    import signal
    import sys
    import time

    import jsonschema

    from pytest_soak.report.json_report import schema_path

    soak_project.makepyfile(
        test_ctrl_c=_module(
            """
            import pytest
            from apps.services import healthy_app

            @pytest.mark.soak(profile="step", peak_rps=80, duration="4s")
            def test_a_finishes(soak, replay_traffic):
                soak.run(healthy_app(), replay_traffic("items.jsonl"))

            @pytest.mark.soak(profile="step", peak_rps=80, duration="300s")
            def test_b_is_interrupted(soak, replay_traffic):
                soak.run(healthy_app(), replay_traffic("items.jsonl"))
            """
        )
    )
    command = [sys.executable, "-m", "pytest", "-v", "-n", "0", "-p", "no:cacheprovider",
               "--soak-json=soak.json", "--soak-openmetrics=soak.om",
               "--soak-report=soak.html"]  # fmt: skip

    # Ctrl-C as in a terminal: SIGINT neither ignored nor blocked in the child. A suite started
    # as a background job of a non-interactive shell (`cmd &`) runs with SIGINT ignored, and
    # every child inherits that: the child then ran on to the deadline.
    def terminal_like() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = soak_project.popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=terminal_like
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        sent = False
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace"))
            if not sent and "soak test_ctrl_c.py::test_b_is_interrupted: " in lines[-1]:
                time.sleep(1)  # the second soak's load is under way (its first progress line)
                process.send_signal(signal.SIGINT)
                sent = True
            assert time.monotonic() < deadline, "".join(lines)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "soak: interrupted: the reports hold the 1 soak run(s) that finished" in output
    document = json.loads((soak_project.path / "soak.json").read_text())
    assert document["interrupted"] is True
    assert [r["test_id"] for r in document["results"]] == ["test_ctrl_c.py::test_a_finishes"]
    (cut,) = document["cut_short"]
    assert cut["test_id"] == "test_ctrl_c.py::test_b_is_interrupted"
    assert "verdict" not in cut
    assert cut["sent"] > 0 and cut["elapsed_seconds"] >= 1.0, cut
    assert cut["cycles_planned"] == 9 and cut["planned_seconds"] > 250, cut
    assert cut["metric"] == "heap" and len(cut["samples"]) >= 5
    assert all("heap" in sample for sample in cut["samples"])
    jsonschema.validate(document, json.loads(schema_path().read_text()))
    assert "the reports hold the 1 soak run(s) that finished; cut short, " in output
    assert "test_ctrl_c.py::test_b_is_interrupted (" in output
    metrics = (soak_project.path / "soak.om").read_text()
    assert 'test="test_ctrl_c.py::test_a_finishes"' in metrics
    assert "test_b_is_interrupted" not in metrics
    page = (soak_project.path / "soak.html").read_text()
    assert 'id="cut-short-0"' in page and "CUT SHORT" in page
    assert '"id":"chart-cut-0-memory-0"' in page
