"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The planners' reference material lives beside the project (../shared); tests read it there.
SHARED = Path(os.environ.get("KRTLAB_SHARED", REPO.parent / "shared"))
EXAMPLES = SHARED / "examples"


@pytest.fixture(scope="session")
def examples() -> Path:
    assert EXAMPLES.is_dir(), f"reference examples not found at {EXAMPLES} (set KRTLAB_SHARED)"
    return EXAMPLES
