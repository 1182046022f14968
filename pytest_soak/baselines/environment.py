"""Where a baseline was recorded: OS, CPU architecture, Python, CPU model and an optional label.

Growth measured on a laptop says nothing about a CI runner, so a result is only ever compared
with a baseline recorded where it ran: two environments with the same ``key`` share baselines.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache


def _slug(text: str) -> str:
    """Lowercase, ``[a-z0-9._]`` runs joined by ``-``: safe and stable as one part of a key."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._")


def _cpu_slug(model: str) -> str:
    """``Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz`` -> ``intel-xeon-platinum-8375c``.

    Trademark signs, the words CPU/Processor and the clock speed are dropped: they add nothing
    to the model and some tools report them differently for the same chip."""
    text = model.lower().split("@", 1)[0]
    text = re.sub(r"\((?:r|tm|c)\)|[®™]|\b(?:cpu|processor)\b", " ", text)
    return _slug(text)


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":  # platform.processor() only says "arm" or "i386" there
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            return out
    return platform.processor().strip() or "unknown"


@dataclass(frozen=True)
class Environment:
    """Where a baseline was recorded. Two environments with the same ``key`` share baselines."""

    os: str
    arch: str
    python: str
    cpu: str
    label: str = ""

    @classmethod
    def current(cls, label: str = "") -> Environment:
        impl = sys.implementation.name
        major, minor = sys.version_info[:2]
        return cls(
            os=platform.system() or "unknown",
            arch=platform.machine() or "unknown",
            python=f"{impl}-{major}.{minor}",
            cpu=_cpu_model(),
            label=label.strip(),
        )

    def _parts(self) -> dict[str, str]:
        return {
            "os": _slug(self.os) or "unknown",
            "arch": _slug(self.arch) or "unknown",
            "python": _slug(self.python) or "unknown",
            "cpu": _cpu_slug(self.cpu) or "unknown",
            "label": _slug(self.label),
        }

    @property
    def key(self) -> str:
        """``linux/x86_64/cpython-3.11/intel-xeon-platinum-8375c[/label]``."""
        return "/".join(part for part in self._parts().values() if part)

    def differences(self, other: Environment) -> list[str]:
        """What differs from ``other``, as the key sees it: ``["python cpython-3.12 != ..."]``."""
        mine, theirs = self._parts(), other._parts()
        return [
            f"{name} {mine[name] or '(none)'} != {theirs[name] or '(none)'}"
            for name in mine
            if mine[name] != theirs[name]
        ]
