"""``--soak-isolate`` / ``isolate=True`` as a user meets it: real services, real files.

Each test runs one short soak (``--soak-duration=4s``) and the trials that isolation makes (each
a full cycles run of part of the traffic, a few seconds), in a pytester subprocess.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_soak.traffic import load_traffic

ISOLATE = ("--soak-duration=4s", "-p", "no:cacheprovider")
AGENTS = ("Mozilla/5.0 (Windows NT 10.0) Chrome/126.0", "ShopApp/4.2 (Android 14)")


def _module(body: str) -> str:
    return textwrap.dedent(body).lstrip()


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def doc_traffic() -> str:
    """A quarter of the requests ask for a doc that does not exist (recorded 404)."""
    rows: list[dict[str, object]] = []
    for k in range(200):
        if k % 4 == 3:
            url, status = f"/doc/x{k:05d}", 404
        elif k % 4 == 1:
            url, status = "/list?access_token=tok-123", 200
        else:
            url, status = f"/doc/d{k % 20:04d}", 200
        headers = {"User-Agent": AGENTS[(k // 4) % 2], "Authorization": "Bearer s3cret"}
        rows.append(
            {"offset": k * 0.01, "method": "GET", "url": url, "headers": headers,
             "response": {"status": status}}
        )  # fmt: skip
    return _jsonl(rows)


def test_help_and_a_bad_isolate_value(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--soak-isolate *when a soak test leaks, replay subsets*", "*soak_isolate (string):*"]
    )
    pytester.makepyfile(
        test_iso_bad=_module(
            """
            import pytest

            @pytest.mark.soak(profile="constant", peak_rps=50, isolate="maybe")
            def test_bad(soak):
                soak.run("http://127.0.0.1:1", [])
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)  # at setup, before any load
    result.stdout.fnmatch_lines(["*isolate='maybe' must be True, False or 'mutate'*"])


def test_leak_on_unknown_ids_is_pinned_to_endpoint_and_variation(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makefile(".jsonl", docs=doc_traffic())
    soak_project.makepyfile(
        test_iso_docs=_module(
            """
            import pytest
            from apps.services import healthy_app, unknown_id_app

            @pytest.mark.soak(profile="constant", peak_rps=100, isolate="mutate", seed=3)
            def test_docs(soak, replay_traffic):
                soak.run(unknown_id_app(), replay_traffic("docs.jsonl"))

            @pytest.mark.soak(profile="constant", peak_rps=100, isolate=True)
            def test_healthy_is_not_isolated(soak, replay_traffic):
                result = soak.run(healthy_app(), replay_traffic("items.jsonl"))
                assert result.isolation == {}
            """
        )
    )
    result = soak_project.runpytest_subprocess(*ISOLATE, "--soak-json=out/soak.json")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*leak isolation (exclusion method): culprit endpoint GET /doc/{id}, variation id "
            "unknown (recorded 404) = recorded status 4xx (404)",
            "*culprit endpoint: GET /doc/{id} (150 of 200 recorded requests)",
            "*growth per request: * with it (the whole traffic), * without it (no leak, replay *",
            "*culprit variation: id unknown (recorded 404) = recorded status 4xx (404) "
            "(* of its 150 requests)",
            "*growth per request: * without it (no leak, replay *",
            "*mutated requests (not in the recording), malformed-id: * (leak, replay *",
            "*minimal traffic that still leaks (* requests, secrets redacted): *"
            "test_iso_docs.test_docs.leak-repro.jsonl",
            "*replayed alone: * (leak, replay *",
            "*replays:",
            "* 1. only GET /doc/{id} *leak*",
        ]
    )
    repro = soak_project.path / "test_iso_docs.test_docs.leak-repro.jsonl"
    text = repro.read_text()
    assert "s3cret" not in text and "tok-123" not in text and "REDACTED" in text
    traffic = load_traffic(repro)  # a regression test can replay it as it is
    assert {e.endpoint for e in traffic} == {"GET /doc/{id}"}  # only the confirmed kind
    assert {e.response.status for e in traffic if e.response} == {404}

    document = json.loads((soak_project.path / "out" / "soak.json").read_text())
    leaked = next(r for r in document["results"] if r["test_id"].endswith("::test_docs"))
    isolation = leaked["isolation"]
    assert isolation["status"] == "found"
    assert [c["endpoint"] for c in isolation["culprits"]] == ["GET /doc/{id}"]
    culprit = isolation["culprits"][0]
    assert culprit["variation"]["families"] == ["id", "status"]
    assert culprit["without"]["leaks"] is False and culprit["alone"]["leaks"] is True
    assert culprit["variation"]["without"]["leaks"] is False
    assert culprit["variation"]["alone"]["leaks"] is True  # confirmed both ways
    assert {m["kind"] for m in culprit["mutations"]} == {"malformed-id", "unknown-id", "oversized"}
    # 2 endpoints: 2 trials for the endpoints (only /doc, without it), 2 for the kind of
    # request (alone, without it), 3 for the mutations.
    assert isolation["replays"] == len(isolation["probes"]) == 7
    # The repro file: the unknown docs the measured cycle asked for (each recorded one once).
    assert isolation["repro"]["requests"] == culprit["variation"]["requests"] == len(traffic)
    assert 0 < len(traffic) <= 50
    trials = isolation["probes"]
    # Every trial is a full cycles run, and its duration is the wall time it took.
    assert all(t["seconds"] >= t["planned_seconds"] > 0 for t in trials)
    assert isolation["replay_seconds_range"] == [
        round(min(t["seconds"] for t in trials), 1),
        round(max(t["seconds"] for t in trials), 1),
    ]
    assert isolation["growth_per_request_with"] == leaked["growth_per_request_bytes"]


