"""What the benchmarks share: a transcript printed as it goes and written to ``--out`` at the
end (after what the file already held, when asked to keep it), and a ratio's spread."""

from __future__ import annotations

import statistics
from pathlib import Path

from pytest_soak.files import write_atomic


class Transcript:
    """Lines printed as a benchmark says them, kept to write to a file at its end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)

    def write(self, path: Path | None, *, keep_old: bool = False) -> None:
        """Write the transcript to ``path`` (nothing without one); ``keep_old`` puts it after
        what the file held, so reruns stack up in one file."""
        if path is None:
            return
        text = "\n".join(self.lines) + "\n"
        if keep_old and path.exists():
            text = path.read_text().rstrip("\n") + "\n" + text
        write_atomic(path, text)


def spread(values: list[float], *, stdev: bool = False) -> str:
    """``mean (min …, max …)``, and the standard deviation when asked and there are two or more."""
    shown = f", stdev {statistics.stdev(values):.3f}" if stdev and len(values) > 1 else ""
    return f"{statistics.mean(values):.3f} (min {min(values):.3f}, max {max(values):.3f}{shown})"
