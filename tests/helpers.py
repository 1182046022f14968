"""Helpers shared by the tests: ``from tests.helpers import item_traffic_lines``."""

from __future__ import annotations

import json
from pathlib import Path

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


def copy_test_services(folder: Path) -> None:
    """Copy the test services into ``folder/apps`` so a pytester run imports ``apps.services``."""
    target = folder / "apps"
    target.mkdir()
    for name in ("__init__.py", "services.py"):
        (target / name).write_text((APPS / name).read_text())
