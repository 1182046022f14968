from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.fixture
def samples() -> Path:
    """The shared real-world samples; tests that need them skip when the folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real-world samples not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture
def soak_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir that can import the test services as ``apps.services``."""
    target = pytester.path / "apps"
    target.mkdir()
    for name in ("__init__.py", "services.py"):
        (target / name).write_text((APPS / name).read_text())
    pytester.makefile(".jsonl", items=item_traffic_lines(400))
    return pytester
