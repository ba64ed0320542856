"""Every error krtlab raises on purpose.

All of them derive from :class:`KrtlabError`, and each also subclasses the builtin it refines, so
``except ValueError`` keeps working for callers that do not know krtlab::

    KrtlabError
    ├── SpecError (ValueError)             misuse of the model: bad name, unknown node, ...
    │   └── ValidationError                a version KRE would refuse; carries the findings
    ├── ProtoError (ValueError)            a .proto that does not compile; carries located errors
    ├── MessageTypeError (TypeError)       a Python class that cannot become a proto3 message
    ├── CaptureError (ValueError)          a node function whose source cannot be exported
    ├── BundleError (ValueError)           a folder, krt.yml or .krt that cannot be read/written
    │   ├── YamlSyntaxError                krt.yml is not YAML krtlab can read (line, code)
    │   ├── UnsafeArchiveError             traversal, links, devices, oversize archives
    │   └── OverwriteError (FileExistsError)  refusing to replace files the user may care about
    ├── ExecutableNotFound (RuntimeError)  a required external program is missing
    ├── RenderError (RuntimeError)         an external program (``dot``) ran and failed
    ├── RunError (RuntimeError)            a version cannot run here (a Go node in-process, ...)
    │   └── NodeFailed                     a node raised (or broke its contract); names the node
    ├── ServeError (RuntimeError)          a served version could not start, or failed running
    │   └── CallError                      a call to an entrypoint answered with a gRPC error
    └── DeployError (RuntimeError)         the KAI Server admin API (or Kubernetes) refused a call
        ├── AuthError                      bad API token, expired session, missing permission
        └── DeployTimeout (TimeoutError)   a version did not reach the awaited status in time

Every public error class is defined here and listed in ``krtlab.__all__``; the modules that
raise them re-export them under their old names (``krtlab.runtime.client.CallError``, ...).
Errors that never leave krtlab (the KRE stand-in's, the NATS emulation's) stay private to their
modules. This module imports nothing heavy: ``import krtlab`` loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AuthError",
    "BundleError",
    "CallError",
    "CaptureError",
    "DeployError",
    "DeployTimeout",
    "ExecutableNotFound",
    "KrtlabError",
    "MessageTypeError",
    "NodeFailed",
    "OverwriteError",
    "ProtoError",
    "ProtoIssue",
    "RenderError",
    "RunError",
    "ServeError",
    "SpecError",
    "UnsafeArchiveError",
    "ValidationError",
    "YamlSyntaxError",
]


class KrtlabError(Exception):
    """Root of every error krtlab raises on purpose.

    In Jupyter it shows as one block (message, the user's line that called krtlab, hint)
    without krtlab's own frames: see :mod:`krtlab.notebook.tracebacks`.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython's hook for exceptions that format themselves
        try:
            from krtlab.notebook.tracebacks import render

            return render(self)
        except Exception:  # never hide the error behind a failure to format it
            import traceback

            return traceback.format_exception(type(self), self, self.__traceback__)


class SpecError(KrtlabError, ValueError):
    """The KRT model was used wrongly (a bad name, an unknown node, a duplicate definition)."""


class ValidationError(SpecError):
    """A version has errors that KRE would refuse (or that would break it at run time).

    ``report`` holds every finding (errors and warnings), sorted by location.
    """

    def __init__(self, report: Any, title: str = "") -> None:
        self.report = report
        self.title = title
        super().__init__(self._text())

    def _text(self) -> str:
        errors = list(self.report.errors)
        head = f"{len(errors)} validation error{'s' if len(errors) != 1 else ''}"
        if self.title:
            head += f" for {self.title}"
        return head + "\n" + "\n".join(f.format() for f in errors)


class ProtoIssue:
    """One located problem in a .proto file (protoc's own wording)."""

    __slots__ = ("column", "file", "line", "message")

    def __init__(self, file: str, line: int | None, column: int | None, message: str) -> None:
        self.file, self.line, self.column, self.message = file, line, column, message

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ProtoIssue({str(self)!r})"


class ProtoError(KrtlabError, ValueError):
    """A .proto file does not compile. ``issues`` lists each problem with file, line and column."""

    def __init__(self, message: str, issues: Sequence[ProtoIssue] = ()) -> None:
        self.issues = list(issues)
        text = message
        if self.issues:
            text += "\n" + "\n".join(f"  {i}" for i in self.issues)
        super().__init__(text)


class MessageTypeError(KrtlabError, TypeError):
    """A Python class (or one of its fields) cannot be mapped to a proto3 message."""


class CaptureError(KrtlabError, ValueError):
    """A node function cannot be written out as a standalone ``main.py``.

    ``node`` is the node name, ``name`` the Python name that could not be exported, ``where``
    the cell/file and line of the code at fault (the use, or the statement that made the value)
    and ``reason`` why, with what to do instead, when known.
    """

    def __init__(
        self, message: str, *, node: str = "", name: str = "", where: str = "", reason: str = ""
    ) -> None:
        self.node, self.name, self.where, self.reason = node, name, where, reason
        super().__init__(message)


class BundleError(KrtlabError, ValueError):
    """A project folder, krt.yml or .krt cannot be read or written."""


class YamlSyntaxError(BundleError):
    """krt.yml cannot be read as YAML.

    ``line`` is 1-based when known; ``code`` names the finding it becomes: ``yaml.syntax``, or
    ``yaml.too_large`` for aliases that expand beyond the limit. (Defined in
    :mod:`krtlab.spec.yamlsrc` before; still importable from there.)
    """

    def __init__(self, message: str, line: int | None, code: str = "yaml.syntax") -> None:
        self.message, self.line, self.code = message, line, code
        super().__init__(message)


class UnsafeArchiveError(BundleError):
    """A .krt archive holds something krtlab refuses to unpack (``member`` names it)."""

    def __init__(self, message: str, *, member: str = "") -> None:
        self.member = member
        super().__init__(message)


class OverwriteError(BundleError, FileExistsError):
    """Writing would replace files krtlab did not write itself (or that were edited since)."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        self.paths = list(paths)
        BundleError.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExecutableNotFound(KrtlabError, RuntimeError):
    """An external program krtlab needs (``dot``, ``nats-server``, ...) is not installed."""

    def __init__(self, program: str, hint: str = "") -> None:
        self.program = program
        text = f"{program!r} was not found on PATH"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


class RenderError(KrtlabError, RuntimeError):
    """An external program (``dot``) ran and failed; ``str`` includes what it printed."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        self.stderr = stderr
        text = message + (f": {stderr.strip()}" if stderr.strip() else "")
        super().__init__(text)


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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # keep it picklable across processes (the served runtime may ship it back)
        return (type(self), (self.node, self.cause, str(self)[len(f"error in '{self.node}': ") :]))


class ServeError(KrtlabError, RuntimeError):
    """A served version could not start, or failed while running."""


class CallError(ServeError):
    """A call answered with a gRPC error.

    Attributes:
        rpc: the method called.
        code: the status name (``"INTERNAL"``, ``"UNAVAILABLE"``, ``"DEADLINE_EXCEEDED"``, ...).
        details: the server's message (``error in 'etl': ...`` for a node exception).
    """

    def __init__(self, rpc: str, code: str, details: str) -> None:
        self.rpc, self.code, self.details = rpc, code, details
        super().__init__(f"{rpc} failed: {code}: {details}")

    @classmethod
    def from_rpc_error(cls, rpc: str, exc: BaseException) -> CallError:
        """The error for a ``grpc.RpcError`` (its code and details), or ``UNKNOWN``."""
        code = getattr(exc, "code", None)
        details = getattr(exc, "details", None)
        if callable(code) and callable(details):
            status = code()
            return cls(rpc, getattr(status, "name", str(status)), details() or "")
        return cls(rpc, "UNKNOWN", str(exc))


class DeployError(KrtlabError, RuntimeError):
    """The KAI Server admin API (or the Kubernetes API) refused or failed a call.

    ``message`` is the server's own text (e.g. ``the version must be started before stopping``),
    ``code`` its machine code when it gives one (GraphQL ``extensions.code`` such as
    ``krt_validation_error``, or the REST ``code`` such as ``unauthorized``), ``details`` the
    server's longer explanation (KRE's list of krt.yml validation errors), ``status`` the HTTP
    status when the failure was an HTTP one, and ``operation`` what krtlab was doing.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        details: str = "",
        status: int | None = None,
        operation: str = "",
    ) -> None:
        self.message, self.code, self.details = message, code, details
        self.status, self.operation = status, operation
        text = f"{operation}: {message}" if operation else message
        if code:
            text += f" [{code}]"
        if details:
            text += "\n" + details
        super().__init__(text)


class AuthError(DeployError):
    """The API token was refused, the session expired, or the user lacks the permission."""


class DeployTimeout(DeployError, TimeoutError):
    """A version did not reach the awaited status in time; ``last_status`` is the last one seen."""

    def __init__(self, message: str, *, last_status: str = "", operation: str = "") -> None:
        self.last_status = last_status
        super().__init__(message, operation=operation)
