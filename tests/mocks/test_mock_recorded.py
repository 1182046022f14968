"""Automatic mocks from recorded outbound traffic: our own small recordings in every format, and
the real samples in ../shared/samples (skipped when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_soak import MockDefinitionError, MockSet, load_traffic
from pytest_soak.mocks import load_mocks

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "recorded"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


def test_har_recordings_of_one_signature_cycle_in_order(client: httpx.Client) -> None:
    with MockSet.load(RECORDED / "outbound.har") as mocks:
        rates = [client.get("https://api.example.com/v1/rates?base=EUR").json() for _ in range(3)]
        assert rates == [{"rate": 1}, {"rate": 2}, {"rate": 1}]
        first = client.get("https://api.example.com/v1/rates?base=EUR")
        assert "content-encoding" not in first.headers  # HAR bodies are stored decoded
        # The query is part of the signature; the host too (in process).
        assert client.get("https://api.example.com/v1/rates?base=USD").status_code == 404
        assert client.get("https://other.example.com/v1/rates?base=EUR").status_code == 404
        assert "entry 4" in " ".join(mocks.definitions.ignored)  # failed request: not a mock


def test_the_json_body_can_be_part_of_the_signature(client: httpx.Client) -> None:
    url = "https://api.example.com/v1/quotes"
    with MockSet.load(RECORDED / "outbound.har"):
        answers = [client.post(url, json={"pair": p}).text for p in ("GBPUSD", "GBPUSD")]
        assert answers == ["quote EURUSD", "quote GBPUSD"]  # one signature, cycling
    with MockSet.load(RECORDED / "outbound.har", match_body=True):
        assert client.post(url, content=b'{ "pair" : "GBPUSD" }').text == "quote GBPUSD"
        assert client.post(url, json={"pair": "GBPUSD"}).text == "quote GBPUSD"
        assert client.post(url, json={"pair": "XAUUSD"}).status_code == 404


def test_recorded_latency_is_replayed_times_a_factor(client: httpx.Client) -> None:
    definitions = load_mocks(RECORDED / "outbound.har", latency_factor=2.0)
    rates = definitions.stubs[0]
    assert [r.delays[0].a for r in rates.responses] == [60.0, 90.0]  # timings.wait × 2
    assert all(not r.delays for r in load_mocks(RECORDED / "outbound.har").stubs[0].responses)


@pytest.mark.parametrize(
    ("name", "url", "body"),
    [
        ("vcrpy.yaml", "https://users.example.com/avatar/1", b"\x89PNG\r\n\x1a\n"),
        ("ruby.yml", "http://inventory.example.com/items/7", b"seven"),
        ("old-vcrpy.yaml", "http://legacy.example.com/ping", b"pong"),
    ],
)
def test_vcr_cassettes_in_each_dialect(
    client: httpx.Client, name: str, url: str, body: bytes
) -> None:
    with MockSet.load(RECORDED / name):
        answer = client.get(url)
    assert (answer.status_code, answer.content) == (200, body)


def test_vcrpy_post_with_query(client: httpx.Client) -> None:
    with MockSet.load(RECORDED / "vcrpy.yaml"):
        answer = client.post("https://users.example.com/lookup?fields=name", json={"user": 1})
    assert answer.json() == {"name": "Ada"}


def test_rrpair_out_pairs_and_a_signature_header(client: httpx.Client) -> None:
    url = "https://dynamodb.example.com/"

    def call(target: str) -> object:
        return client.post(url, headers={"X-Amz-Target": f"DynamoDB_20120810.{target}"}).json()

    with MockSet.load(RECORDED / "pairs.jsonl") as mocks:  # one signature: POST /
        assert [call("Query") for _ in range(4)] == [
            {"result": "q1"}, {"result": "p1"}, {"result": "q2"}, {"result": "q1"}
        ]  # fmt: skip
        assert "direction 'IN'" in mocks.definitions.ignored[0]
    with MockSet.load(RECORDED / "pairs.jsonl", match_headers=["X-Amz-Target"]):
        assert [call("Query"), call("PutItem"), call("Query")] == [
            {"result": "q1"}, {"result": "p1"}, {"result": "q2"}
        ]  # fmt: skip


def test_proxymock_markdown_out_pairs_only(client: httpx.Client) -> None:
    with MockSet.load(RECORDED / "proxymock") as mocks:
        answer = client.get("http://api.example.com/v1/stock?sku=42")
        assert answer.json() == {"sku": 42, "stock": 3}
        assert answer.headers["date"] == "Wed, 01 May 2024 08:00:00 GMT"
        assert len(mocks.stubs) == 1


def test_a_loaded_traffic_becomes_mocks(client: httpx.Client) -> None:
    traffic = load_traffic(RECORDED / "outbound.har")
    with MockSet.load(traffic):
        assert client.get("https://api.example.com/v1/rates?base=EUR").json() == {"rate": 1}


def test_served_recorded_mocks_ignore_the_recorded_host() -> None:
    with MockSet.load(RECORDED / "outbound.har", serve=True) as mocks:
        answer = httpx.get(f"{mocks.url}/v1/rates?base=EUR")
    assert answer.json() == {"rate": 1}


def test_recordings_without_responses_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"msgType": "rrpair", "direction": "IN"}\n')
    with pytest.raises(MockDefinitionError, match="has no recorded outbound exchange"):
        load_mocks(path)


@pytest.mark.parametrize("name", ["outbound.jsonl", "outbound.ndjson", "outbound"])
def test_native_traffic_jsonl_is_told_from_rrpair_by_content(
    client: httpx.Client, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_text(
        "# pytest-soak's own traffic format, with recorded responses\n"
        '{"method": "GET", "url": "https://api.example.com/v1/rates", '
        '"response": {"status": 200, "body": "{\\"rate\\": 1}"}}\n'
        '{"method": "GET", "url": "https://api.example.com/v1/health"}\n'
    )
    with MockSet.load(path) as mocks:
        assert mocks.definitions.format == "jsonl"
        assert client.get("https://api.example.com/v1/rates").json() == {"rate": 1}
        assert client.get("https://api.example.com/v1/health").status_code == 404
    assert load_mocks(RECORDED / "pairs.jsonl").format == "rrpair"


def test_a_file_in_no_format_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(MockDefinitionError) as info:
        load_mocks(path)
    message = str(info.value)
    assert message.startswith(f"{path}: is not a mock definition pytest-soak can read")
    for name in ("WireMock JSON mappings", "HAR", "RRPair JSONL", "native traffic JSONL", "VCR"):
        assert name in message


def test_a_mock_format_is_registered_once() -> None:
    from pytest_soak.mocks.formats import FORMATS, register

    with pytest.raises(ValueError, match="name='har' is already registered"):
        register(FORMATS["har"])


def test_a_broken_cassette_names_the_interaction(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("interactions:\n- request: {method: GET, uri: 'http://x/'}\n  response: {}\n")
    with pytest.raises(MockDefinitionError, match=r"c\.yaml: interaction 0: field response"):
        load_mocks(path)
    path.write_text("interactions: [\n")
    with pytest.raises(MockDefinitionError, match=r"c\.yaml: is not valid YAML at line"):
        load_mocks(path)


# -- the real samples -------------------------------------------------------------------------


def test_sample_wiremock_mappings_answer_as_written(samples: Path) -> None:
    with MockSet.load(samples / "wiremock" / "remoteloader", serve=True) as mocks:
        with httpx.Client(base_url=mocks.url) as http:
            assert http.get("/remote-load/1").text == "Remote load 1"
            two = http.get("/remote-load/2", headers={"Accept": "text/plain"})
            assert (two.text, two.headers["content-type"]) == ("Remote load 2", "text/plain")
            assert http.get("/remote-load/2", headers={"Accept": "text/html"}).status_code == 404
            assert http.get("/text-file").text == "Some text"
            png = (samples / "wiremock/remoteloader/__files/favicon3.png").read_bytes()
            assert http.get("/image-file").content == png
            assert http.get("/binary-file-from-header").headers["content-type"] == "image/jpg"
            assert http.get("/todo/items").text == "<items><item>Buy milk</item></items>"
            added = http.post("/todo/items", content="Cancel newspaper subscription")
            assert added.status_code == 201
            assert "Cancel newspaper subscription" in http.get("/todo/items").text
        stats = mocks.stats()
    assert stats["scenarios"] == {"To do list": "Cancel newspaper item added"}
    assert stats["unmatched_count"] == 1


def test_sample_with_a_missing_body_file_is_a_clear_error(samples: Path) -> None:
    with pytest.raises(MockDefinitionError) as info:
        load_mocks(samples / "wiremock" / "classpath-filesource")
    message = str(info.value)
    assert "slow-response.json: mapping 0: response.bodyFileName 'stuff.txt' does not exist" in (
        message
    )


def test_sample_fixed_delay_is_kept(samples: Path, tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "__files").mkdir()
    source = samples / "wiremock/classpath-filesource/mappings/slow-response.json"
    (tmp_path / "mappings/slow.json").write_text(source.read_text())
    (tmp_path / "__files/stuff.txt").write_text("stuff")
    (stub,) = load_mocks(tmp_path).stubs
    assert stub.responses[0].delays[0].a == 500.0


@pytest.mark.parametrize(
    ("name", "url", "status"),
    [
        ("new_cassette.yaml", "http://httpbin.org/ip", 200),
        ("old_cassette.yaml", "http://httpbin.org/ip", 200),
        ("gzip_requests.yaml", "https://httpbin.org/gzip", 200),
        ("gzip_httpx_old_format.yaml", "https://httpbin.org/gzip", 200),
        ("domain_redirect.yaml", "http://moz.com/", 200),
    ],
)
def test_sample_vcr_cassettes(samples: Path, name: str, url: str, status: int) -> None:
    with MockSet.load(samples / "vcr" / name), httpx.Client() as http:
        answer = http.get(url)
    assert answer.status_code == status
    if "httpbin.org/ip" in url:
        assert answer.json() == {"origin": "217.122.164.194"}
    if "gzip" in url:
        assert answer.json()["gzipped"] is True  # decoded by httpx, or stored decoded


def test_sample_rrpair_dynamodb_out_pairs(samples: Path) -> None:
    url = "https://dynamodb.us-west-2.amazonaws.com/"
    source = samples / "rrpair/dynamodb-default.jsonl"
    with MockSet.load(source, match_headers=["X-Amz-Target"]), httpx.Client() as http:
        create = http.post(url, headers={"X-Amz-Target": "DynamoDB_20120810.CreateTable"})
        scan = http.post(url, headers={"X-Amz-Target": "DynamoDB_20120810.Scan"})
    assert create.status_code == 400  # as recorded
    assert scan.status_code == 200
    assert "Items" in scan.json()


def test_sample_proxymock_recording(samples: Path) -> None:
    definitions = load_mocks(samples / "rrpair/proxymock-go-drift-demo")
    assert sum(len(stub.responses) for stub in definitions.stubs) == 40  # the 40 OUT pairs
    assert {stub.request.host for stub in definitions.stubs} == {"httpbin.org", "catfact.ninja"}
    fact = next(s for s in definitions.stubs if s.request.host == "catfact.ninja")
    with MockSet(definitions), httpx.Client() as http:
        path = fact.request.url.value
        query = "&".join(f"{k}={v}" for k, v in fact.request.query_exact or ())
        answer = http.get(f"http://catfact.ninja{path}" + (f"?{query}" if query else ""))
    assert answer.content == fact.responses[0].body


def test_sample_har_files_load(samples: Path) -> None:
    for har in sorted((samples / "har").glob("*.har")):
        definitions = load_mocks(har)
        assert definitions.stubs, har
