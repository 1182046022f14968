"""The one way pytest-soak writes a file a person or a tool will read: baselines, the JSON report,
leak reproductions.

Atomic: the bytes go to a temp file in the same folder, are flushed to disk, and the temp file is
renamed over the target, so a crash or a concurrent reader never sees half a file. The temp file
is removed on any error (even ``KeyboardInterrupt``). A new file gets mode 0644 like any source
file (``mkstemp`` makes 0600); a file being replaced keeps its mode.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8) to ``path``, creating its folder; returns the path."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = NEW_FILE_MODE
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
