"""The live progress line of a soak run (``report/progress.py`` writes it): on a terminal, one
line rewritten in place about once a second; elsewhere (CI logs), a line after the first second
and then every ``LOG_EVERY`` seconds. Quiet under ``-q`` and in pytest-xdist workers (their
output would interleave). Written with pytest's output capture suspended, as live logging is."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from pytest_soak.plugin import options
from pytest_soak.report.progress import Progress, progress_line

#: Off a terminal: seconds between two progress lines (the first comes after a second).
LOG_EVERY = 10.0


class ProgressLine:
    """Called by the engine with a run's ``Progress``; writes it for one test."""

    def __init__(self, config: pytest.Config, test_id: str) -> None:
        self.test_id = test_id
        self.reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        self.capture: Any = config.pluginmanager.get_plugin("capturemanager")
        self.tty = bool(self.reporter is not None and self.reporter.isatty)
        self.started = False
        self.last_written = 0.0

    def __call__(self, progress: Progress) -> None:
        if self.reporter is None:
            return
        if progress.done:
            if self.started and self.tty:
                self._write(lambda: self.reporter.rewrite("", erase=True))
            return
        now = time.monotonic()
        if not self.tty and self.started and now - self.last_written < LOG_EVERY:
            return
        line = progress_line(self.test_id, progress)
        if self.tty:
            first = not self.started
            self._write(lambda: self._rewrite(line, first))
        else:
            self._write(lambda: self.reporter.write_line(line))
        self.started, self.last_written = True, now

    def _rewrite(self, line: str, first: bool) -> None:
        if first:
            self.reporter.write_line("")  # below pytest's own line for the test
        width = shutil.get_terminal_size().columns - 1
        self.reporter.rewrite(line[:width], erase=True)

    def _write(self, write: Any) -> None:
        if self.capture is None:
            write()
            return
        with self.capture.global_and_fixture_disabled():
            write()


def progress_for(config: pytest.Config, test_id: str) -> ProgressLine | None:
    """The progress line of a test, or None: under ``-q`` and in xdist workers."""
    if config.get_verbosity() < 0 or options.is_worker(config):
        return None
    return ProgressLine(config, test_id)
