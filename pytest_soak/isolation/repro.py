"""The reproduction file: the confirmed culprit traffic, beside the test, secrets redacted.

``<module>.<test>.leak-repro.jsonl`` in the native JSON Lines format (``pytest_soak.load_traffic``
reads it), so a leak found by isolation can become a regression test. It holds only the traffic
of confirmed culprits (``isolation.culprits``): exactly what the trial that confirmed them
replayed alone. Secrets are redacted: headers (by name or by part of the name), query parameters
and JSON or form body fields; the recorded response keeps its status only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pytest_soak.files import write_atomic
from pytest_soak.traffic.model import Exchange, RecordedResponse
from pytest_soak.traffic.redaction import SECRET_HEADERS, is_secret_name

# Which names are secret is ``traffic.redaction``'s rule, shared with the reports.
__all__ = ["REDACTED", "SECRET_HEADERS", "is_secret_name", "redact", "repro_path", "write_repro"]

REDACTED = "REDACTED"


def repro_path(base_dir: Path, test_id: str, run: int = 1) -> Path:
    """``<module>.<test>.leak-repro.jsonl`` beside the test (``-2`` for a test's second run)."""
    module, _, name = test_id.partition("::")
    stem = Path(module).stem if module else "soak"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("::", ".")).strip("_") or "test"
    suffix = f"-{run}" if run > 1 else ""
    return base_dir / f"{stem}.{name}{suffix}.leak-repro.jsonl"


def write_repro(path: Path, exchanges: Sequence[Exchange], *, header: Sequence[str] = ()) -> Path:
    """Native JSON Lines (``pytest_soak.load_traffic`` reads it), secrets redacted, written
    atomically (``write_atomic``)."""
    from pytest_soak.traffic.jsonl import dumps

    lines = "".join(f"# {line}\n" for line in header)
    return write_atomic(path, lines + dumps(redact(e) for e in exchanges))


def redact(exchange: Exchange) -> Exchange:
    """The exchange without secrets: sensitive headers, query values and JSON body fields
    become ``REDACTED``; the recorded response keeps its status only."""
    headers = tuple((k, REDACTED if is_secret_name(k) else v) for k, v in exchange.headers)
    target = exchange.target
    if exchange.query:
        pairs = parse_qsl(exchange.query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            redacted = [(k, REDACTED if is_secret_name(k) else v) for k, v in pairs]
            target = f"{exchange.path}?{urlencode(redacted)}"
    body = _redact_body(exchange.body, exchange.header("content-type") or "")
    response = RecordedResponse(exchange.response.status) if exchange.response is not None else None
    return dataclasses.replace(
        exchange, headers=headers, target=target, body=body, response=response
    )


def _redact_body(body: bytes, content_type: str) -> bytes:
    import json

    if not body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    if "form-urlencoded" in content_type.lower():
        pairs = parse_qsl(text, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            return urlencode([(k, REDACTED if is_secret_name(k) else v) for k, v in pairs]).encode()
        return body
    try:
        value = json.loads(text)
    except ValueError:
        return body
    cleaned, changed = _redact_json(value)
    return json.dumps(cleaned).encode() if changed else body


def _redact_json(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_name(str(key)) and not isinstance(item, (dict, list)):
                out[key], changed = REDACTED, True
            else:
                out[key], sub = _redact_json(item)
                changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [_redact_json(item) for item in value]
        return [i for i, _ in items], any(c for _, c in items)
    return value, False
