"""The mock definition format registry and detection of a file's or folder's format.

A format registers how to recognise its files (``sniff``: the file's first bytes, leading
whitespace and BOM removed), the suffixes it is named by, optionally how to recognise a folder
of it, and how to load it. Adding a format is one module plus one ``register`` line below.

A file whose suffix several formats share (``.json``: WireMock or HAR; ``.jsonl``: RRPair or
native traffic) is the first of them whose ``sniff`` recognises it, else the first of them, whose
loader then gives a precise error. A file with any other name is the first format, in
registration order, that recognises its content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks import wiremock
from pytest_soak.mocks.definitions import MockDefinitions
from pytest_soak.mocks.recorded import goreplay, har, jsonl, proxymock, rrpair, vcr
from pytest_soak.mocks.recorded.grouping import Recording, SignatureOptions, Skips, definitions

SNIFF_BYTES = 4096


@dataclass(frozen=True)
class LoadOptions:
    """``strict``: WireMock fields pytest-soak does not implement are errors (else listed as
    ignored); ``signature``: how recorded exchanges are grouped into stubs."""

    strict: bool
    signature: SignatureOptions


@dataclass(frozen=True)
class MockFormat:
    """``load(path, shown, options)``: the definitions of a file (or folder); ``looks_like`` names
    the format to users whose file was not recognised."""

    name: str
    load: Callable[[Path, str, LoadOptions], MockDefinitions]
    sniff: Callable[[bytes], bool]
    looks_like: str
    suffixes: tuple[str, ...] = ()
    sniff_folder: Callable[[Path], bool] | None = None
    folder_looks_like: str = ""


FORMATS: dict[str, MockFormat] = {}


def register(mock_format: MockFormat) -> None:
    """Add a format to ``FORMATS`` (it is tried after those registered before it)."""
    if mock_format.name in FORMATS:
        raise ValueError(f"mock format name={mock_format.name!r} is already registered")
    FORMATS[mock_format.name] = mock_format


Read = Callable[[Path, str, Skips], list[Recording]]


def recorded_format(
    name: str,
    read: Read,
    sniff: Callable[[bytes], bool],
    looks_like: str,
    suffixes: tuple[str, ...],
    sniff_folder: Callable[[Path], bool] | None = None,
    folder_looks_like: str = "",
) -> MockFormat:
    """A format of recorded traffic: ``read`` gives recordings, grouped into stubs by signature."""

    def load(path: Path, shown: str, options: LoadOptions) -> MockDefinitions:
        skips = Skips()
        recordings = read(path, shown, skips)
        return definitions(recordings, skips, source=shown, format=name, options=options.signature)

    return MockFormat(name, load, sniff, looks_like, suffixes, sniff_folder, folder_looks_like)


def _load_wiremock(path: Path, shown: str, options: LoadOptions) -> MockDefinitions:
    return wiremock.load_wiremock(path, strict=options.strict, shown=shown)


register(
    MockFormat(
        "wiremock",
        _load_wiremock,
        wiremock.sniff,
        wiremock.LOOKS_LIKE,
        wiremock.SUFFIXES,
        wiremock.sniff_folder,
        wiremock.FOLDER_LOOKS_LIKE,
    )
)
register(recorded_format("har", har.read, har.sniff, har.LOOKS_LIKE, har.SUFFIXES))
register(
    recorded_format(
        "goreplay", goreplay.read, goreplay.sniff, goreplay.LOOKS_LIKE, goreplay.SUFFIXES
    )
)
register(recorded_format("rrpair", rrpair.read, rrpair.sniff, rrpair.LOOKS_LIKE, rrpair.SUFFIXES))
register(recorded_format("jsonl", jsonl.read, jsonl.sniff, jsonl.LOOKS_LIKE, jsonl.SUFFIXES))
register(
    recorded_format(
        "proxymock",
        proxymock.read,
        proxymock.sniff,
        proxymock.LOOKS_LIKE,
        proxymock.SUFFIXES,
        proxymock.sniff_folder,
        proxymock.FOLDER_LOOKS_LIKE,
    )
)
register(recorded_format("vcr", vcr.read, vcr.sniff, vcr.LOOKS_LIKE, vcr.SUFFIXES))


def detect(path: Path, shown: str) -> MockFormat:
    """The format of the file or folder at ``path`` (``shown`` is how messages name it)."""
    if path.is_dir():
        return _detect_folder(path, shown)
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF_BYTES)
    except OSError as exc:
        raise MockDefinitionError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    suffix = path.suffix.lower()
    named = [f for f in FORMATS.values() if suffix in f.suffixes]
    if named:
        return next((f for f in named if f.sniff(stripped)), named[0])
    for candidate in FORMATS.values():
        if candidate.sniff(stripped):
            return candidate
    accepted = ", ".join(f.looks_like for f in FORMATS.values())
    raise MockDefinitionError(
        f"{shown}: is not a mock definition pytest-soak can read; it starts with {head[:40]!r}. "
        f"Accepted: {accepted}"
    )


def _detect_folder(path: Path, shown: str) -> MockFormat:
    folders = [f for f in FORMATS.values() if f.sniff_folder is not None]
    for candidate in folders:
        assert candidate.sniff_folder is not None
        if candidate.sniff_folder(path):
            return candidate
    kinds = " nor ".join(f.folder_looks_like for f in folders)
    raise MockDefinitionError(
        f"{shown}: folder has neither {kinds}; point at the folder that holds them"
    )
