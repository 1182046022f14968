"""The shop records its own traffic when asked: ``SHOP_RECORD=path`` in the environment.

    SHOP_RECORD=traffic/recorded.jsonl uvicorn shop.app:app          # every request
    SHOP_RECORD=traffic/recorded.jsonl SHOP_RECORD_RATE=0.1 uvicorn shop.app:app

The file is native JSON Lines with secrets redacted (``pytest_soak.record``, docs/recording.md);
``replay_traffic("traffic/recorded.jsonl")`` replays it. ``/health`` (load balancers, readiness
checks) is not recorded. Without ``SHOP_RECORD`` the app is left exactly as it is.
"""

from __future__ import annotations

import os
from typing import Any


def with_recording(app: Any) -> Any:
    """``app`` wrapped in the recorder when ``SHOP_RECORD`` names a file, else ``app``."""
    path = os.environ.get("SHOP_RECORD", "")
    if not path:
        return app
    from pytest_soak.record import RecordingMiddleware

    rate = float(os.environ.get("SHOP_RECORD_RATE", "1.0"))
    return RecordingMiddleware(app, path, sample_rate=rate, exclude=["/health"])
