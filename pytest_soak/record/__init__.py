"""Record your own service's traffic, in staging or production, for soak tests to replay.

    from pytest_soak.record import RecordingMiddleware
    app = RecordingMiddleware(app, "traffic/traffic.jsonl", sample_rate=0.1, exclude=["/health"])

An ASGI middleware (``RecordingMiddleware``) and a WSGI twin (``WSGIRecordingMiddleware``)
sample requests and their responses into native JSON Lines that ``load_traffic`` and
``replay_traffic`` read; secrets are redacted before anything is written (``Redaction``; the
defaults mask Authorization, Cookie, Set-Cookie and token/password/secret/api-key names); a
bounded queue and a writer thread keep the disk off the request path (a full queue drops and
counts, never blocks); files rotate by size. See docs/recording.md.

This package runs inside production services: it imports neither pytest nor an HTTP client.
"""

from __future__ import annotations

from pytest_soak.record.asgi import RecordingMiddleware
from pytest_soak.record.recorder import Recorder, RecorderStats
from pytest_soak.record.wsgi import WSGIRecordingMiddleware
from pytest_soak.traffic.redaction import DEFAULT_REDACTION, Redaction

__all__ = [
    "DEFAULT_REDACTION",
    "Recorder",
    "RecorderStats",
    "RecordingMiddleware",
    "Redaction",
    "WSGIRecordingMiddleware",
]
