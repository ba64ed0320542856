"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import EXAMPLES, REPO, SHARED, build_pb313_python

__all__ = ["EXAMPLES", "REPO", "SHARED"]


@pytest.fixture(scope="session")
def examples() -> Path:
    assert EXAMPLES.is_dir(), f"reference examples not found at {EXAMPLES} (set KRTLAB_SHARED)"
    return EXAMPLES


@pytest.fixture(scope="session")
def pb313_python() -> Path:
    """A Python with protobuf==3.13.0 (the kre-py runner's pin), built once under .cache/.

    Failing to build it fails the test: a skipped compatibility check proves nothing.
    """
    return build_pb313_python()


@pytest.fixture(scope="session")
def kernel_manager(tmp_path_factory):
    """A Jupyter kernel spec that runs this interpreter (the venv's), whatever else is installed."""
    import json
    import sys

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / "krtlab-test"
    spec_dir.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "krtlab test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return lambda: AsyncKernelManager(kernel_name="krtlab-test", kernel_spec_manager=specs)
