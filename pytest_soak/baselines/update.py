"""At the end of the session (on the controller only): write the baselines recorded under
``--soak-update-baselines``, and prune those of tests that are gone.

It works on the result dicts the workers send: a recorded result carries its ``Baseline`` as
``result["baseline"]["record"]`` (``Baseline.to_json``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_soak.baselines.record import Baseline
from pytest_soak.baselines.store import BASELINE_DIR, BaselineFile, baseline_path
from pytest_soak.errors import SoakError


def write_baselines(results: Iterable[Mapping[str, Any]]) -> tuple[list[str], bool]:
    """Write the results recorded under --soak-update-baselines, one file per test module.

    Only tests that passed are recorded (a run whose test then failed its own assertions is no
    baseline). Each file stands alone: a broken one is reported and the others are written.
    Returns the notes for the summary and whether everything that should be written was."""
    by_file: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    notes: list[str] = []
    for result in results:
        info = result.get("baseline") or {}
        if info.get("status") != "recorded":
            continue
        if result.get("outcome") != "passed":
            notes.append(f"soak baseline not recorded for {result['test_id']}: the test failed")
            continue
        target = Path(str(info.get("path", "")))
        if target.parent.name != BASELINE_DIR or target.suffix != ".json":
            notes.append(f"soak baseline not recorded for {result['test_id']}: bad path {target}")
            continue
        by_file[str(target)].append(result)
    complete = True
    for path in sorted(by_file):
        try:
            changed = _write_file(path, by_file[path])
        except SoakError as exc:
            complete = False
            notes.append(f"soak baselines NOT written to {path}: {exc}")
            continue
        state = f"written: {path} ({', '.join(changed)})" if changed else f"unchanged: {path}"
        notes.append(f"soak baselines {state}")
    return notes, complete


def _write_file(path: str, results: list[Mapping[str, Any]]) -> list[str]:
    store = BaselineFile.load(path)
    records = [Baseline.from_json(result["baseline"]["record"]) for result in results]
    changed = []
    for record in sorted(records, key=lambda r: r.test):
        if store.put(record):
            changed.append(record.test)
    if changed:
        store.save()
    return changed


def prune_baselines(collected: Mapping[str, set[str]]) -> list[str]:
    """Remove baselines of tests that no longer exist in the modules this session collected
    (``collected`` holds every test, deselected ones too, so their baselines stay)."""
    notes = []
    for module in sorted(collected):
        path = baseline_path(module)
        if not path.is_file():
            continue
        store = BaselineFile.load(path)
        # "test_x#2" is the second soak.run of test_x: it lives and goes with test_x.
        gone = [test for test in store.tests() if test.split("#")[0] not in collected[module]]
        if gone:
            store.remove(gone)
            store.save()
            notes.append(f"soak baselines pruned from {path}: {', '.join(sorted(gone))}")
    return notes
