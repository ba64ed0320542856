"""Errors of local runs (in-process and served).

Both derive from :class:`~krtlab.errors.KrtlabError` and from ``RuntimeError``::

    KrtlabError
    └── RunError (RuntimeError)     a version cannot run here (a Go node in-process, no handler...)
        └── NodeFailed              a node raised (or broke its contract); names the node
"""

from __future__ import annotations

# defined in krtlab.errors (every public error is); this module keeps the old import path
from krtlab.errors import NodeFailed, RunError

__all__ = ["NodeFailed", "RunError"]
