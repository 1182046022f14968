"""The reproduction file: the confirmed culprit traffic, beside the test, secrets redacted.

``<module>.<test>.leak-repro.jsonl`` in the native JSON Lines format (``pytest_soak.load_traffic``
reads it), so a leak found by isolation can become a regression test. It holds only the traffic
of confirmed culprits (``isolation.culprits``): exactly what the trial that confirmed them
replayed alone. Secrets are redacted: headers (by name or by part of the name), query parameters
and JSON or form body fields; the recorded response keeps its status only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pytest_soak.files import write_atomic
from pytest_soak.traffic.model import Exchange
from pytest_soak.traffic.redaction import REDACTED, SECRET_HEADERS, is_secret_name, redact_exchange

# Which names are secret is ``traffic.redaction``'s rule, shared with the reports.
__all__ = ["REDACTED", "SECRET_HEADERS", "is_secret_name", "redact", "repro_path", "write_repro"]


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
    """The exchange without secrets: sensitive headers, query values and JSON or form body
    fields become ``REDACTED``; the recorded response keeps its status only."""
    return redact_exchange(exchange, response=False)
