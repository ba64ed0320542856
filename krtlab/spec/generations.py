"""kre-py runner generations and the handler contract each one expects.

A node's image decides how its code is called:

==========================  ========================================================================
generation                  contract (read from the runners' own sources)
==========================  ========================================================================
``json`` (kre-py ≤ 1.2.x)   ``def handler(ctx, data)``: sync, ``data`` a dict, a JSON-able result;
                            ``ctx.get_value/set_value/get_path/save_metric``
                            (``konstellation-io/kre`` ``runtime-runners/kre-py`` before 2020-05)
``v1`` (1.20 – 2.x)         ``async def handler(ctx, data)``: ``data`` a ``google.protobuf.Any``,
                            the returned message goes on (``konstellation-io/kre-runners``
                            ``kre-py-v1.2x``/``v2.x``; what krtlab runs)
``v3`` (3.x, KRT v2)        ``async def default_handler(ctx, data)`` (or ``custom_handlers`` by
                            upstream node); nothing returned: ``await ctx.send_output(msg)``
                            (``kre-runners`` ``kre-py/v3.x`` ``main.py``, ``handlers.py``)
==========================  ========================================================================

Tags between 1.3 and 1.19 are not in any repository krtlab could read: their contract is taken
as ``v1``'s, without the per-tag facts of :mod:`krtlab.spec.runners`.
"""

from __future__ import annotations

import ast
from typing import Any

from krtlab.spec.runners import kre_py_tag

__all__ = ["check_generation", "runner_generation"]


def _tag(image: str) -> tuple[int, ...] | None:
    tag = kre_py_tag(image)
    if tag is None:
        return None
    try:
        return tuple(int(p) for p in tag.split("."))
    except ValueError:
        return None


def runner_generation(image: str, base: str | None = None) -> str | None:
    """``"json"``, ``"v1"`` or ``"v3"`` for a kre-py image (or a custom image's base); None for
    other images and tags that name no version (``latest``)."""
    tag = _tag(base or image)
    if tag is None:
        return None
    if tag[0] >= 3:
        return "v3"
    if tag[0] == 1 and len(tag) > 1 and tag[1] <= 2:
        return "json"
    return "v1"


def _defs(tree: ast.Module) -> dict[str, ast.AST]:
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    return found


def check_generation(
    check: Any, name: str, image: str, src: str, text: str, loc: Any, generation: str
) -> None:
    """Check node ``name``'s source against the contract of its runner ``generation``
    (``json`` or ``v3``; ``v1`` is checked by :mod:`krtlab.spec.contracts`)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return  # reported as src.syntax
    defs = _defs(tree)
    if generation == "json":
        handler = defs.get("handler")
        if not isinstance(handler, (ast.FunctionDef, ast.AsyncFunctionDef)):
            check.error(
                "src.no_handler",
                f"node {name!r}: {src} defines no handler(ctx, data), which {image} calls "
                "for every message",
                loc,
                file=src,
                hint="add: def handler(ctx, data): ... (data is a dict; return a JSON-able value)",
            )
        elif len(handler.args.args) != 2:
            check.error(
                "src.handler_signature",
                f"node {name!r}: handler takes {len(handler.args.args)} parameters; {image} "
                "calls handler(ctx, data)",
                loc,
                file=src,
                line=handler.lineno,
            )
        return
    handler = defs.get("default_handler")
    if handler is None and "custom_handlers" not in defs:
        old = defs.get("handler")
        check.error(
            "src.no_handler",
            f"node {name!r}: {src} defines neither default_handler nor custom_handlers; "
            f"{image} (a KRT v2 runner) calls default_handler(ctx, data) for every message",
            loc,
            file=src,
            line=getattr(old, "lineno", None),
            hint=(
                "kre-py 3 renamed handler to default_handler, and sends nothing you return: "
                "call await ctx.send_output(message)"
                if old is not None
                else "add: async def default_handler(ctx, data): ..."
            ),
        )
        return
    if isinstance(handler, ast.FunctionDef):
        check.error(
            "src.handler_not_async",
            f"node {name!r}: default_handler must be 'async def': {image} awaits it, so a "
            "plain function fails on the first message",
            loc,
            file=src,
            line=handler.lineno,
            hint="async def default_handler(ctx, data):",
        )
    if isinstance(handler, (ast.FunctionDef, ast.AsyncFunctionDef)):
        returns = [n for n in ast.walk(handler) if isinstance(n, ast.Return) and n.value]
        sends = any(
            isinstance(n, ast.Attribute) and n.attr.startswith("send_") for n in ast.walk(handler)
        )
        if returns and not sends:
            check.warning(
                "src.result_ignored",
                f"node {name!r}: default_handler returns its result, which {image} ignores: "
                "nothing goes on to the next node or the entrypoint",
                loc,
                file=src,
                line=returns[0].lineno,
                hint="await ctx.send_output(result)",
            )
