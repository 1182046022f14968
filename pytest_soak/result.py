"""``SoakResult``: what ``soak.run`` returns: the verdict, the run, the analysis, the samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_soak.analysis import FAILING_VERDICTS, Analysis, Verdict
from pytest_soak.analysis.thresholds import ThresholdOutcome, crossed, verdict_line
from pytest_soak.driver.records import Run

__all__ = ["FAILING_VERDICTS", "RunCutShort", "SoakResult"]


@dataclass
class SoakResult:
    test_id: str
    #: ``ok``, ``inconclusive`` and ``suspicious`` pass; ``leak`` (the leak rule),
    #: ``regression`` (growth over the committed baseline plus tolerance, even without a
    #: steady trend) and ``error`` (the run could not be judged: the service died, or
    #: ``--soak-strict`` and no baseline) fail.
    verdict: Verdict
    reason: str
    mode: str
    settings: dict[str, Any]
    run: Run
    analysis: Analysis
    floors: list[dict[str, float]]
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    harness: dict[str, float] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    service_output: str = ""
    baseline: dict[str, Any] = field(default_factory=dict)  # how it compared, and why (not)
    isolation: dict[str, Any] = field(default_factory=dict)  # culprit endpoint/variation (isolate)
    mocks: dict[str, Any] = field(default_factory=dict)  # soak_mocks stats per mock set
    #: The marker's ``thresholds``, each judged once on the run's merged per-phase data. They
    #: do not change ``verdict`` (memory's); a crossed one fails the test all the same.
    thresholds: list[ThresholdOutcome] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """The test fails: ``leak``, ``regression`` or ``error``, or a threshold crossed."""
        return self.verdict in FAILING_VERDICTS or bool(crossed(self.thresholds))

    @property
    def passed(self) -> bool:
        """The test passes: ``ok``, ``inconclusive`` or ``suspicious`` (reported, not failed)
        and every threshold kept."""
        return not self.failed

    @property
    def verdict_text(self) -> str:
        """``LEAK``; with thresholds ``OK (memory), 1 threshold crossed``."""
        return verdict_line(self.verdict, len(self.thresholds), len(crossed(self.thresholds)))

    @property
    def growth_per_request(self) -> float:
        primary = self.analysis.primary
        return primary.slope if primary is not None else 0.0

    @property
    def growth(self) -> float:
        primary = self.analysis.primary
        return primary.growth if primary is not None else 0.0

    def explain(self) -> str:
        """The full failure text: verdict, limits vs observed, phase table, sites, notes."""
        from pytest_soak.report.failure import render_explanation

        return render_explanation(self)

    def to_dict(self) -> dict[str, Any]:
        from pytest_soak.report.json_report import result_to_dict

        return result_to_dict(self)

    def __repr__(self) -> str:
        return f"<SoakResult {self.test_id or '?'} verdict={self.verdict} requests={self.run.sent}>"


class RunCutShort(KeyboardInterrupt):
    """Ctrl-C while ``soak.run`` replayed: the run was not judged. ``measured`` is what it had
    measured (a JSON-able dict shaped like a result's: ``test_id``, ``samples``,
    ``checkpoints``, how far it got; docs/json.md ``cut_short``). Still a KeyboardInterrupt:
    pytest stops the session as for any Ctrl-C."""

    def __init__(self, measured: dict[str, Any]) -> None:
        super().__init__(f"soak run cut short: {measured.get('test_id') or '?'}")
        self.measured = measured
