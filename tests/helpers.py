"""Helpers shared by the tests: ``from tests.helpers import item_traffic_lines``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
APPS = Path(__file__).parent / "apps"


def item_traffic_lines(ids: int, total: int | None = None, *, gap: float = 0.01) -> str:
    """Native JSONL traffic: ``GET /item/i000000`` … cycling over ``ids`` distinct ids."""
    total = total or ids
    lines = [
        json.dumps({"offset": round(n * gap, 4), "method": "GET", "url": f"/item/i{n % ids:06d}",
                    "headers": {"User-Agent": "soak-tests"}})
        for n in range(total)
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


@st.composite
def mutations(
    draw: st.DrawFn,
    original: bytes,
    snippets: Sequence[bytes],
    *,
    edits: int = 4,
    cut: int = 40,
    inserted: tuple[int, int] = (1, 12),
    truncate: bool = True,
) -> bytes:
    """``original`` with 1 to ``edits`` edits: a byte flipped, up to ``cut`` bytes deleted, bytes
    (``inserted`` is the min and max size) or one of ``snippets`` inserted, and (``truncate``)
    the rest cut off. A flip past the end does what the last action does: cut nothing, or insert.
    """
    data = bytearray(original)
    actions = ["flip", "delete", "insert", "truncate"] if truncate else ["flip", "delete", "insert"]
    for _ in range(draw(st.integers(1, edits))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(actions))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, cut))]
        elif action == "truncate" or (action == "flip" and truncate):
            del data[at:]
        else:
            low, high = inserted
            data[at:at] = draw(st.binary(min_size=low, max_size=high) | st.sampled_from(snippets))
    return bytes(data)


def node_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path (keys and indexes) of every node of a decoded JSON tree, the root ``()`` first."""
    found = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            found += node_paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += node_paths(child, (*path, index))
    return found


def copy_test_services(folder: Path) -> None:
    """Copy the test services into ``folder/apps`` so a pytester run imports ``apps.services``."""
    target = folder / "apps"
    target.mkdir()
    for name in ("__init__.py", "services.py"):
        (target / name).write_text((APPS / name).read_text())


