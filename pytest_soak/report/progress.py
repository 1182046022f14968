"""Live progress of a soak run: ``Progress``, what the engine says about a run while it goes
(about once a second), and ``progress_line``, the one line the terminal shows for it."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_soak.units import format_duration, format_figure


@dataclass(frozen=True)
class Progress:
    """A run in progress: where in its cycles and phases, how far in time, the rates, what is in
    flight, late and failed, and memory now against the last floor."""

    cycle: int  # 0: the warm-up
    cycles: int  # warm-up and measured (and extra, once they run)
    phase: str
    elapsed: float
    planned: float
    target_rps: float
    achieved_rps: float
    in_flight: int
    sent: int
    late: int
    errors: int
    metric: str  # the judged metric's label
    unit: str
    now: float | None  # its latest sample
    floor: float | None  # its last floor (nothing in flight)
    done: bool = False


def progress_line(test_id: str, p: Progress) -> str:
    cycle = "warm-up" if p.cycle == 0 else f"cycle {p.cycle}/{p.cycles - 1}"
    memory = ""
    if p.now is not None:
        memory = f" | {p.metric} {format_figure(p.now, p.unit)}"
        if p.floor is not None:
            memory += f" (last floor {format_figure(p.floor, p.unit)})"
    return (
        f"soak {test_id}: {cycle} {p.phase} | {format_duration(p.elapsed)} of "
        f"{format_duration(p.planned)} | {p.achieved_rps:,.0f}/{p.target_rps:,.0f} req/s | "
        f"{p.in_flight} in flight | {p.sent:,} sent, {p.late:,} late, {p.errors:,} errors" + memory
    )
