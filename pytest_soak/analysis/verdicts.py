"""The verdicts a soak run can get, from best to worst, and which of them fail the test."""

from __future__ import annotations

from typing import Literal

Verdict = Literal["ok", "suspicious", "inconclusive", "leak", "regression", "error"]
#: Verdicts from best to worst; ``regression`` is given by the baseline comparison.
#: ``inconclusive`` (a narrow miss of the leak rule: extra cycles are replayed) is nearer a leak
#: than ``suspicious`` (grew, but not as a leak does), so a judged metric's narrow miss is never
#: hidden behind a secondary metric's growth.
VERDICT_ORDER: tuple[Verdict, ...] = (
    "ok",
    "suspicious",
    "inconclusive",
    "leak",
    "regression",
    "error",
)
FAILING_VERDICTS: tuple[Verdict, ...] = ("leak", "regression", "error")
