"""The README's main job: the example shop's soak test in quick mode, bug on and bug off."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "webshop"


def _run_example(bug: bool, *options: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SHOP_CART_DELETE_BUG="1" if bug else "0")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLE),
            "-p",
            "no:cacheprovider",
            "--soak-mode=quick",
            *options,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_example_with_the_cart_delete_bug_fails_naming_the_leak() -> None:
    result = _run_example(bug=True)
    out = result.stdout
    assert result.returncode == 1, out
    assert "soak verdict: LEAK" in out
    assert "B/request" in out
    for phase in ("night", "spike", "sustained", "decline", "late-night"):
        assert f"\nE       {phase} " in out, phase
    assert "shop/app.py:" in out and "in delete_cart: missing_cart_report.append(" in out
    assert "1 failed" in out


def test_example_without_the_bug_passes() -> None:
    result = _run_example(bug=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout
    rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.startswith("examples/webshop/test_shop_soak.py::test_shop_memory_is_stable ")
    ]
    assert [row[1] for row in rows] == ["OK"], result.stdout  # the summary table's verdict column


# Scale-out (docs/scale-out.md): the same test, its load from 2 local Locust workers, gives the
# verdicts the local driver gives above.
_LOCUST = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="Locust is not installed"
)


@_LOCUST
@pytest.mark.slow
def test_example_under_two_locust_workers_names_the_same_leak() -> None:
    result = _run_example(True, "--soak-locust-workers=2")
    out = result.stdout
    assert result.returncode == 1, out
    assert "soak verdict: LEAK" in out
    assert "load from 2 local Locust workers" in out
    assert "shop/app.py:" in out and "in delete_cart: missing_cart_report.append(" in out


@_LOCUST
@pytest.mark.slow
def test_example_under_two_locust_workers_passes_without_the_bug() -> None:
    result = _run_example(False, "--soak-locust-workers=2")
    assert result.returncode == 0, result.stdout
    rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.startswith("examples/webshop/test_shop_soak.py::test_shop_memory_is_stable ")
    ]
    assert [row[1] for row in rows] == ["OK"], result.stdout


@pytest.fixture(autouse=True)
def _example_exists() -> None:
    assert (EXAMPLE / "traffic" / "shop.har").is_file()
