"""``load_mocks``: mock definitions from whatever the user has, detected by content.

A path (file or folder), inline WireMock mappings (a list of dicts, or one dict), a loaded
``Traffic``, or ``MockDefinitions`` already loaded. Files: WireMock JSON (``.json``), HAR
(``.har``, or JSON starting with ``{"log"``), GoReplay (``.gor``), Speedscale RRPair JSONL
(``.jsonl``), proxymock markdown (``.md``), VCR cassettes (``.yaml`` / ``.yml``). Folders:
WireMock (``mappings/`` or ``*.json``) or proxymock (``*.md``, recursively).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks import recorded, wiremock
from pytest_soak.mocks.definitions import MockDefinitions
from pytest_soak.mocks.recorded import SignatureOptions, Skips
from pytest_soak.traffic.model import Traffic

MockSource = (
    str
    | os.PathLike[str]
    | Sequence[Mapping[str, Any]]
    | Mapping[str, Any]
    | Traffic
    | MockDefinitions
)
_GOREPLAY = re.compile(rb"[123] [0-9a-fA-F]+ \d+(?: -?\d+)?\r?\n")
_LOADERS = {
    "har": recorded.load_har,
    "goreplay": recorded.load_goreplay,
    "rrpair": recorded.load_rrpair_jsonl,
    "proxymock": recorded.load_proxymock,
    "vcr": recorded.load_vcr,
}
_SUFFIXES = {
    ".har": "har",
    ".gor": "goreplay",
    ".jsonl": "rrpair",
    ".ndjson": "rrpair",
    ".md": "proxymock",
    ".yaml": "vcr",
    ".yml": "vcr",
}


def load_mocks(
    source: MockSource,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    strict: bool = True,
    match_host: bool = True,
    match_body: bool = False,
    match_headers: Sequence[str] = (),
    latency_factor: float | None = None,
) -> MockDefinitions:
    """Load mock definitions. Relative paths are taken from ``base_dir`` (default: the current
    directory). Recorded sources are grouped by request signature (see ``recorded``)."""
    options = SignatureOptions(
        match_host=match_host,
        match_body=match_body,
        match_headers=tuple(match_headers),
        latency_factor=latency_factor,
    )
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if isinstance(source, MockDefinitions):
        return source
    if isinstance(source, Traffic):
        skips = Skips()
        recordings = recorded.from_traffic(source, skips)
        return recorded.definitions(
            recordings, skips, source=source.path, format=source.format, options=options
        )
    if isinstance(source, Mapping):
        items = source.get("mappings", [source])
        if not isinstance(items, list):
            raise MockDefinitionError("<inline mappings>: field mappings must be a list")
        return _inline(items, base, strict)
    if isinstance(source, (list, tuple)):
        return _inline(list(source), base, strict)
    if not isinstance(source, (str, os.PathLike)):
        raise MockDefinitionError(
            f"mock definitions {source!r} are not a path, WireMock mappings (a list of dicts) or "
            "a Traffic; pass e.g. 'mocks/payments/'"
        )
    shown = os.fspath(source)
    path = base / Path(source)
    if not path.exists():
        raise MockDefinitionError(
            f"{shown}: no such mock definitions file or folder (looked in {path}); check the path "
            "(relative paths start at the test file's folder)"
        )
    kind = _detect(path, shown)
    if kind == "wiremock":
        return wiremock.load_wiremock(path, strict=strict, shown=shown)
    skips = Skips()
    recordings = _LOADERS[kind](path, shown, skips)
    return recorded.definitions(recordings, skips, source=shown, format=kind, options=options)


def _inline(items: list[Any], base: Path, strict: bool) -> MockDefinitions:
    stubs, ignored = wiremock.parse_mappings(
        items, source="<inline mappings>", files_dir=base / "__files", strict=strict
    )
    return MockDefinitions(tuple(stubs), source="<inline mappings>", ignored=tuple(ignored))


def _detect(path: Path, shown: str) -> str:
    if path.is_dir():
        if (path / "mappings").is_dir() or path.name == "mappings" or any(path.glob("*.json")):
            return "wiremock"
        if any(path.rglob("*.md")):
            return "proxymock"
        raise MockDefinitionError(
            f"{shown}: folder has neither WireMock mappings (mappings/*.json or *.json) nor "
            "proxymock recordings (*.md); point at the folder that holds them"
        )
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError as exc:
        raise MockDefinitionError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix == ".json" or suffix == ".har":
        return (
            "har"
            if re.match(rb'\{\s*"log"\s*:', stripped)
            else "wiremock"
            if suffix == ".json"
            else "har"
        )
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if stripped.startswith(b"###"):
        return "proxymock"
    if re.match(rb'\{\s*"log"\s*:', stripped):
        return "har"
    if b'"msgType"' in stripped.split(b"\n", 1)[0]:
        return "rrpair"
    if _GOREPLAY.match(stripped):
        return "goreplay"
    if stripped.startswith(
        (b"interactions:", b"http_interactions:", b"---", b"- request:", b"version:")
    ):
        return "vcr"
    if stripped.startswith(b"{"):
        return "wiremock"
    raise MockDefinitionError(
        f"{shown}: is not a mock definition pytest-soak can read; it starts with {head[:40]!r}. "
        "Accepted: WireMock JSON mappings, HAR, GoReplay, RRPair JSONL, proxymock .md, VCR YAML"
    )