def soak_result_dict(
    test_id: str = "tests/test_shop.py::test_shop",
    *,
    verdict: str = "leak",
    per_request: float = 130.0,
    cycles: int = 9,
    phases: tuple[str, ...] = ("night", "spike", "sustained", "decline", "late-night"),
    judged: tuple[str, ...] = ("heap", "rss"),
    sampled: tuple[str, ...] = ("heap", "rss", "blocks", "gc0", "gc2"),
    samples: int = 200,
    extras: bool = True,
) -> dict[str, Any]:
    """A result dict shaped as ``report.json_report.result_to_dict`` makes it (and as
    ``--soak-json`` writes it): ``cycles`` identical cycles (the first the warm-up) of
    ``phases``, floors that grow ``per_request`` bytes per request, ``samples`` samples of each
    ``sampled`` metric. ``extras``: sites, errors, isolation, baseline and mocks, with texts a
    recording could hold (markup, quotes, ampersands)."""
    checkpoints: list[dict[str, Any]] = []
    requests, wall = 0, 0.0
    base = {"heap": 400_000.0, "rss": 130_000_000.0, "blocks": 560_000.0, "gc0": 5.0, "gc2": 0.0}

    def floor(count: int) -> dict[str, float]:
        grown = {"heap": per_request * count, "rss": per_request * count * 4, "blocks": count}
        return {m: base.get(m, 1000.0) + grown.get(m, 0.0) for m in sampled}

    checkpoints.append({"requests": 0, "wall_time": 0.0, "phase": 0, "drained": True,
                        "floor": floor(0)})  # fmt: skip
    cycle_requests = sum(20 * (p + 1) for p in range(len(phases)))
    for _ in range(cycles):
        for p in range(len(phases)):
            requests += 20 * (p + 1)
            wall += 1.0 + 0.1 * p
            checkpoints.append({"requests": requests, "wall_time": round(wall, 3), "phase": p,
                                "drained": True, "floor": floor(requests)})  # fmt: skip
    ends = [cp for cp in checkpoints[1:] if cp["phase"] == len(phases) - 1]
    judgements = []
    for metric in judged:
        floors = [cp["floor"][metric] for cp in ends]
        judgements.append(
            {
                "metric": metric, "verdict": verdict if metric == judged[0] else "ok",
                "reason": f"{metric} grew in every one of {cycles - 1} identical cycles",
                "slope": (floors[-1] - floors[0]) / (ends[-1]["requests"] - ends[0]["requests"]),
                "growth": floors[-1] - floors[0], "trend_growth": floors[-1] - floors[0],
                "threshold": 16384, "step_noise": 1024, "p_value": 2.8e-06,
                "second_half_slope": per_request, "grew_every_cycle": True,
                "requests_measured": ends[-1]["requests"] - ends[0]["requests"], "floors": floors,
            }
        )  # fmt: skip
    step = wall / max(1, samples)
    sample_rows = []
    for n in range(samples):
        values = floor(int(n * step / wall * requests))
        noisy = {m: v + (n % 7) * 100 for m, v in values.items()}
        sample_rows.append({"t": round(n * step, 3), **noisy})
    phase_rows = [
        {
            "name": name, "requests": 20 * (p + 1) * cycles, "target_rps": 10.0 * (p + 1),
            "achieved_rps": 9.5 * (p + 1), "p50": 0.0015 * (p + 1), "p95": 0.003, "p99": 0.004,
            "errors": 3 if extras and p == 1 else 0, "late": 0, "unsent": 0,
            "statuses": {"2xx": 20 * (p + 1) * cycles}, "memory_metric": judged[0],
            "mem_start": 474442.0, "mem_end": 564206.0, "mem_floor": 2292.0,
            "mem_peak": 569722.0, "floor_growth": 896.0,
            "error_kinds": {"reset": 2, "<5xx>": 1} if extras and p == 1 else {},
            "error_samples": ['5xx: GET /search?q=<script>alert("x")</script>&a=1 -> 503']
            if extras and p == 1 else [],
            "lateness_p99": 0.003, "rate_accuracy": 1.0,
        }
        for p, name in enumerate(phases)
    ]  # fmt: skip
    first = judgements[0]
    result: dict[str, Any] = {
        "test_id": test_id, "verdict": verdict, "reason": first["reason"], "mode": "quick",
        "settings": {"profile": "spike-at-8am", "peak_rps": 150.0, "max_growth": None,
                     "max_growth_per_request": None, "concurrency": 256},
        "traffic": {"path": "traffic/shop.har", "format": "har", "exchanges": 899},
        "metric": judged[0], "growth_bytes": first["growth"],
        "growth_per_request_bytes": first["slope"], "judgements": judgements,
        "run": {"target": "ASGI app shop (in process)", "profile": "spike-at-8am",
                "peak_rps": 150.0, "wall_seconds": wall, "elapsed_seconds": wall,
                "paused_seconds": 1.0, "planned_requests": requests, "sent": requests,
                "errors": 3 if extras else 0, "late": 0, "capped": 0, "unsent": 0,
                "aborted": None},
        "phases": phase_rows, "checkpoints": checkpoints,
        "warmup_checkpoints": len(phases), "cycle_requests": cycle_requests,
        "cycles": [{"number": c, "kind": "warm-up" if c == 0 else "measured",
                    "requests": cycle_requests, "floor": ends[c]["floor"][judged[0]],
                    "growth": per_request * cycle_requests} for c in range(cycles)],
        "sites": [], "notes": ["the warm-up grew while caches filled"], "baseline": {},
        "isolation": {}, "mocks": {}, "harness": {}, "samples": sample_rows,
    }  # fmt: skip
    if extras:
        result["sites"] = [
            {"site": "shop/app.py:84 in delete_cart: report.append(<b>&amp;</b>)",
             "file": "shop/app.py", "line": 84, "function": "delete_cart",
             "growth_bytes": 12192, "size_bytes": 38008},
        ]  # fmt: skip
        result["baseline"] = {
            "status": "over", "expected": 1029.6, "allowed": 17671.0, "observed": 102124.0,
            "message": "+99.7 KiB observed > 17.3 KiB allowed", "path": "__soak_baselines__/x.json",
            "environment": {"os": "Linux", "python": "cpython-3.11"},
        }  # fmt: skip
        result["isolation"] = {
            "summary": "DELETE /cart/delete/{id} leaks", "replays": 2, "replay_seconds": 4.0,
            "seconds": 8.0, "endpoints": 7, "replay_bound": 6, "growth_per_request_with": 130.0,
            "culprits": [{"endpoint": "DELETE /cart/delete/{id}", "requests": 137,
                          "recorded": 899, "without": {"leaks": False, "verdict": "ok",
                          "growth_per_request": 1.0, "number": 1}}],
            "probes": [
                {"number": 1, "purpose": "without DELETE /cart/delete/{id}", "leaks": False,
                 "growth_per_request": 1.0, "requests": 700, "seconds": 4.0},
                {"number": 2, "purpose": "only <DELETE> /cart/delete/{id}", "leaks": True,
                 "growth_per_request": 700.0, "requests": 137, "seconds": 4.0},
            ],
        }  # fmt: skip
        result["mocks"] = {
            "payments": {"transport": "respx", "requests": 120, "unmatched_count": 2,
                         "injected": {"status 503": 6, "reset": 1},
                         "unmatched": [{"method": "GET", "path": "/refund?<x>", "count": 2,
                                        "closest": None}]},
        }  # fmt: skip
    return result


def cut_short_dict(test_id: str = "tests/t.py::test_cut") -> dict[str, Any]:
    """What a run cut short by Ctrl-C had measured (the JSON's ``cut_short``): 4 checkpoints
    (the warm-up and cycle 1 of 8 done), in cycle 2's "night" phase."""
    full = soak_result_dict(test_id)
    measured = {k: full[k] for k in ("test_id", "mode", "settings", "metric", "samples")}
    measured.update(
        metrics=["heap", "rss"],
        checkpoints=full["checkpoints"][:5],
        elapsed_seconds=30.0,
        planned_seconds=60.0,
        cycle_reached=2,
        cycles_planned=9,
        phase_reached="night",
        sent=900,
        errors=0,
        late=0,
        traffic={"path": "traffic/shop.har", "format": "har", "exchanges": 90},
    )
    return measured


def alive(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie, waiting for its parent to reap it, is not)."""
    import psutil

    running = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
        except psutil.NoSuchProcess:
            continue
    return running
