"""The user's own frames of a traceback and where they are (internal).

Shared by :mod:`krtlab.notebook.tracebacks` (an error shown in a cell) and
:mod:`krtlab.runtime.inprocess` (the node line that raised, in a run's trace), so the runtime
never imports the notebook stage.
"""

from __future__ import annotations

import os
import traceback
from types import TracebackType

from krtlab.authoring.capture_source import _cell_numbers, location

__all__ = ["is_user", "user_frames", "where"]

_KRTLAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../krtlab


def is_user(filename: str) -> bool:
    """A frame of the user's code: a notebook cell, or a file outside krtlab and Python's own
    libraries."""
    if filename in _cell_numbers():
        return True
    if filename.startswith("<") or not os.path.isabs(filename):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_KRTLAB + os.sep):
        return False
    return "site-packages" not in path and f"{os.sep}lib{os.sep}python" not in path


def user_frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    """The frames of ``tb`` that are the user's own code, outermost first."""
    return [f for f in traceback.extract_tb(tb) if is_user(f.filename)]


def where(frame: traceback.FrameSummary) -> str:
    """``cell In[4], line 7`` (or ``path/to/file.py, line 7``) for ``frame``."""
    return location(frame.filename, frame.lineno or 0)
