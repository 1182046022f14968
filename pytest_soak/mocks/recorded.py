"""Automatic mocks from recorded outbound traffic: HAR, GoReplay, Speedscale RRPair (JSONL, and
proxymock's markdown: only ``OUT`` pairs), VCR cassettes (vcrpy's format, vcrpy's old pickled-
class format, and Ruby VCR's ``http_interactions``), or a loaded ``Traffic``.

Each recorded exchange with a response becomes one response of the stub for its request
signature: method, host (when ``match_host``), path, the exact set of query parameters, and
optionally the JSON body (``match_body``) and named headers (``match_headers``). Several
recordings of one signature are served in recorded order, then again from the first. Recorded
latency is replayed times ``latency_factor`` when one is given.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_soak.errors import MockDefinitionError, SoakError
from pytest_soak.mocks.definitions import (
    Delay,
    MockDefinitions,
    RequestPattern,
    Response,
    Stub,
    UrlPattern,
    ValuePattern,
    canonical_json,
)
from pytest_soak.traffic.fields import is_target, json_kind, split_url
from pytest_soak.traffic.model import Exchange, Traffic

#: Skipped exchanges listed by name before the rest are only counted.
_SHOWN_SKIPS = 20
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded outbound call. ``decoded``: the body is stored decompressed (a recorded
    ``Content-Encoding`` header no longer applies to it)."""

    method: str
    host: str | None
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    latency_ms: float | None = None
    decoded: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SignatureOptions:
    match_host: bool = True
    match_body: bool = False
    match_headers: tuple[str, ...] = ()
    latency_factor: float | None = None


def stubs_from_recordings(
    recordings: Iterable[Recording], options: SignatureOptions
) -> tuple[Stub, ...]:
    """One stub per signature, its responses in recorded order."""
    groups: dict[tuple[Any, ...], list[Recording]] = {}
    for recording in recordings:
        groups.setdefault(_signature(recording, options), []).append(recording)
    stubs: list[Stub] = []
    names: dict[str, int] = {}
    for recorded in groups.values():
        first = recorded[0]
        base = f"{first.method} {_bare(first.host) if options.match_host and first.host else ''}"
        base += urlsplit(first.target).path or "/"
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base} #{names[base]}"
        stubs.append(
            Stub(
                name=name,
                request=_pattern(first, options),
                responses=tuple(_response(r, options) for r in recorded),
            )
        )
    return tuple(stubs)


def _signature(r: Recording, options: SignatureOptions) -> tuple[Any, ...]:
    split = urlsplit(r.target)
    return (
        r.method.upper(),
        _bare(r.host) if options.match_host and r.host else None,
        split.path or "/",
        tuple(sorted(parse_qsl(split.query, keep_blank_values=True))),
        _body_key(r.body) if options.match_body else None,
        tuple(_header(r.headers, name) for name in options.match_headers),
    )


def _body_key(body: bytes) -> str:
    try:
        return "json:" + canonical_json(json.loads(body))
    except (ValueError, RecursionError):
        return "text:" + body.decode("utf-8", "replace")


def _pattern(r: Recording, options: SignatureOptions) -> RequestPattern:
    split = urlsplit(r.target)
    body: tuple[ValuePattern, ...] = ()
    if options.match_body:
        key = _body_key(r.body)
        if key.startswith("json:"):
            body = (ValuePattern("equalToJson", json.loads(key[5:])),)
        elif r.body:
            body = (ValuePattern("equalTo", key[5:]),)
        else:
            body = (ValuePattern("absent", True),)
    headers: list[tuple[str, ValuePattern]] = []
    for name in options.match_headers:
        value = _header(r.headers, name)
        headers.append(
            (
                name,
                ValuePattern("absent", True) if value is None else ValuePattern("equalTo", value),
            )
        )
    return RequestPattern(
        method=r.method.upper(),
        url=UrlPattern("urlPath", split.path or "/"),
        headers=tuple(headers),
        body=body,
        host=_bare(r.host) if options.match_host and r.host else None,
        query_exact=tuple(sorted(parse_qsl(split.query, keep_blank_values=True))),
    )


def _response(r: Recording, options: SignatureOptions) -> Response:
    headers = []
    for name, value in r.response_headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if lowered == "content-encoding" and (
            r.decoded
            or (value.strip().lower() == "gzip" and not r.response_body.startswith(b"\x1f\x8b"))
        ):
            continue
        headers.append((name, value))
    delays: tuple[Delay, ...] = ()
    if options.latency_factor and r.latency_ms:
        delays = (Delay("fixed", max(0.0, r.latency_ms * options.latency_factor)),)
    return Response(r.status, tuple(headers), r.response_body, r.reason, delays)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _bare(host: str | None) -> str:
    host = (host or "").lower()
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# -- sources -----------------------------------------------------------------------------------


