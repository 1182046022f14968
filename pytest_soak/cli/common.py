"""What every ``pytest-soak`` command shares: the input error and the exit codes."""

from __future__ import annotations

#: Exit codes: 1 is "a test got worse" (compare), 2 bad input or usage (as argparse).
WORSE, BAD_INPUT = 1, 2


class InputError(Exception):
    """A file that cannot be read or written: the message names it and says what to do."""


def plural(count: int, word: str) -> str:
    """``word`` as ``count`` of it reads: ``test`` or ``tests``."""
    return word if count == 1 else f"{word}s"
