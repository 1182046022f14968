"""Speedscale RRPair JSON Lines (``.jsonl`` whose first line has ``"msgType"``): ``OUT`` pairs
only (``IN`` pairs are the service's own traffic), ``duration`` as latency."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks.recorded.grouping import Recording, Skips, read_bytes
from pytest_soak.traffic.fields import is_target, json_kind

LOOKS_LIKE = "RRPair JSONL"
SUFFIXES = (".jsonl", ".ndjson")


def sniff(head: bytes) -> bool:
    return b'"msgType"' in head.split(b"\n", 1)[0]


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    recordings: list[Recording] = []
    text = read_bytes(path, shown).decode("utf-8-sig", "replace")
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
