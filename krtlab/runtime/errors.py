"""Errors of local runs (in-process and served).

Both derive from :class:`~krtlab.errors.KrtlabError` and from ``RuntimeError``::

    KrtlabError
    └── RunError (RuntimeError)     a version cannot run here (a Go node in-process, no handler...)
        └── NodeFailed              a node raised (or broke its contract); names the node
"""

from __future__ import annotations

from krtlab.errors import KrtlabError

__all__ = ["NodeFailed", "RunError"]


class RunError(KrtlabError, RuntimeError):
    """A version (or one of its nodes) cannot run locally."""


class NodeFailed(RunError):
    """A node failed while handling a request.

    The message is KRE's own: ``error in '<node>': <error>``, exactly what the entrypoint would
    answer as gRPC ``INTERNAL``.

    Attributes:
        node: the node that failed.
        cause: the original exception (also chained as ``__cause__``).
    """

    def __init__(self, node: str, cause: BaseException, message: str | None = None) -> None:
        self.node = node
        self.cause = cause
        super().__init__(f"error in '{node}': {cause if message is None else message}")
        self.__cause__ = cause

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # keep it picklable across processes (the served runtime may ship it back)
        return (type(self), (self.node, self.cause, str(self)[len(f"error in '{self.node}': ") :]))