def test_two_independent_leaking_endpoints_are_both_reported(
    soak_project: pytest.Pytester,
) -> None:
    names = ("alpha", "beta", "gamma")
    rows = [
        {"offset": k * 0.01, "method": "GET", "url": f"/{names[k % 3]}/i{k % 50:05d}"}
        for k in range(210)
    ]
    soak_project.makefile(".jsonl", four=_jsonl(rows))
    soak_project.makepyfile(
        test_iso_two=_module(
            """
            import pytest
            from apps.services import two_leaks_app

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_two(soak, replay_traffic):
                soak.run(two_leaks_app(), replay_traffic("four.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*ISOLATE, "--soak-isolate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*leak isolation (exclusion method): culprit endpoint GET /alpha/{id}; "
            "culprit endpoint GET /beta/{id}",
            "*culprit endpoint: GET /alpha/{id} (70 of 210 recorded requests)",
            "*culprit endpoint: GET /beta/{id} (70 of 210 recorded requests)",
            "*without every culprit: * (no leak, replay *",
            "*minimal traffic that still leaks (* requests, secrets redacted): *",
        ]
    )
    assert "interaction" not in result.stdout.str()
    repro = load_traffic(soak_project.path / "test_iso_two.test_two.leak-repro.jsonl")
    assert {e.endpoint for e in repro} == {"GET /alpha/{id}", "GET /beta/{id}"}  # no healthy one


def test_a_leak_that_needs_two_endpoints_together_is_an_interaction(
    soak_project: pytest.Pytester,
) -> None:
    steps = [("PUT", "/draft/{}"), ("POST", "/publish/{}"), ("GET", "/feed"), ("GET", "/about/{}")]
    rows = []
    for k in range(200):
        method, url = steps[k % 4]
        rows.append({"offset": k * 0.01, "method": method, "url": url.format(f"i{k // 4:05d}")})
    soak_project.makefile(".jsonl", drafts=_jsonl(rows))
    soak_project.makepyfile(
        test_iso_together=_module(
            """
            import pytest
            from apps.services import interaction_app

            pytestmark = pytest.mark.soak(profile="constant", peak_rps=100, isolate=True)

            def test_together(soak, replay_traffic):
                soak.run(interaction_app(), replay_traffic("drafts.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(*ISOLATE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*leak isolation (exclusion method): interaction: the leak needs PUT /draft/{id} "
            "together with POST /publish/{id}; none leaks alone",
            "*interaction: the leak needs PUT /draft/{id} together with POST /publish/{id}; "
            "none of them leaks alone, so none is named the culprit",
        ]
    )
    assert "culprit endpoint:" not in result.stdout.str()
    assert not list(soak_project.path.glob("*.leak-repro.jsonl"))  # no confirmed culprit
