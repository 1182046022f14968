"""Size-based rotation: ``traffic.jsonl`` is the file being written, ``traffic.1.jsonl`` the one
before it, ... up to ``traffic.{backups}.jsonl``; older ones are deleted.

A file is rotated before a line would take it past ``max_bytes`` (a file always holds at least
one line, so one line longer than ``max_bytes`` makes a file of its own; the recorder's ``#``
notes about drops and errors stay in the file they are about, a few hundred bytes at most
past ``max_bytes``). Each file starts with a ``#`` comment naming the recording, and holds
whole lines only, so each loads on its own with ``load_traffic``. A recorder never appends to
an earlier run's file: a non-empty file at ``path`` is rotated away when the first line is
written.

Used by one thread only (the recorder's writer).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def backup_path(path: Path, number: int) -> Path:
    """``traffic.jsonl`` -> ``traffic.{number}.jsonl`` (number 0 is ``path`` itself)."""
    if number == 0:
        return path
    return path.with_name(f"{path.stem}.{number}{path.suffix}")


class RotatingFile:
    def __init__(self, path: Path, max_bytes: int, backups: int, header: Callable[[], str]):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._header = header  # the comment that starts each file
        self._file: BinaryIO | None = None
        self._size = 0
        self._lines = 0  # lines other than the header in the current file
        self._opened = False
        self.rotations = 0

    def write(self, text: str, *, note: bool = False) -> int:
        """Write whole lines; returns the bytes written. A ``note`` (a ``#`` comment about the
        lines before it) never starts a new file: it may take this one a little past
        ``max_bytes``, and a file never holds notes only."""
        data = text.encode("utf-8")
        if self._file is None:
            self._open()
        elif not note and self._lines and self._size + len(data) > self.max_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)
        self._lines += 1
        return len(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
                if self.path.is_file():
                    os.fsync(self._file.fileno())
            finally:
                self._file.close()
                self._file = None

    def paths(self) -> list[Path]:
        """The files of this recording that exist, newest first."""
        found = [backup_path(self.path, n) for n in range(self.backups + 1)]
        return [p for p in found if p.exists()]

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._opened and self.path.is_file() and self.path.stat().st_size > 0:
            self._shift()  # an earlier run's file: keep it as traffic.1.jsonl
        self._opened = True
        self._file = open(self.path, "ab")  # noqa: SIM115 (held open across calls)
        self._size = 0
        self._lines = 0
        header = self._header().encode("utf-8")
        self._file.write(header)
        self._size += len(header)

    def _rotate(self) -> None:
        self.close()
        self._shift()
        self.rotations += 1
        self._open()

    def _shift(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for number in range(self.backups, 0, -1):
            source = backup_path(self.path, number - 1)
            if source.exists():
                os.replace(source, backup_path(self.path, number))
