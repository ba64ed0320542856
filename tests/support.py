"""Helpers shared by every test package: where the reference material is, and a Python with
the kre-py runner's protobuf (3.13.0)."""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The planners' reference material lives beside the project (../shared); tests read it there.
SHARED = Path(os.environ.get("KRTLAB_SHARED", REPO.parent / "shared"))
EXAMPLES = SHARED / "examples"
# A price-estimator request and metric used across the suite (answers computed from them).
PRICE_REQUEST = {
    "neighbourhood": "Manhattan",
    "room_type": "Entire home/apt",
    "accommodates": 3,
    "bedrooms": 2,
    "minimum_nights": 4,
}
PRICE_METRIC = {"predicted_price": 210.4, "real_price": 199.6, "date": "2026-11-25"}
PB313_VENV = REPO / ".cache" / "venv-pb313"
PB313_VERSION = "3.13.0"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_pb313(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import google.protobuf as g; print(g.__version__)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return probe.returncode == 0 and probe.stdout.strip() == PB313_VERSION


def build_pb313_python() -> Path:
    """A Python with protobuf==3.13.0 (the kre-py runner's pin), built once under .cache/.

    Failing to build it fails the test: a skipped compatibility check proves nothing.
    """
    python = _venv_python(PB313_VENV)
    PB313_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(PB313_VENV.parent / "venv-pb313.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers build it only once
        if _has_pb313(python):
            return python
        shutil.rmtree(PB313_VENV, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(PB313_VENV)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"protobuf=={PB313_VERSION}"],
        ]  # fmt: skip
        for argv in steps:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"cannot build the protobuf 3.13 venv: {argv}\n{proc.stderr}")
        if not _has_pb313(python):
            pytest.fail(f"{python} does not import protobuf {PB313_VERSION}")
    return python


def tar_bytes(
    entries, *, gz: bool = True, format: int = tarfile.DEFAULT_FORMAT, tail: bytes = b""
) -> bytes:
    """A tar archive (gzip-compressed unless ``gz=False``) of ``(name, data)`` or ``(name, data,
    pax headers)`` entries in the order given, exactly as named (``data`` None: a directory
    entry), then ``tail`` (bytes after the archive): archives krtlab did not write, for the
    reading side."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
        for name, data, *pax in entries:
            info = tarfile.TarInfo(name)
            if pax and pax[0]:
                info.pax_headers = pax[0]
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue() + tail
    return gzip.compress(raw, mtime=0) if gz else raw
