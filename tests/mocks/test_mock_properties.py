"""Properties: the mock loaders raise nothing but ``MockDefinitionError`` on arbitrary input, and
definitions survive the trip to the server process unchanged."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soak import MockDefinitionError
from pytest_soak.mocks import load_mocks
from pytest_soak.mocks.definitions import stubs_from_json, stubs_to_json
from pytest_soak.mocks.recorded import SignatureOptions, stubs_from_recordings
from pytest_soak.mocks.wiremock import parse_mappings

DATA = Path(__file__).parent / "data"
FIELDS = [
    "request", "response", "priority", "scenarioName", "requiredScenarioState",
    "newScenarioState", "method", "url", "urlPath", "urlPattern", "urlPathPattern",
    "queryParameters", "headers", "bodyPatterns", "equalTo", "contains", "matches",
    "equalToJson", "absent", "caseInsensitive", "status", "body", "jsonBody", "base64Body",
    "bodyFileName", "fixedDelayMilliseconds", "delayDistribution", "type", "median", "sigma",
    "lower", "upper", "fault", "mappings", "name", "transformers", "http", "req", "res",
    "direction", "interactions", "http_interactions", "uri", "code", "string", "statusCode",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["GET", "/a", "[", "Started", "lognormal", "OUT", "x.txt", "aGk=", "..", ""])
    | st.text(max_size=10)
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(JSONISH)
def test_wiremock_mappings_raise_only_mock_definition_errors(value: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            parse_mappings([value], source="m.json", files_dir=Path(folder), strict=True)
            parse_mappings([value], source="m.json", files_dir=Path(folder), strict=False)
        except MockDefinitionError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH, st.sampled_from(["m.json", "c.yaml", "p.jsonl", "r.har", "x.md"]))
def test_every_file_loader_raises_only_mock_definition_errors(value: Any, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if name.endswith(".jsonl"):
            items = value if isinstance(value, list) else [value]
            path.write_text("\n".join(json.dumps(item) for item in items))
        else:
            path.write_text(json.dumps(value))
        with contextlib.suppress(MockDefinitionError):
            load_mocks(path)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_proxymock_and_vcr_text_raise_only_mock_definition_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name in ("pair.md", "cassette.yaml"):
            path = Path(folder) / name
            path.write_text("### REQUEST ###\n" + text if name.endswith(".md") else text)
            with contextlib.suppress(MockDefinitionError):
                load_mocks(path)


def test_definitions_round_trip_through_json() -> None:
    for source in (DATA / "payments", DATA / "recorded" / "outbound.har"):
        stubs = load_mocks(source, latency_factor=1.0).stubs
        assert stubs_from_json(json.loads(json.dumps(stubs_to_json(stubs)))) == stubs


def test_grouping_keeps_recorded_order() -> None:
    from pytest_soak.mocks.recorded import Recording

    recordings = [
        Recording("GET", "h", f"/a?x={n % 2}", (), b"", 200, (), str(n).encode()) for n in range(6)
    ]
    stubs = stubs_from_recordings(recordings, SignatureOptions())
    assert [[r.body for r in s.responses] for s in stubs] == [
        [b"0", b"2", b"4"],
        [b"1", b"3", b"5"],
    ]
