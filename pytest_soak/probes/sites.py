"""Allocation sites: where the service's retained memory was allocated, from tracemalloc
tracebacks. Frames of the harness (pytest-soak, its HTTP client, pytest) and of the import
system are told apart from the service's own code and its frameworks."""

from __future__ import annotations

import ast
import fnmatch
import functools
import linecache
import os
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

# Allocations whose innermost frame is in these files are the harness's, not the service's.
HARNESS_PATTERNS = (
    "*/pytest_soak/*",
    "*/httpx/*",
    "*/httpcore/*",
    "*/h11/*",
    "*/_pytest/*",
    "*/pluggy/*",
    "*/psutil/*",
    "*/scipy/*",
    "*/numpy/*",
    "*/tracemalloc.py",
)
# Allocations made while importing a module (the import system, setuptools' import hook) are
# one-off costs of code being loaded, never the service's retained growth.
IMPORT_PATTERNS = (
    "<frozen importlib.*",
    "<frozen zipimport>",
    "*/importlib/*",
    "*/_distutils_hack/*",
    "*/pkgutil.py",
)
_STDLIB_DIRS = tuple(
    {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
)


@dataclass(frozen=True, slots=True)
class Site:
    """Where memory was allocated: the innermost frame in the service's own code."""

    filename: str
    lineno: int
    function: str
    line: str

    def __str__(self) -> str:
        where = f"{_short_path(self.filename)}:{self.lineno}"
        if self.function:
            where += f" in {self.function}"
        return f"{where}: {self.line}" if self.line else where


class FrameLike(Protocol):
    """A frame of a traceback: tracemalloc's ``Frame``, or an ``AgentFrame``."""

    @property
    def filename(self) -> str: ...

    @property
    def lineno(self) -> int: ...


class AgentFrame(NamedTuple):
    """A frame as the agent inside a served service sends it."""

    filename: str
    lineno: int


def site_of(traceback: Sequence[FrameLike], service_dirs: tuple[str, ...] = ()) -> Site | None:
    """The service's site of an allocation (``traceback``: oldest frame first, as tracemalloc
    gives it), or None when the harness made it."""
    if any(_frame_kind(frame.filename) == "import" for frame in traceback):
        return None  # code being loaded: a one-off, counted with the harness
    library: FrameLike | None = None
    for frame in reversed(traceback):  # innermost first
        kind = _frame_kind(frame.filename)
        if kind == "library" and service_dirs and _under(frame.filename, service_dirs):
            kind = "service"  # the app's own package, pip-installed
        if kind == "stdlib":
            continue
        if kind == "harness":
            return None if library is None else _site(library.filename, library.lineno)
        if kind == "library":
            library = library or frame  # a framework's frame: look further out for user code
            continue
        return _site(frame.filename, frame.lineno)
    chosen = library or traceback[-1]
    return _site(chosen.filename, chosen.lineno)


@functools.lru_cache(maxsize=4096)
def _site(filename: str, lineno: int) -> Site:
    return Site(
        filename,
        lineno,
        _enclosing_function(filename, lineno),
        linecache.getline(filename, lineno).strip(),
    )


@functools.lru_cache(maxsize=256)
def _functions_of(filename: str) -> tuple[tuple[int, int, str], ...]:
    try:
        with open(filename, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=filename)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ()
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            name = getattr(node, "name", "<lambda>")
            spans.append((node.lineno, node.end_lineno or node.lineno, name))
    return tuple(spans)


def _enclosing_function(filename: str, lineno: int) -> str:
    best = ""
    best_width = sys.maxsize
    for start, end, name in _functions_of(filename):
        if start <= lineno <= end and end - start < best_width:
            best, best_width = name, end - start
    return best


@functools.lru_cache(maxsize=4096)
def _under(filename: str, dirs: tuple[str, ...]) -> bool:
    real = os.path.realpath(filename)
    return any(real == d or real.startswith(d + os.sep) for d in dirs)


@functools.lru_cache(maxsize=4096)
def _frame_kind(filename: str) -> str:
    """``import`` (the import system), ``harness`` (pytest-soak, its HTTP client, pytest),
    ``stdlib``, ``library`` (other
    installed packages: the service's frameworks) or ``service`` (the user's own code)."""
    if any(fnmatch.fnmatchcase(filename, pattern) for pattern in IMPORT_PATTERNS):
        return "import"
    if any(fnmatch.fnmatchcase(filename, pattern) for pattern in HARNESS_PATTERNS):
        return "harness"
    if filename.startswith("<"):
        return "stdlib"
    real = os.path.realpath(filename)
    if "site-packages" in real or "dist-packages" in real:
        return "library"
    if any(real.startswith(d + os.sep) for d in _STDLIB_DIRS):
        return "stdlib"
    return "service"


def _short_path(filename: str) -> str:
    """A site's file as a reader knows it: relative to the working folder, or from the package
    for installed code (``starlette/routing.py``)."""
    for marker in ("site-packages", "dist-packages"):
        _, found, rest = filename.rpartition(os.sep + marker + os.sep)
        if found:
            return rest
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative
