"""Fixtures for the krtlab.protos tests: example protos, subprocesses, a protobuf 3.13 venv."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLE = Path("/work/shared/examples/price-estimator")
REPO = Path(__file__).resolve().parents[2]
PB313_VENV = REPO / ".cache" / "venv-pb313"
PB313_VERSION = "3.13.0"


@pytest.fixture(scope="session")
def price_sources() -> dict[str, str]:
    """The two proto files of the price-estimator example, by name."""
    return {
        name: (EXAMPLE / name).read_text(encoding="utf-8")
        for name in ("public_input.proto", "internal_nodes.proto")
    }


RunPython = Callable[..., dict]


def _run(python: str | Path, code: str, path: Path) -> dict:
    """Run ``code`` in a fresh interpreter with ``path`` first on sys.path; return its JSON."""
    prog = f"import sys\nsys.path.insert(0, {str(path)!r})\n" + textwrap.dedent(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [str(python), "-c", prog], capture_output=True, text=True, timeout=120, env=env,
        cwd=path,
    )  # fmt: skip
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_python() -> RunPython:
    """``run_python(python, code, path) -> dict``: the last stdout line, parsed as JSON."""
    return _run


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


@pytest.fixture(scope="session")
def pb313_python() -> Path:
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
