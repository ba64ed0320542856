"""Progress of long steps (deploying) shown in the cell that runs them.

A :class:`CellProgress` is a callable taking one line per step: in a Jupyter kernel it shows the
steps so far in one output that updates in place (an HTML list with the current step last, and
a plain-text twin for consoles and nbconvert); anywhere else it shows nothing, so scripts and
tests stay quiet unless they pass their own ``progress=print``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

__all__ = ["CellProgress", "cell_progress", "in_cell"]

T = TypeVar("T")


def _kernel() -> Any:
    """The running IPython kernel shell, or None (a plain interpreter, or a terminal IPython)."""
    get = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get() if get is not None else None
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


class CellProgress:
    """Steps of a long operation shown in the current cell, updated in place.

    Args:
        title: what is going on, e.g. ``"deploying greeter-v1"``.
    """

    def __init__(self, title: str) -> None:
        from IPython.display import display

        self.title = title
        self.steps: list[str] = []
        self._t0 = time.perf_counter()
        self._handle = display(self._bundle(), raw=True, display_id=True)

    def __call__(self, line: str) -> None:
        self.steps.append(line)
        self._handle.update(self._bundle(), raw=True)

    def done(self, outcome: str) -> None:
        """Close the list with the outcome and the time it took."""
        self.steps.append(f"{outcome} ({time.perf_counter() - self._t0:.1f} s)")
        self._handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, str]:
        text = "\n".join([f"{self.title}:", *(f"  {s}" for s in self.steps)])
        items = "".join(f"<li>{escape(s)}</li>" for s in self.steps)
        html = f"<b>{escape(self.title)}</b><ol style='margin:.2em 0'>{items}</ol>"
        return {"text/plain": text, "text/html": html}


def cell_progress(title: str) -> CellProgress | None:
    """A :class:`CellProgress` when running in a Jupyter kernel, else None."""
    return CellProgress(title) if _kernel() is not None else None


def in_cell(title: str, work: Callable[[Any], T], outcome: Callable[[T], str]) -> T:
    """Run ``work(progress)`` with its steps shown in the cell (``progress`` is None outside
    Jupyter); the last line says ``outcome(result)``, or which error stopped it."""
    shown = cell_progress(title)
    if shown is None:
        return work(None)
    try:
        result = work(shown)
    except BaseException as exc:
        shown.done(f"failed: {type(exc).__name__}")
        raise
    shown.done(outcome(result))
    return result
