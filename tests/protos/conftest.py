"""Fixtures for the krtlab.protos tests: example protos, subprocesses, a protobuf 3.13 venv."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import EXAMPLES

EXAMPLE = EXAMPLES / "price-estimator"


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
