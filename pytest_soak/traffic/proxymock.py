"""proxymock recordings: one markdown file per request/response pair, in a folder per host
(``proxymock record`` writes ``recorded-<time>/<host>/<time>.md``).

    ### REQUEST ###
    ```
    GET http://localhost:8080/search?q=widget HTTP/1.1
    Accept: */*
    ```

    ```
    <request body>
    ```

    ### RESPONSE ###
    ```
    HTTP/1.1 200 OK
    Date: Fri\\, 12 Jun 2026 18:12:15 GMT
    ```

    ```
    <response body>
    ```

    ### METADATA ###
    ```
    direction: IN
    ts: 2026-06-12T18:12:15.211241Z
    ```

Each section holds ``` blocks: the head (start line, then ``Name: value`` headers, commas
written ``\\,``) and the body. ``direction: IN`` pairs are requests the recorded service received
and become exchanges; ``OUT`` pairs are its calls to dependencies, skipped here (``soak_mocks``
reads them as mocks). The offset comes from ``ts``. ``load_traffic`` takes one file or a folder
(``read_folder``: every ``*.md`` below it; other files, such as proxymock's ``proxymock.log``,
are not read, and ``.md`` files that are not pairs are listed as skipped).
``Exchange.source`` is the file's name (its path below the folder for a folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic.fields import host_and_target, is_header_value, is_token, quote
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped
from pytest_soak.traffic.rrpair import OUTBOUND, no_inbound
from pytest_soak.traffic.timestamps import iso8601

LOOKS_LIKE = (
    "proxymock markdown, one pair per file (or a folder of them): ### REQUEST ### with ``` "
    "blocks 'GET http://host/path HTTP/1.1' + headers and the body, ### RESPONSE ###, "
    "### METADATA ### with 'direction: IN' and 'ts: ...'"
)

_SECTION = re.compile(r"###\s*([A-Z -]+?)\s*###\s*")
_SNIFF = re.compile(rb"(?:\xef\xbb\xbf)?\s*###\s*REQUEST\s*###")
_STATUS_LINE = re.compile(r"HTTP/[0-9.]+ ([0-9]{3})(?: .*)?")
_VERSION = re.compile(r"HTTP/[0-9.]+")


class _Invalid(Exception):
    """The pair is malformed: the message names the section and what is wrong."""


class _Skip(Exception):
    """The pair is well formed but is not the service's inbound traffic: the message says why."""


def split_sections(text: str) -> dict[str, list[str]]:
    """The ``` blocks of each ``### NAME ###`` section, in order (a block's lines joined)."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    fence: list[str] | None = None
    for line in text.splitlines():
        if fence is not None:
            if line.strip() == "```":
                if current is not None:
                    found.setdefault(current, []).append("\n".join(fence))
                fence = None
            else:
                fence.append(line)
            continue
        heading = _SECTION.fullmatch(line.strip())
        if heading:
            current = heading.group(1).strip()
        elif line.strip().startswith("```"):
            fence = []
    return found


def parse_metadata(block: str) -> dict[str, str]:
    """The ``key: value`` lines of a ``### METADATA ###`` block."""
    meta = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def sniff(head: bytes) -> bool:
    """The file starts with ``### REQUEST ###``."""
    return _SNIFF.match(head) is not None


def parse(data: bytes, path: str) -> tuple[list[Exchange], list[Skipped]]:
    """One pair: ``([exchange], [])`` for an inbound pair, ``([], [skipped])`` otherwise."""
    source = os.path.basename(path) or path
    try:
        exchange = _pair(data, source)
    except _Skip as skip:
        skipped = [Skipped(source, str(skip))]
        no_inbound(path, skipped)
        return [], skipped
    except _Invalid as exc:
        raise TrafficFormatError(f"{path}: {exc}; fix or delete this file") from None
    return [exchange], []


