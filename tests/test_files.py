"""The one atomic writer behind every artifact (baselines, JSON report, leak reproductions)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pytest_soak.files import write_atomic

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


def test_text_is_written_as_utf8_into_a_new_folder(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "soak.json"
    assert write_atomic(path, "grüße\n") == path
    assert path.read_bytes() == "grüße\n".encode()


def test_bytes_replace_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_atomic(path, b"old, longer content\n")
    write_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@posix_only
def test_a_new_file_is_readable_by_others_like_any_source_file(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        path = write_atomic(tmp_path / "x.leak-repro.jsonl", "{}\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@posix_only
def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("{}")
    path.chmod(0o664)
    write_atomic(path, "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


@pytest.mark.parametrize("failing", ["fsync", "replace", "chmod"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text("before")

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomic(path, "after")
    assert path.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_an_interrupted_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "d.json", "x")
    assert list(tmp_path.iterdir()) == []
