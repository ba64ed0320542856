"""krtlab's errors in a notebook cell: one readable block, no krtlab frames.

IPython shows an exception through its ``_render_traceback_`` when it has one;
:class:`krtlab.errors.KrtlabError` defines it to call :func:`render`, so every error krtlab raises
on purpose (a misspelled rpc, a proto that does not compile, a version with errors, a node that
failed) reads as its message, where the user's own code called krtlab (cell and line, or file
and line) and, for a node that failed, the line of the node's code that raised. Real bugs in
krtlab are other exception types and keep their full traceback.
"""

from __future__ import annotations

import ast
import linecache
import traceback

from krtlab.authoring.frames import is_user as _is_user
from krtlab.authoring.frames import user_frames, where

__all__ = ["render", "user_frames", "where"]


def _call_site(exc: BaseException) -> traceback.FrameSummary | None:
    """The user's line that called into krtlab: the last user frame before a krtlab one."""
    frames = traceback.extract_tb(exc.__traceback__)
    site = None
    for frame in frames:
        if _is_user(frame.filename):
            site = frame
        elif site is not None:
            break
    return site


def _proto_literal(frame: traceback.FrameSummary) -> tuple[str, int] | None:
    """(the proto text, its first line in the cell) when the call site passes a literal."""
    lines = linecache.getlines(frame.filename)
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and node.lineno <= (frame.lineno or 0) <= (node.end_lineno or node.lineno)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            literal = node.args[0]
            return str(literal.value), literal.lineno
    return None


def render(exc: BaseException) -> list[str]:
    """The lines IPython shows for ``exc`` (see the module docstring)."""
    from krtlab.errors import ProtoError
    from krtlab.runtime.errors import NodeFailed

    site = _call_site(exc)
    lines = f"{type(exc).__name__}: {exc}".splitlines()
    if isinstance(exc, ProtoError) and site is not None and exc.issues:
        found = _proto_literal(site)
        if found is not None:
            from krtlab.notebook.magics import format_proto_error

            text, first = found
            file = exc.issues[0].file
            lines = format_proto_error(exc, text, file=file, first_line=first).splitlines()
            lines[0] = lines[0].replace("cell line", "line", 1)
            lines = [lines[0]] + [
                line.replace("cell line ", f"{where(site).rsplit(', line', 1)[0]}, line ", 1)
                for line in lines[1:]
            ]
    if isinstance(exc, NodeFailed) and exc.cause is not None:
        inner = user_frames(exc.cause.__traceback__)
        if inner:
            frame = inner[-1]
            code = (frame.line or "").strip()
            kind = type(exc.cause).__name__
            lines.append(f"  in node {exc.node!r} ({kind}), {where(frame)}: {code}")
    if site is not None:
        code = (site.line or "").strip()
        lines.append(f"  called from {where(site)}: {code}")
    return lines
