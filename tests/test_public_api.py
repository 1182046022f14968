from __future__ import annotations

import subprocess
import sys

import pytest_soak


def test_all_is_sorted_and_importable() -> None:
    assert pytest_soak.__all__ == sorted(pytest_soak.__all__)
    for name in pytest_soak.__all__:
        assert getattr(pytest_soak, name) is not None


def test_soak_failure_is_an_assertion_error() -> None:
    assert issubclass(pytest_soak.SoakFailure, AssertionError)
    for error in (
        pytest_soak.TrafficFormatError,
        pytest_soak.ProfileError,
        pytest_soak.DriverError,
    ):
        assert issubclass(error, pytest_soak.SoakError)


def test_import_is_cheap() -> None:
    """Having the plugin installed must not load the HTTP client or SciPy into every suite."""
    code = (
        "import sys, pytest_soak, pytest_soak.plugin; "
        "print(sorted(m for m in ('httpx', 'scipy', 'psutil', 'h11') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_soak_run_imports_locust() -> None:
    """Importing Locust monkey-patches the process with gevent: the plugin, the engine and the
    scale-out controller never import it (the Locust side runs in processes of its own)."""
    code = (
        "import sys, pytest_soak.plugin, pytest_soak.engine, pytest_soak.scaleout.cluster; "
        "print(sorted(m for m in ('locust', 'gevent', 'zmq') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_probes_package_exports_the_http_probe_factories() -> None:
    """``from pytest_soak.probes import prometheus, envoy_admin, http_json``: docs/probes.md.
    (Its ``__all__`` is kept in order by ruff's RUF022: constants, classes, functions.)"""
    import pytest_soak.probes as probes

    assert len(set(probes.__all__)) == len(probes.__all__)
    assert {"envoy_admin", "http_json", "prometheus", "Probe", "Metric"} <= set(probes.__all__)
    for name in probes.__all__:
        assert getattr(probes, name) is not None
