"""``soak_mocks`` as a user meets it: pytester runs with real files, real servers and a real soak
run whose report lists what chaos injected."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest

DATA = Path(__file__).parent / "data"


def _module(body: str) -> str:
    return textwrap.dedent(body).lstrip()


def _copy_payments(pytester: pytest.Pytester) -> None:
    for file in (DATA / "payments").rglob("*"):
        if file.is_file():
            target = pytester.path / "mocks" / "payments" / file.relative_to(DATA / "payments")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())


def test_fixture_loads_relative_paths_in_process_and_served(pytester: pytest.Pytester) -> None:
    _copy_payments(pytester)
    pytester.makepyfile(
        test_mocks_fixture=_module(
            """
            import httpx
            import pytest
            from pytest_soak import Chaos

            @pytest.mark.soak(seed=77)
            def test_in_process(soak_mocks):
                mocks = soak_mocks("mocks/payments/", chaos=Chaos(error_rate=0.0))
                assert mocks.seed == 77
                assert httpx.get("https://payments.example/v1/refunds/1").text == "no refund yet"

            def test_served(soak_mocks):
                mocks = soak_mocks("mocks/payments", serve=True)
                assert httpx.get(mocks.url + "/v1/refunds/1").status_code == 404
                assert mocks.stats()["matched"]["refund-flow.json#2"] == 1
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-n0")
    result.assert_outcomes(passed=2)


def test_served_mocks_are_stopped_at_teardown(pytester: pytest.Pytester) -> None:
    _copy_payments(pytester)
    pid_file = pytester.path / "pid.txt"
    pytester.makepyfile(
        test_mocks_teardown=_module(
            f"""
            def test_served(soak_mocks):
                mocks = soak_mocks("mocks/payments", serve=True)
                open({str(pid_file)!r}, "w").write(str(mocks.pid))
            """
        )
    )
    pytester.runpytest("-p", "no:cacheprovider", "-n0").assert_outcomes(passed=1)
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_broken_mapping_fails_the_test_with_file_mapping_and_field(
    pytester: pytest.Pytester,
) -> None:
    mapping = {"request": {"url": "/a", "bodyPatterns": [{"equalToXml": "<a/>"}]}, "response": {}}
    (pytester.path / "mocks").mkdir()
    (pytester.path / "mocks" / "broken.json").write_text(json.dumps(mapping))
    pytester.makepyfile(
        test_mocks_broken=_module(
            """
            def test_broken(soak_mocks):
                soak_mocks("mocks/broken.json")
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-n0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MockDefinitionError: mocks/broken.json: mapping 0: request.bodyPatterns[[]0[]]: "
            "matcher 'equalToXml' is a WireMock matcher pytest-soak does not implement*"
        ]
    )


def test_ignored_fields_are_listed_as_warnings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mocks_lenient=_module(
            """
            import httpx

            def test_lenient(soak_mocks):
                soak_mocks(
                    [{"request": {"url": "/a"},
                      "response": {"body": "{{now}}", "transformers": ["response-template"]}}],
                    strict=False,
                )
                assert httpx.get("http://x.example/a").text == "{{now}}"
            """
        )
    )
    # An editable install loaded through pip's import finder is not assertion-rewritten by the
    # outer pytest, so the in-process run warns about it; only our own warning is counted here.
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-n0", "-W", "ignore::pytest.PytestAssertRewriteWarning"
    )  # fmt: skip
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*soak_mocks: <inline mappings>: mapping 0: field response.transformers is not "
         "supported; ignored*"]
    )  # fmt: skip


def test_the_soak_report_lists_what_chaos_injected(soak_project: pytest.Pytester) -> None:
    soak_project.makepyfile(
        test_mocks_report=_module(
            """
            import httpx
            import pytest
            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Route
            from pytest_soak import Chaos

            client = httpx.AsyncClient()  # no real connection is made: respx answers

            async def item(request):
                answer = await client.post("https://payments.example/charge")
                await client.get("https://payments.example/unmocked")
                return PlainTextResponse(str(answer.status_code))

            app = Starlette(routes=[Route("/item/{item_id}", item)])

            @pytest.mark.soak(profile="constant", peak_rps=100, seed=5)
            def test_with_chaos(soak, replay_traffic, soak_mocks):
                payments = soak_mocks(
                    [{"request": {"method": "POST", "url": "/charge"},
                      "response": {"status": 200}}],
                    chaos=Chaos(error_rate=0.2, statuses=[503]),
                )
                soak.run(app, replay_traffic("items.jsonl"), check=False)
                assert payments.stats()["injected"]["status 503"] > 0
            """
        )
    )
    report = soak_project.path / "soak.json"
    result = soak_project.runpytest_subprocess(
        "--soak-duration=2s", "-p", "no:cacheprovider", "-n0", f"--soak-json={report}"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_with_chaos: mocks <inline mappings> (in-process): * requests, * unmatched "
            "(answered 404); chaos injected: status 503 ×*",
            "*test_with_chaos:   unmatched: GET /unmocked ×*, closest stub '<inline mappings>'",
        ]
    )
    (result_dict,) = json.loads(report.read_text())["results"]
    stats = result_dict["mocks"]["<inline mappings>"]
    assert stats["injected"]["status 503"] > 0
    assert stats["unmatched"][0]["path"] == "/unmocked"
    assert stats["matched"]["<inline mappings>"] == stats["requests"] - stats["unmatched_count"]