class Skips:
    """Exchanges that cannot be mocks (no response, inbound…), listed briefly."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.lines) < _SHOWN_SKIPS:
            self.lines.append(line)
        else:
            self.more += 1

    def listed(self) -> tuple[str, ...]:
        if self.more:
            return (*self.lines, f"… and {self.more} more not used")
        return tuple(self.lines)


def from_traffic(traffic: Traffic, skips: Skips, latencies: dict[str, float] | None = None,
                 decoded: bool = False) -> list[Recording]:  # fmt: skip
    recordings: list[Recording] = []
    for exchange in traffic:
        recording = _from_exchange(exchange, latencies or {}, decoded)
        if recording is None:
            skips.add(f"{traffic.path}: {exchange.source or exchange.target}: no recorded response")
        else:
            recordings.append(recording)
    return recordings


def _from_exchange(
    exchange: Exchange, latencies: dict[str, float], decoded: bool
) -> Recording | None:
    response = exchange.response
    if response is None:
        return None
    return Recording(
        method=exchange.method,
        host=exchange.host or exchange.header("host"),
        target=exchange.target,
        headers=exchange.headers,
        body=exchange.body,
        status=response.status,
        response_headers=response.headers,
        response_body=response.body,
        latency_ms=latencies.get(exchange.source),
        decoded=decoded,
    )


def load_har(path: Path, shown: str, skips: Skips) -> list[Recording]:
    from pytest_soak.traffic import parse_traffic

    data = _read(path, shown)
    traffic = _traffic(lambda: parse_traffic(data, shown, "har"))
    latencies: dict[str, float] = {}
    try:
        entries = json.loads(data.decode("utf-8-sig"))["log"]["entries"]
        for index, entry in enumerate(entries):
            wait = (entry.get("timings") or {}).get("wait")
            total = entry.get("time")
            value = wait if isinstance(wait, (int, float)) and wait >= 0 else total
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                latencies[f"entry {index}"] = float(value)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # the parser above has accepted the file; latency is a bonus
    return from_traffic(traffic, skips, latencies, decoded=True)


def load_goreplay(path: Path, shown: str, skips: Skips) -> list[Recording]:
    from pytest_soak.traffic import parse_traffic
    from pytest_soak.traffic.goreplay import SEPARATOR

    data = _read(path, shown)
    traffic = _traffic(lambda: parse_traffic(data, shown, "goreplay"))
    latencies: dict[str, float] = {}
    request_ids: dict[str, str] = {}
    response_latency: dict[str, float] = {}
    for number, payload in enumerate(data.split(SEPARATOR), start=1):
        head = payload.lstrip(b"\n").split(b"\n", 1)[0].split()
        if len(head) < 3:
            continue
        kind, ident = head[0], head[1].decode("ascii", "replace")
        if kind == b"1":
            request_ids[f"payload {number}"] = ident
        elif kind == b"2" and len(head) >= 4 and head[3].lstrip(b"-").isdigit():
            response_latency[ident] = int(head[3]) / 1e6
    for source, ident in request_ids.items():
        if ident in response_latency and response_latency[ident] >= 0:
            latencies[source] = response_latency[ident]
    return from_traffic(traffic, skips, latencies)


def _traffic(parse: Any) -> Traffic:
    try:
        traffic: Traffic = parse()
    except SoakError as exc:
        raise MockDefinitionError(f"{exc}") from None
    return traffic


def load_rrpair_jsonl(path: Path, shown: str, skips: Skips) -> list[Recording]:
    recordings: list[Recording] = []
    text = _read(path, shown).decode("utf-8-sig", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{shown}: line {number}"
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise MockDefinitionError(
                f"{where}: is not JSON ({exc}); fix or delete the line"
            ) from None
        if not isinstance(item, dict):
            raise MockDefinitionError(f"{where}: is {json_kind(item)}, not an RRPair object")
        if item.get("direction") != "OUT":
            skips.add(f"{where}: direction {item.get('direction')!r} (only OUT pairs are mocks)")
            continue
        http = item.get("http")
        if not isinstance(http, dict) or not isinstance(http.get("req"), dict):
            skips.add(f"{where}: not an HTTP pair ({item.get('l7protocol')!r})")
            continue
        req, res = http["req"], http.get("res")
        if not isinstance(res, dict):
            skips.add(f"{where}: no recorded response")
            continue
        method, target = req.get("method"), req.get("uri") or req.get("url")
        if not isinstance(method, str) or not isinstance(target, str) or not is_target(target):
            raise MockDefinitionError(
                f"{where}: field http.req.method/uri {method!r} {target!r} is not a request; "
                "fix or delete the line"
            )
        status = res.get("statusCode")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise MockDefinitionError(
                f"{where}: field http.res.statusCode {status!r} is not a status"
            )
        duration = item.get("duration")
        recordings.append(
            Recording(
                method=method.upper(),
                host=req.get("host") if isinstance(req.get("host"), str) else None,
                target=target,
                headers=_multi_headers(req.get("headers"), f"{where}: http.req.headers"),
                body=_b64(req.get("bodyBase64"), f"{where}: http.req.bodyBase64"),
                status=status,
                response_headers=_multi_headers(res.get("headers"), f"{where}: http.res.headers"),
                response_body=_b64(res.get("bodyBase64"), f"{where}: http.res.bodyBase64"),
                latency_ms=float(duration) if isinstance(duration, (int, float)) else None,
                decoded=True,
            )
        )
    return recordings


def _multi_headers(value: object, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise MockDefinitionError(f"{field} is {json_kind(value)}, not an object")
    out: list[tuple[str, str]] = []
    for name, values in value.items():
        for item in values if isinstance(values, list) else [values]:
            out.append((str(name), str(item)))
    return tuple(out)


def _b64(value: object, field: str) -> bytes:
    if value in (None, ""):
        return b""
    if not isinstance(value, str):
        raise MockDefinitionError(f"{field} is {json_kind(value)}, not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MockDefinitionError(f"{field} is not valid base64; fix or delete the pair") from None


# -- proxymock markdown ----------------------------------------------------------------------

_SECTION = re.compile(r"###\s*([A-Z -]+?)\s*###\s*")


def load_proxymock(path: Path, shown: str, skips: Skips) -> list[Recording]:
    """A proxymock recording: one ``.md`` file per pair, or a folder of them (recursively)."""
    files = sorted(path.rglob("*.md")) if path.is_dir() else [path]
    timed: list[tuple[str, int, Recording]] = []
    for order, file in enumerate(files):
        label = shown if file == path else str(Path(shown) / file.relative_to(path))
        parsed = _proxymock_pair(_read(file, label).decode("utf-8", "replace"), label, skips)
        if parsed is not None:
            timed.append((parsed[0], order, parsed[1]))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [recording for _, _, recording in timed]


def _proxymock_pair(text: str, label: str, skips: Skips) -> tuple[str, Recording] | None:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    fence: list[str] | None = None
    for line in text.splitlines():
        if fence is not None:
            if line.strip() == "```":
                if current is not None:
                    sections.setdefault(current, []).append("\n".join(fence))
                fence = None
            else:
                fence.append(line)
            continue
        heading = _SECTION.fullmatch(line.strip())
        if heading:
            current = heading.group(1).strip()
        elif line.strip().startswith("```"):
            fence = []
    if "REQUEST" not in sections or "RESPONSE" not in sections:
        raise MockDefinitionError(
            f"{label}: is not a proxymock recording: it needs ### REQUEST ### and "
            "### RESPONSE ### sections with ``` blocks"
        )
    meta = _metadata(sections.get("METADATA", [""])[0])
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
    return blocks[0], blocks[1] if len(blocks) > 1 else ""


def _header_lines(lines: Iterable[str]) -> tuple[tuple[str, str], ...]:
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.append((name.strip(), value.strip().replace("\\,", ",")))
    return tuple(headers)


def _metadata(block: str) -> dict[str, str]:
    meta = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def _duration_ms(text: str) -> float | None:
    match = re.fullmatch(r"([0-9.]+)\s*(ms|s|us|µs)?", text.strip())
    if match is None:
        return None
    factor = {"s": 1000.0, "us": 0.001, "µs": 0.001}.get(match.group(2) or "ms", 1.0)
    try:
        return float(match.group(1)) * factor
    except ValueError:
        return None


# -- VCR cassettes -----------------------------------------------------------------------------


def load_vcr(path: Path, shown: str, skips: Skips) -> list[Recording]:
    document = _yaml(_read(path, shown), shown)
    if isinstance(document, dict) and isinstance(document.get("http_interactions"), list):
        items, dialect = document["http_interactions"], "ruby"
    elif isinstance(document, dict) and isinstance(document.get("interactions"), list):
        items, dialect = document["interactions"], "vcrpy"
    elif isinstance(document, list):
        items, dialect = document, "vcrpy-old"
    else:
        raise MockDefinitionError(
            f"{shown}: is not a VCR cassette: expected 'interactions:' (vcrpy), "
            "'http_interactions:' (Ruby VCR) or a list of request/response pairs (old vcrpy)"
        )
    recordings = []
    for index, item in enumerate(items):
        where = f"{shown}: interaction {index}"
        try:
            recordings.append(_interaction(item, dialect))
        except _Bad as exc:
            raise MockDefinitionError(f"{where}: {exc}; fix or delete this interaction") from None
    return recordings


class _Bad(Exception):
    pass


def _interaction(item: object, dialect: str) -> Recording:
    if not isinstance(item, dict):
        raise _Bad(f"is {json_kind(item)}, not a request/response pair")
    request, response = item.get("request"), item.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise _Bad("field request or response is missing or not a mapping")
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise _Bad(f"field request.method {method!r} is not an HTTP method")
    if "uri" in request:
        try:
            _, host, target = split_url(str(request["uri"]))
        except ValueError:
            raise _Bad(f"field request.uri {request['uri']!r} is not an absolute URL") from None
    else:  # old vcrpy: host, port, path, protocol
        host, target = request.get("host"), str(request.get("path") or "/")
        port = request.get("port")
        if isinstance(host, str) and port not in (None, 80, 443):
            host = f"{host}:{port}"
    if not is_target(target):
        raise _Bad(f"field request.uri has the path {target!r}, which is not a request target")
    status = response.get("status")
    code = status.get("code") if isinstance(status, dict) else response.get("status_code", status)
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        raise _Bad(f"field response.status.code {code!r} is not an HTTP status")
    message = status.get("message") if isinstance(status, dict) else ""
    decoded = "content" in response and "body" not in response  # httpx's legacy keys
    body = response["content"] if decoded else response.get("body")
    return Recording(
        method=method.upper(),
        host=host if isinstance(host, str) else None,
        target=target,
        headers=_vcr_headers(request.get("headers"), "request.headers"),
        body=_vcr_body(request.get("body"), "request.body"),
        status=code,
        response_headers=_vcr_headers(response.get("headers"), "response.headers"),
        response_body=_vcr_body(body, "response.body"),
        decoded=decoded,
        reason=message if isinstance(message, str) else "",
    )


def _vcr_headers(value: object, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        out = []
        for name, values in value.items():
            for item in values if isinstance(values, list) else [values]:
                out.append((str(name), "" if item is None else str(item)))
        return tuple(out)
    if isinstance(value, list):
        if (
            len(value) == 1
            and isinstance(value[0], list)
            and all(isinstance(p, list) for p in value[0])
        ):
            value = value[0]  # old vcrpy: !!python/object/apply:frozenset [[pairs]]
        out = []
        for item in value:
            if isinstance(item, list) and len(item) == 2:
                out.append((str(item[0]), str(item[1])))
            elif isinstance(item, str) and ":" in item:  # old vcrpy: "name: value\r\n"
                name, _, text = item.partition(":")
                out.append((name.strip(), text.strip()))
            else:
                raise _Bad(f"field {field} has {item!r}, which is not a header")
        return tuple(out)
    raise _Bad(f"field {field} is {json_kind(value)}, not a mapping of headers")


def _vcr_body(value: object, field: str) -> bytes:
    if isinstance(value, dict):
        if "base64_string" in value:  # Ruby VCR
            encoded = value["base64_string"]
            try:
                return base64.b64decode(str(encoded))
            except (binascii.Error, ValueError):
                raise _Bad(f"field {field}.base64_string is not valid base64") from None
        value = value.get("string")
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    raise _Bad(f"field {field} is {json_kind(value)}, not text or !!binary")


def _yaml(data: bytes, shown: str) -> object:
    import yaml

    class Loader(yaml.SafeLoader):
        """Safe loading; the ``!!python/...`` tags of old vcrpy cassettes become plain data
        (never objects: a cassette is input, not code)."""

    def plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", plain)
    try:
        return yaml.load(data, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise MockDefinitionError(
            f"{shown}: is not valid YAML{where} ({exc.problem}); fix the cassette there"
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise MockDefinitionError(f"{shown}: is not valid YAML ({exc})") from None


def _read(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MockDefinitionError(f"{shown}: could not be read ({exc.strerror or exc})") from None


def definitions(
    recordings: list[Recording],
    skips: Skips,
    *,
    source: str,
    format: str,
    options: SignatureOptions,
) -> MockDefinitions:
    if not recordings:
        shown = skips.listed()
        listed = "".join(f"\n  - {line}" for line in shown[:5])
        if len(shown) > 5 or skips.more:
            listed += f"\n  - … and {len(shown) - 5 + skips.more} more"
        raise MockDefinitionError(
            f"{source}: has no recorded outbound exchange with a response to mock{listed}"
        )
    return MockDefinitions(
        stubs_from_recordings(recordings, options),
        source=source,
        format=format,
        ignored=skips.listed(),
    )
