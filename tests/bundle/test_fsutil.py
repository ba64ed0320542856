"""Tests for krtlab.bundle.fsutil: atomic writes and staging directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from krtlab.bundle import fsutil
from krtlab.bundle.fsutil import atomic_write, atomic_writer, staged_dir


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "dir" / "f.txt"
    assert atomic_write(dest, b"one") == dest
    assert dest.read_bytes() == b"one"
    assert dest.stat().st_mode & 0o777 == 0o644
    atomic_write(dest, b"two")
    assert dest.read_bytes() == b"two"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.txt"]


def test_modes(tmp_path: Path) -> None:
    dest = tmp_path / "run.sh"
    atomic_write(dest, b"#!/bin/sh\n", mode=0o755)
    assert dest.stat().st_mode & 0o777 == 0o755
    atomic_write(dest, b"#!/bin/sh\necho\n")
    assert dest.stat().st_mode & 0o777 == 0o755, "an existing file keeps its mode"


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "f.txt"
    dest.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(fsutil.os, "replace", broken_replace)
    with pytest.raises(OSError, match="cross-device"):
        atomic_write(dest, b"new")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_exception_inside_the_block_discards_the_write(tmp_path: Path) -> None:
    dest = tmp_path / "f.txt"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(dest) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_replacing_a_directory_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        atomic_write(tmp_path / "d", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_staged_dir_success(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "project"
    with staged_dir(dest) as staging:
        assert staging.is_dir() and staging.parent == dest.parent
        assert list(staging.iterdir()) == []
        (staging / "krt.yml").write_text("v", encoding="utf-8")
        (staging / "left-over.tmp").write_text("x", encoding="utf-8")
        dest.mkdir()
        os.replace(staging / "krt.yml", dest / "krt.yml")
    assert (dest / "krt.yml").read_text(encoding="utf-8") == "v"
    assert not staging.exists()
    assert [p.name for p in dest.parent.iterdir()] == ["project"]


def test_staged_dir_failure_removes_everything(tmp_path: Path) -> None:
    dest = tmp_path / "project"
    with pytest.raises(ValueError), staged_dir(dest) as staging:
        (staging / "a" / "b").mkdir(parents=True)
        (staging / "a" / "b" / "f").write_text("x", encoding="utf-8")
        raise ValueError("build failed")
    assert not staging.exists()
    assert list(tmp_path.iterdir()) == []
