"""proxymock markdown (``.md``, or a folder of them, recursively): ``OUT`` pairs only, in
recorded order (the ``ts`` metadata), ``duration`` as latency."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks.recorded.grouping import Recording, Skips, read_bytes
from pytest_soak.traffic.fields import is_target, split_url
from pytest_soak.traffic.proxymock import (
    head_and_body,
    header_field,
    parse_metadata,
    split_sections,
)

LOOKS_LIKE = "proxymock .md"
FOLDER_LOOKS_LIKE = "proxymock recordings (*.md)"
SUFFIXES = (".md",)


def sniff(head: bytes) -> bool:
    return head.startswith(b"###")


def sniff_folder(path: Path) -> bool:
    return any(path.rglob("*.md"))


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    """A proxymock recording: one ``.md`` file per pair, or a folder of them (recursively)."""
    files = sorted(path.rglob("*.md")) if path.is_dir() else [path]
    timed: list[tuple[str, int, Recording]] = []
    for order, file in enumerate(files):
        label = shown if file == path else str(Path(shown) / file.relative_to(path))
        parsed = _proxymock_pair(read_bytes(file, label).decode("utf-8", "replace"), label, skips)
        if parsed is not None:
            timed.append((parsed[0], order, parsed[1]))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [recording for _, _, recording in timed]


def _proxymock_pair(text: str, label: str, skips: Skips) -> tuple[str, Recording] | None:
    sections = split_sections(text)
    if "REQUEST" not in sections or "RESPONSE" not in sections:
        raise MockDefinitionError(
            f"{label}: is not a proxymock recording: it needs ### REQUEST ### and "
            "### RESPONSE ### sections with ``` blocks"
        )
    meta = parse_metadata(sections.get("METADATA", [""])[0])
    direction = meta.get("direction", "")
    if direction != "OUT":
        skips.add(f"{label}: direction {direction or '?'} (only OUT pairs are mocks)")
        return None
    request_head, request_body = _head_and_body(sections["REQUEST"], label, "REQUEST")
    response_head, response_body = _head_and_body(sections["RESPONSE"], label, "RESPONSE")
    request_line, *request_headers = request_head.splitlines() or [""]
    parts = request_line.split(" ")
    if len(parts) < 2:
        raise MockDefinitionError(
            f"{label}: REQUEST line {request_line!r} is not 'METHOD URL HTTP/x'"
        )
    method, url = parts[0], parts[1]
    try:
        _, host, target = split_url(url)
    except ValueError:
        host, target = None, url
    if not is_target(target):
        raise MockDefinitionError(f"{label}: REQUEST URL {url!r} is not an http(s) URL or a path")
    status_line, *response_headers = response_head.splitlines() or [""]
    status_parts = status_line.split(" ", 2)
    if len(status_parts) < 2 or not status_parts[1].isdigit():
        raise MockDefinitionError(
            f"{label}: RESPONSE line {status_line!r} is not 'HTTP/1.1 200 OK'"
        )
    return meta.get("ts", ""), Recording(
        method=method.upper(),
        host=host,
        target=target,
        headers=_header_lines(request_headers),
        body=request_body.encode(),
        status=int(status_parts[1]),
        response_headers=_header_lines(response_headers),
        response_body=response_body.encode(),
        latency_ms=_duration_ms(meta.get("duration", "")),
        decoded=True,
        reason=status_parts[2] if len(status_parts) > 2 else "",
    )


def _head_and_body(blocks: list[str], label: str, section: str) -> tuple[str, str]:
    if not blocks:
        raise MockDefinitionError(f"{label}: ### {section} ### has no ``` block")
    return head_and_body(blocks)


def _header_lines(lines: Iterable[str]) -> tuple[tuple[str, str], ...]:
    fields = map(header_field, lines)
    return tuple(field for field in fields if field is not None and field[0])


def _duration_ms(text: str) -> float | None:
    match = re.fullmatch(r"([0-9.]+)\s*(ms|s|us|µs)?", text.strip())
    if match is None:
        return None
    factor = {"s": 1000.0, "us": 0.001, "µs": 0.001}.get(match.group(2) or "ms", 1.0)
    try:
        return float(match.group(1)) * factor
    except ValueError:
        return None