def read_folder(folder: Path, shown: str) -> tuple[list[Exchange], list[Skipped]] | None:
    """Every pair in the ``*.md`` files below ``folder``, or ``None`` when it has none."""
    try:
        files = sorted(folder.rglob("*.md"))
    except OSError as exc:
        raise TrafficFormatError(f"{shown}: could not be listed ({exc.strerror or exc})") from exc
    if not files:
        return None
    exchanges: list[Exchange] = []
    skipped: list[Skipped] = []
    for file in files:
        name = file.relative_to(folder).as_posix()
        label = f"{shown.rstrip('/')}/{name}"
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise TrafficFormatError(
                f"{label}: could not be read ({exc.strerror or exc}); check its permissions"
            ) from exc
        if not sniff(data):
            skipped.append(Skipped(name, "not a proxymock pair (it does not start with "
                                         "### REQUEST ###)"))  # fmt: skip
            continue
        try:
            exchanges.append(_pair(data, name))
        except _Skip as skip:
            skipped.append(Skipped(name, str(skip)))
        except _Invalid as exc:
            raise TrafficFormatError(f"{label}: {exc}; fix or delete this file") from None
    if not exchanges:
        no_inbound(shown, skipped)
    return exchanges, skipped


def _pair(data: bytes, source: str) -> Exchange:
    """The exchange of an inbound pair, at its ``ts`` in seconds since the epoch."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"is not UTF-8 (byte {exc.start}: {exc.reason})") from None
    found = split_sections(text)
    if "REQUEST" not in found:
        raise _Invalid(
            "is not a proxymock pair: it needs a ### REQUEST ### section with a ``` block "
            "(and ### RESPONSE ###, ### METADATA ###)"
        )
    meta = parse_metadata(found.get("METADATA", [""])[0])
    direction = meta.get("direction")
    if direction == "OUT":
        raise _Skip(OUTBOUND)
    if direction != "IN":
        raise _Invalid(
            f"### METADATA ###: direction {quote(direction)} is neither IN (a request the service "
            "received) nor OUT (a call it made)"
        )
    head, body = head_and_body(found["REQUEST"])
    request_line, headers = _head(head, "REQUEST")
    method, url_host, target = _request_line(request_line)
    if "decoded=true" in meta.get("tags", "").replace(" ", "").split(","):
        headers = tuple((k, v) for k, v in headers if k.lower() != "content-encoding")
    ts = meta.get("ts")
    moment = iso8601(ts) if ts is not None else None
    if moment is None:
        raise _Invalid(f"### METADATA ###: ts {quote(ts)} is not an RFC 3339 date-time")
    host = next((value for name, value in headers if name.lower() == "host"), None)
    return Exchange(
        offset=moment,
        method=method,
        target=target,
        headers=headers,
        body=body.encode(),
        response=_response(found.get("RESPONSE")),
        host=url_host or host,
        source=source,
    )


def head_and_body(blocks: list[str]) -> tuple[str, str]:
    """A section's head block and its body block (``""`` when it has none)."""
    return blocks[0], blocks[1] if len(blocks) > 1 else ""


def header_field(line: str) -> tuple[str, str] | None:
    """``(name, value)`` of a ``Name: value`` head line, stripped, with ``\\,`` read as a comma;
    ``None`` for a line without a colon."""
    name, sep, value = line.partition(":")
    return (name.strip(), value.strip().replace("\\,", ",")) if sep else None


def _head(block: str, section: str) -> tuple[str, Headers]:
    start, *lines = block.splitlines() or [""]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            continue
        field = header_field(line)
        if field is None or not is_token(field[0]) or not is_header_value(field[1]):
            raise _Invalid(f"### {section} ###: header line {quote(line)} is not 'Name: value'")
        headers.append(field)
    return start.strip(), tuple(headers)


def _request_line(line: str) -> tuple[str, str | None, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not is_token(parts[0]) or _VERSION.fullmatch(parts[2]) is None:
        raise _Invalid(
            f"### REQUEST ###: first line {quote(line)} is not 'METHOD URL HTTP/x' "
            "('GET http://localhost:8080/search?q=1 HTTP/1.1')"
        )
    method, url, _ = parts
    try:
        host, target = host_and_target(url)
    except ValueError:
        raise _Invalid(
            f"### REQUEST ###: URL {quote(url)} is neither a path nor an http(s) URL"
        ) from None
    return method, host, target


def _response(blocks: list[str] | None) -> RecordedResponse | None:
    if not blocks:
        return None
    head, body = head_and_body(blocks)
    status_line, headers = _head(head, "RESPONSE")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None or int(match.group(1)) < 100:
        raise _Invalid(
            f"### RESPONSE ###: first line {quote(status_line)} is not 'HTTP/x STATUS REASON' "
            "('HTTP/1.1 200 OK')"
        )
    return RecordedResponse(int(match.group(1)), headers, body.encode())
