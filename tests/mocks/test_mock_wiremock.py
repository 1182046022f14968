"""WireMock mappings: loading, request matching and responses, through real httpx calls answered
in process (respx) — and the errors a broken mapping gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_soak import MockDefinitionError, MockSet
from pytest_soak.mocks import load_mocks

DATA = Path(__file__).parent / "data"
BASE = "https://payments.example"


@pytest.fixture
def payments() -> Iterator[MockSet]:
    with MockSet.load(DATA / "payments") as mocks:
        yield mocks


def test_a_mappings_folder_loads_every_file_with_its_bodies() -> None:
    definitions = load_mocks(DATA / "payments")
    names = [stub.name for stub in definitions.stubs]
    assert names == [
        "charge",
        "charge declined",
        "any other charge",
        "health.json",
        "receipt",
        "refund-flow.json#0",
        "refund-flow.json#1",
        "refund-flow.json#2",
    ]
    receipt = definitions.stubs[names.index("receipt")]
    assert receipt.responses[0].body == b'{"receipt": 42}'


def test_matching_on_method_url_query_headers_and_body(payments: MockSet) -> None:
    with httpx.Client(base_url=BASE) as client:
        charge = client.post("/v1/charges", json={"amount": 100, "currency": "EUR", "x": 1})
        assert (charge.status_code, charge.json()) == (201, {"id": "ch_1", "status": "succeeded"})
        declined = client.post("/v1/charges", content=b'{"card": "declined"}')
        assert (declined.status_code, declined.text) == (402, "declined")  # priority 1 wins
        other = client.post("/v1/charges/x", json={"amount": 5})
        assert (other.status_code, other.text) == (400, "bad charge")
        receipt = client.get("/v1/receipts/12?format=pdf")
        assert receipt.json() == {"receipt": 42}
        assert client.get("/v1/receipts/12?format=pdf&debug=1").status_code == 404
        assert client.get("/health", headers={"Accept": "text/plain"}).text == "ok"
        assert client.get("/health", headers={"Accept": "text/html"}).status_code == 404
    stats = payments.stats()
    assert stats["matched"]["charge"] == 1
    assert stats["matched"]["charge declined"] == 1
    assert stats["unmatched_count"] == 2


def test_a_scenario_moves_through_its_states(payments: MockSet) -> None:
    with httpx.Client(base_url=BASE) as client:
        assert client.get("/v1/refunds/1").text == "no refund yet"
        assert client.post("/v1/refunds").status_code == 202
        assert client.get("/v1/refunds/1").text == "refunded"
        payments.reset()
        assert client.get("/v1/refunds/1").text == "no refund yet"


def test_unmatched_requests_get_404_and_are_listed_with_the_closest_stub(
    payments: MockSet,
) -> None:
    with httpx.Client(base_url=BASE) as client:
        answer = client.get("/v1/charge")
        client.get("/v1/charge")
    assert answer.status_code == 404
    assert "closest stub" in answer.text
    (miss,) = payments.stats()["unmatched"]
    assert miss["method"] == "GET"
    assert miss["path"] == "/v1/charge"
    assert miss["count"] == 2
    assert miss["closest"] in ("charge", "charge declined", "any other charge")


def test_inline_mappings_and_loopback_requests_pass_through() -> None:
    with MockSet.load([{"request": {"url": "/x"}, "response": {"body": "mocked"}}]) as mocks:
        assert httpx.get("http://a.example/x").text == "mocked"
        with pytest.raises(httpx.ConnectError):  # loopback is not mocked by default
            httpx.get("http://127.0.0.1:9/x")
        assert mocks.stats()["requests"] == 1
    with pytest.raises(httpx.ConnectError):  # stopped: httpx goes to the network again
        httpx.get("http://127.0.0.1:9/x")


def test_hosts_limit_what_an_in_process_set_answers() -> None:
    mapping = [{"request": {"url": "/x"}, "response": {"body": "mocked"}}]
    with MockSet.load(mapping, hosts=["payments.example"]) as mocks:
        assert httpx.get("http://payments.example/x").text == "mocked"
        assert mocks.stats()["requests"] == 1


def _write(tmp_path: Path, document: object, name: str = "m.json") -> Path:
    path = tmp_path / "mappings" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_malformed_json_names_the_file_and_place(tmp_path: Path) -> None:
    _write(tmp_path, '{"request": {"url": "/x"},\n "response": {"status": 200,}}')
    with pytest.raises(MockDefinitionError, match=r"mappings/m\.json: is not valid JSON at line 2"):
        load_mocks(tmp_path)


def test_an_unknown_matcher_names_file_mapping_and_field(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"mappings": [
            {"request": {"url": "/a"}, "response": {}},
            {"name": "json path", "request": {"url": "/b", "bodyPatterns": [
                {"matchesJsonPath": "$.x"}]}, "response": {}},
        ]},
    )  # fmt: skip
    with pytest.raises(MockDefinitionError) as info:
        load_mocks(tmp_path)
    message = str(info.value)
    assert "m.json: mapping 1 ('json path')" in message
    assert "request.bodyPatterns[0]: matcher 'matchesJsonPath'" in message
    assert "use one of" in message


def test_a_missing_body_file_names_the_field_and_where_it_looked(tmp_path: Path) -> None:
    _write(tmp_path, {"request": {"url": "/a"}, "response": {"bodyFileName": "gone.txt"}})
    with pytest.raises(MockDefinitionError) as info:
        load_mocks(tmp_path)
    message = str(info.value)
    assert "m.json: mapping 0: response.bodyFileName 'gone.txt' does not exist" in message
    assert str(tmp_path / "__files") in message


def test_unsupported_fields_are_named_and_can_be_ignored_explicitly(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "request": {"url": "/a"},
            "response": {"body": "{{x}}", "transformers": ["response-template"]},
        },
    )
    with pytest.raises(MockDefinitionError, match=r"field response\.transformers is not supported"):
        load_mocks(tmp_path)
    definitions = load_mocks(tmp_path, strict=False)
    assert definitions.ignored == (
        f"{tmp_path / 'mappings' / 'm.json'}: mapping 0: field response.transformers is not "
        "supported; ignored",
    )


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"request": {"urlx": "/a"}, "response": {}}, "field request.urlx is not a WireMock field"),
        ({"request": {"url": "/a"}}, "field response is missing"),
        ({"request": {"url": "/a", "urlPath": "/a"}, "response": {}}, "use only one of them"),
        ({"request": {"urlPattern": "(["}, "response": {}}, "not a valid regular expression"),
        ({"request": {}, "response": {"status": 99}}, "response.status 99 is not an HTTP status"),
        ({"request": {}, "response": {"fault": "BOOM"}}, "response.fault 'BOOM'"),
        ({"request": {}, "response": {"delayDistribution": {"type": "pareto"}}}, "type 'pareto'"),
        ({"request": {}, "response": {}, "priority": 0}, "priority 0 must be"),
        ({"request": {}, "response": {}, "newScenarioState": "x"}, "need a scenarioName"),
        ({"request": {}, "response": {"proxyBaseUrl": "http://x"}}, "response.proxyBaseUrl"),
    ],
)
def test_bad_mappings_say_what_is_wrong(tmp_path: Path, mapping: object, expected: str) -> None:
    _write(tmp_path, mapping)
    with pytest.raises(MockDefinitionError, match=r"m\.json: mapping 0") as info:
        load_mocks(tmp_path)
    assert expected in str(info.value)


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MockDefinitionError, match="no such mock definitions file or folder"):
        load_mocks("nowhere/", base_dir=tmp_path)


def test_several_in_process_sets_split_the_hosts() -> None:
    first = [{"request": {"url": "/x"}, "response": {"body": "a"}}]
    second = [{"request": {"url": "/x"}, "response": {"body": "b"}},
              {"request": {"url": "/y"}, "response": {"body": "y"}}]  # fmt: skip
    with MockSet.load(first, hosts=["a.example"]) as a, MockSet.load(second) as b:
        assert httpx.get("http://a.example/x").text == "a"
        assert httpx.get("http://b.example/x").text == "b"
        # b covers every host: the first covering set with a matching stub answers ...
        assert httpx.get("http://a.example/y").text == "y"
        # ... and when none matches, the first covering set answers 404 and lists it.
        assert httpx.get("http://a.example/z").status_code == 404
        assert (a.stats()["unmatched_count"], b.stats()["unmatched_count"]) == (1, 0)
