"""``load_mocks``: mock definitions from whatever the user has.

A path (file or folder, its format detected by content and name: ``formats``), inline WireMock
mappings (a list of dicts, or one dict), a loaded ``Traffic``, or ``MockDefinitions`` already
loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks import recorded, wiremock
from pytest_soak.mocks.definitions import MockDefinitions
from pytest_soak.mocks.formats import LoadOptions, detect
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
    return detect(path, shown).load(path, shown, LoadOptions(strict=strict, signature=options))


def _inline(items: list[Any], base: Path, strict: bool) -> MockDefinitions:
    stubs, ignored = wiremock.parse_mappings(
        items, source="<inline mappings>", files_dir=base / "__files", strict=strict
    )
    return MockDefinitions(tuple(stubs), source="<inline mappings>", ignored=tuple(ignored))
