"""``Soak``: the object behind the ``soak`` fixture — ``run``, ``serve`` and ``url``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_soak.baselines import BaselineContext, apply_baseline
from pytest_soak.driver.targets import ServedProcess, UrlTarget, check_host_allowed
from pytest_soak.engine import run_soak
from pytest_soak.errors import SoakError, SoakFailure
from pytest_soak.isolation import isolate, repro_path
from pytest_soak.report.progress import Progress
from pytest_soak.result import RunCutShort, SoakResult
from pytest_soak.settings import Settings
from pytest_soak.traffic import Traffic, load_traffic


class Soak:
    """Runs soak tests for one test item. Made by the ``soak`` fixture."""

    def __init__(
        self,
        resolve: Callable[[Mapping[str, Any]], Settings],
        *,
        test_id: str,
        base_dir: Path,
        allowed_hosts: Sequence[str] = (),
        on_result: Callable[[SoakResult], None] | None = None,
        on_cut_short: Callable[[dict[str, Any]], None] | None = None,
        baselines: BaselineContext | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self._baselines = baselines
        self._progress = progress
        self._resolve = resolve
        self.test_id = test_id
        self.base_dir = base_dir
        self.allowed_hosts = tuple(allowed_hosts)
        self._on_result = on_result
        self._on_cut_short = on_cut_short
        self._served: list[ServedProcess] = []
        self.results: list[SoakResult] = []

    @property
    def settings(self) -> Settings:
        """The run's settings from the marker, ini and options (raises on a bad marker)."""
        return self._resolve({})

    def run(
        self,
        target: object,
        traffic: Traffic | str | os.PathLike[str],
        *,
        check: bool = True,
        **overrides: Any,
    ) -> SoakResult:
        """Replay ``traffic`` against ``target``, sample memory, judge.

        ``target``: an ASGI or WSGI app, ``soak.serve(...)``, ``soak.url(...)`` or a URL.
        Keyword overrides take the marker's names (``peak_rps=50``, ``duration="20s"``).
        Raises ``SoakFailure`` (an AssertionError) on a leak unless ``check=False``.
        """
        __tracebackhide__ = True
        try:
            settings = self._resolve(overrides)
            if not isinstance(traffic, Traffic):
                traffic = load_traffic(self.base_dir / Path(traffic))
            result = run_soak(
                target, traffic, settings, test_id=self.test_id, check=False,
                progress=self._progress,
            )  # fmt: skip
        except SoakError as exc:
            raise _fresh(exc) from None
        except RunCutShort as cut:
            if self._on_cut_short is not None:
                self._on_cut_short(cut.measured)  # Ctrl-C: what was measured still reaches the JSON
            raise
        self.results.append(result)
        try:
            if self._baselines is not None:
                apply_baseline(result, settings, self._baseline_context())
            if settings.isolate != "off" and result.verdict == "leak":
                self._isolate(target, traffic, settings, result)
        except SoakError as exc:
            result.verdict, result.reason = "error", str(exc)
            raise _fresh(exc) from None
        finally:
            if self._on_result is not None:
                self._on_result(result)  # measured: it goes in the summary and JSON either way
        if check and result.failed:
            raise SoakFailure(result.explain())
        return result

    def serve(
        self,
        command: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        ready: str | None = "/health",
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        agent: bool = True,
    ) -> ServedProcess:
        """Start a service on a free loopback port (``{port}`` in the command and ``env`` is
        replaced; each ``{port:NAME}`` gets a port of its own, ``served.ports[NAME]``), wait
        until ``ready`` answers, and stop it with its children when the test ends. A Python
        service carries the agent (docs/probes.md) unless ``agent=False``."""
        __tracebackhide__ = True
        try:
            served = ServedProcess(
                command,
                env=env,
                ready=ready,
                cwd=cwd if cwd is not None else self.base_dir,
                ready_timeout=timeout,
                agent=agent,
            )
        except SoakError as exc:
            raise _fresh(exc) from None
        self._served.append(served)
        return served

    def url(self, url: str, *, pid: int | Sequence[int]) -> UrlTarget:
        """A running service at ``url`` (loopback unless allowed); ``pid`` is the process (or
        processes) whose memory — with their children's — is the service's."""
        __tracebackhide__ = True
        try:
            check_host_allowed(url, self.allowed_hosts)
            return UrlTarget(url, [pid] if isinstance(pid, int) else list(pid))
        except SoakError as exc:
            raise _fresh(exc) from None

    def _isolate(
        self, target: object, traffic: Traffic, settings: Settings, result: SoakResult
    ) -> None:
        """``isolate=True``: replay subsets of the traffic until the leaking endpoint and kind
        of request are named (docs/isolation.md); the result carries what was found."""
        path = repro_path(self.base_dir, self.test_id, len(self.results)) if self.test_id else None
        try:
            result.isolation = isolate(
                target,
                traffic,
                settings,
                result,
                test_id=self.test_id,
                repro_path=path,
                mutate=settings.isolate == "mutate",
            )
        except SoakError as exc:  # the leak stands; say why it could not be isolated
            result.isolation = {"status": "error", "summary": f"isolation failed: {exc}"}

    def _baseline_context(self) -> BaselineContext:
        """The second and later ``soak.run`` of one test get their own baseline (``test#2``)."""
        assert self._baselines is not None
        runs = len(self.results)
        if runs <= 1:
            return self._baselines
        return dataclasses.replace(self._baselines, test_name=f"{self._baselines.test_name}#{runs}")

    def close(self) -> None:
        for served in self._served:
            served.stop()
        self._served.clear()


def _fresh(exc: SoakError) -> SoakError:
    """The same error without our internal frames: the user sees their line and the message."""
    return type(exc)(str(exc))
