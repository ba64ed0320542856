"""Write a node's standalone ``main.py`` for KRE's ``kre-py`` 1.x runner.

The runner loads the file as module ``worker`` (its folder appended to ``sys.path``, so the
``*_pb2.py`` files beside it import), calls ``init(ctx)`` once if it exists (sync or async) and
awaits ``handler(ctx, data)`` for every message, where ``data`` is a ``google.protobuf.Any``; the
returned message is packed and sent on. :func:`render_main_py` puts the code captured from the
notebook (:mod:`krtlab.authoring.capture`) in such a file, with the two entry points around the
user's functions. The writers for import statements and constants live here too; capture uses
them, so this module imports capture only when rendering.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from krtlab.authoring.capture_common import _plain
from krtlab.errors import CaptureError

if TYPE_CHECKING:
    from krtlab.authoring.capture import Captured

__all__ = ["ImportLine", "import_group", "literal_source", "proto_import", "render_imports"]
__all__ += ["node_files_and_origins", "render_main_py"]


# -- writing import statements and constants (used by capture) --------------------------------


class ImportLine(NamedTuple):
    """One imported name: ``import module [as alias]`` or ``from module import attr [as alias]``."""

    module: str
    attr: str = ""  # "" for `import module`
    alias: str = ""

    @property
    def bound(self) -> str:
        return self.alias or self.attr or self.module.split(".")[0]


def import_group(module: str) -> int:
    """Import section: 0 ``__future__``, 1 stdlib, 2 third party, 3 the ``*_pb2`` beside main.py."""
    top = module.split(".")[0]
    if top == "__future__":
        return 0
    if top in sys.stdlib_module_names:
        return 1
    return 3 if "." not in module and module.endswith("_pb2") else 2


def render_imports(records: list[ImportLine]) -> list[str]:
    """The statements for one sorted section, isort/ruff style: plain imports, then ``from``
    imports, their names ordered CONSTANTS, Classes, functions; aliased ones on their own."""
    plain = [r for r in records if not r.attr]
    lines = [f"import {r.module}" + (f" as {r.alias}" if r.alias else "") for r in plain]
    for module in sorted({r.module for r in records if r.attr}):
        mine = [r for r in records if r.module == module and r.attr]
        names = sorted(
            {r.attr for r in mine if not r.alias},
            key=lambda n: (0 if n.isupper() and len(n) > 1 else 1 if n[:1].isupper() else 2, n),
        )
        line = f"from {module} import {', '.join(names)}"
        if len(line) > 100:
            line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
        lines += [line] if names else []
        lines += [f"from {module} import {r.attr} as {r.alias}" for r in mine if r.alias]
    return lines


def proto_import(obj: Any) -> tuple[str, str, tuple[str, ...]] | None:
    """Where a protobuf message class or enum wrapper comes from on the runner.

    Returns ``(module, top_level_name, nested_path)``, e.g. ``("public_input_pb2", "Request",
    ("Item",))`` for ``Request.Item``; None if ``obj`` is neither. The module is the ``.proto``
    file's basename, since KRE ships the generated files flat beside ``main.py``; well-known
    types keep their ``google.protobuf`` package.
    """
    from google.protobuf.descriptor import Descriptor, EnumDescriptor

    try:  # user objects may raise anything from __getattr__
        desc = getattr(obj, "DESCRIPTOR", None)
    except Exception:
        return None
    is_class = isinstance(obj, type)
    if not isinstance(desc, Descriptor if is_class else EnumDescriptor):
        return None
    path: list[str] = []
    while desc.containing_type is not None:
        path.insert(0, desc.name)
        desc = desc.containing_type
    filename: str = desc.file.name
    stem = filename.rsplit("/", 1)[-1].removesuffix(".proto").replace("-", "_") + "_pb2"
    module = "google.protobuf." + stem if filename.startswith("google/protobuf/") else stem
    return module, desc.name, tuple(path)


_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_BRACKETS: dict[type, Sequence[str]] = {
    list: "[]", tuple: "()", set: "{}", frozenset: ("frozenset({", "})"), dict: "{}"
}  # fmt: skip
_EVAL_NS = {"__builtins__": {}, "float": float, "set": set, "frozenset": frozenset}


def _items(value: object) -> list:
    # sets are written sorted by their text: their repr() order changes from run to run
    items = list(value)  # type: ignore[call-overload]
    return sorted(items, key=_sort_key) if isinstance(value, (set, frozenset)) else items


def _sort_key(value: object) -> str:
    # an item with no literal source leaves the whole set without one: its place is moot
    return _one(value) or ""


def _one(value: object, depth: int = 0) -> str | None:
    """One-line source of a value made only of literals, else None."""
    kind = type(value)
    if depth > 50:  # deep or self-containing
        return None
    if kind in _SCALARS:
        if kind is float and (value != value or value in (float("inf"), float("-inf"))):
            text = 'float("nan")' if value != value else 'float("inf")'
            return "-" + text if value == float("-inf") else text
        text = repr(value)
        if kind in (str, bytes) and '"' not in text:  # double quotes, like most code
            start = text.index("'")
            text = text[:start] + '"' + text[start + 1 : -1] + '"'
        return text
    if kind not in _BRACKETS:
        return None
    inner: list[str] | None
    if kind is dict:
        parts = [(_one(k, depth + 1), _one(v, depth + 1)) for k, v in value.items()]  # type: ignore[attr-defined]
        inner = None if any(None in p for p in parts) else [f"{k}: {v}" for k, v in parts]
    else:
        texts = [_one(v, depth + 1) for v in _items(value)]
        inner = None if None in texts else [t for t in texts if t is not None]
    if inner is None:
        return None
    if not inner and kind in (set, frozenset):
        return f"{kind.__name__}()"
    opener, closer = _BRACKETS[kind]
    comma = "," if kind is tuple and len(inner) == 1 else ""
    return opener + ", ".join(inner) + comma + closer


def _pretty(value: object, indent: int, width: int) -> str | None:
    """Like :func:`_one`, but containers too wide for ``width`` get one item per line."""
    one = _one(value)
    if one is None or indent + len(one) <= width or type(value) not in _BRACKETS:
        return one
    if isinstance(value, dict):
        rows = [f"{_one(k)}: {_pretty(v, indent + 4, width)}" for k, v in value.items()]
    else:
        rows = [str(_pretty(v, indent + 4, width)) for v in _items(value)]
        if all(type(v) in _SCALARS for v in value):  # type: ignore[attr-defined]
            rows = _fill(rows, width - indent - 4)  # numbers, strings: several per line
    opener, closer = _BRACKETS[type(value)]
    pad = " " * (indent + 4)
    return opener + "\n" + "".join(f"{pad}{row},\n" for row in rows) + " " * indent + closer


def _fill(rows: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for row in rows:
        if lines and len(lines[-1]) + len(row) + 3 <= width:
            lines[-1] += ", " + row
        else:
            lines.append(row)
    return lines


def literal_source(value: object, width: int = 100) -> str | None:
    """Source that rebuilds ``value`` if it is made only of literals (nan and infinities
    included, containers wrapped to ``width``), else None. Checked by evaluating it back."""
    text = _pretty(value, 0, width)
    try:
        back = eval(text, dict(_EVAL_NS)) if text is not None else None  # no builtins
    except Exception:
        return None
    return text if text is not None and _one(back) == _one(value) else None


# -- the main.py ------------------------------------------------------------------------------


def _positional(fn: Callable[..., Any]) -> tuple[int, int]:
    """(required, accepted) positional parameters; ``*args`` accepts any number."""
    params = inspect.signature(fn).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds]
    required = sum(p.default is p.empty for p in positional)
    star = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return required, sys.maxsize if star else len(positional)


def _accepts(fn: Callable[..., Any], count: int) -> bool:
    required, accepted = _positional(fn)
    return required <= count <= accepted


def _local(base: str, avoid: set[str]) -> str:
    """A local variable name for the generated wrappers that shadows no global they use."""
    while base in avoid:
        base += "_"
    return base


def _fstring(template: str, **fields: str) -> str:
    """Source of an f-string: ``template``'s ``{key}`` become the expressions in ``fields``;
    the literal text is escaped, so any node or type name is safe in it."""
    text = template.replace("{", "{{").replace("}", "}}")
    for key, expr in fields.items():
        text = text.replace("{{" + key + "}}", "{" + expr + "}")
    return "f" + str(literal_source(text))


def _raise(literal: str, template: str, **fields: str) -> list[str]:
    """Lines of ``raise TypeError("<literal>" f"<template>")``, split to keep lines short."""
    return [
        "        raise TypeError(",
        f"            {literal_source(literal)}",
        f"            {_fstring(template, **fields)}",
        "        )",
    ]


def _docstring(node: str, version: str, where: str) -> str:
    def clean(text: str) -> str:  # keep the docstring a plain, valid string literal
        return text.replace("\\", "/").replace('"""', "'''")

    body = (
        f"Generated by krtlab from {clean(where)}; change the notebook (or script) and export "
        "again rather than editing this file. kre-py 1.x contract: the runner calls init(ctx) "
        "once at start-up (when defined) and awaits handler(ctx, data) for each message; data "
        "is a google.protobuf.Any and the returned message goes on to the next node."
    )
    head = f"Node {clean(node)!r} of version {clean(version)!r}."
    return '"""' + head + "\n\n" + textwrap.fill(body, width=100) + '\n"""'


def _init_block(captured: Captured, init: Callable[..., Any]) -> str | None:
    """The ``init(ctx)`` entry point, or None when the user's function already is one."""
    name = captured.roots[1]
    if name == "init":
        return None
    if not (_accepts(init, 1) or _accepts(init, 0)):
        raise CaptureError(
            f"node {captured.node!r}: init function {init.__name__} must take (ctx)",
            node=captured.node, name=init.__name__,
        )  # fmt: skip
    ctx = _local("ctx", {name})
    call = f"{name}({ctx})" if _accepts(init, 1) else f"{name}()"
    is_async = inspect.iscoroutinefunction(init)
    return (
        f"{'async def' if is_async else 'def'} init({ctx}):\n"
        f'    """kre-py entry point: runs {name}() once when the node starts."""\n'
        f"    {'await ' if is_async else ''}{call}"
    )


def _handler_block(
    captured: Captured, handler: Callable[..., Any], input_type: Any, output_type: Any
) -> str:
    """``async def handler(ctx, data)``: unpack, call the user's function, check the result."""
    node, name = captured.node, captured.roots[0]
    required, _ = _positional(handler)
    if required not in (1, 2):
        raise CaptureError(
            f"node {node!r}: {handler.__name__} must take (ctx, request) or (request)",
            node=node, name=handler.__name__,
        )  # fmt: skip
    in_name = captured.import_name_for(input_type) if input_type is not None else None
    out_name = captured.import_name_for(output_type) if output_type is not None else None
    used = {name, *(n.split(".")[0] for n in (in_name, out_name) if n)}
    ctx, data, request, result = (_local(n, used) for n in ("ctx", "data", "request", "result"))
    lines = [f"async def handler({ctx}, {data}):"]
    if in_name is None:
        lines += [
            f'    """kre-py entry point: calls {name}() with the message."""',
            "    # No input type hint: the raw google.protobuf.Any is passed through.",
        ]
        arg = data
    else:
        full = input_type.DESCRIPTOR.full_name
        lines += [
            f'    """kre-py entry point: unpacks the Any into {full} and calls {name}()."""',
            f"    {request} = {in_name}()",
            f"    if not {data}.Unpack({request}):",
            *_raise(f"node {node!r} expects message {full}, ", "got {url}",
                    url=f"{data}.type_url!r"),
        ]  # fmt: skip
        arg = request
    call = f"{name}({ctx}, {arg})" if required == 2 else f"{name}({arg})"
    call = f"await {call}" if inspect.iscoroutinefunction(handler) else call
    if out_name is None:
        return "\n".join([*lines, f"    return {call}"])
    # KRE packs whatever comes back: a wrong type would only show up later, as an empty reply
    full_out = output_type.DESCRIPTOR.full_name
    lines += [
        f"    {result} = {call}",
        f"    if not isinstance({result}, {out_name}):",
        *_raise(f"node {node!r} must return message {full_out}, ", "not {kind}",
                kind=f"type({result}).__name__"),
        f"    return {result}",
    ]  # fmt: skip
    return "\n".join(lines)


# kre-py runs main.py without adding it to sys.modules, where dataclasses (and typing, pydantic)
# look up a class's module to resolve string annotations (all annotations are strings here, see
# the __future__ import); without an entry they crash. A copy of the module's namespace as it
# is after the imports is enough for them.
_REGISTER = """\
if __name__ not in {sys}.modules:
    # kre-py runs this file without registering it; dataclasses need it in sys.modules.
    {sys}.modules[__name__] = type({sys})(__name__)
    vars({sys}.modules[__name__]).update(globals())"""


def _has_annotated_class(blocks: Sequence[str]) -> bool:
    classes = [n for b in blocks for n in ast.parse(b).body if isinstance(n, ast.ClassDef)]
    return any(isinstance(s, ast.AnnAssign) for c in classes for s in c.body)


def render_main_py(
    *,
    node: str,
    version: str,
    handler: Callable[..., Any],
    init: Callable[..., Any] | None,
    input_type: type | None,
    output_type: type | None,
) -> str:
    """The text of ``src/<node>/main.py`` for a node written as notebook/script functions.

    Args:
        node: the node name.
        version: the version name (for the module docstring).
        handler: the user's node function, ``(ctx, request)`` or ``(request)``, sync or async
            (a krtlab node wrapper is unwrapped).
        init: the user's init function, ``(ctx)`` or ``()``, sync or async; or None.
        input_type: the protobuf message class the handler receives; None passes the raw
            ``google.protobuf.Any`` through.
        output_type: the message class the handler returns; when given, the generated handler
            checks the result's type (KRE would otherwise send an empty reply, silently).

    Returns:
        The module source: docstring, imports, the captured definitions, ``init(ctx)`` (only
        when ``init`` is given and is not already a function named ``init`` taking ``ctx``)
        and ``async def handler(ctx, data)``. The same input gives the same text.

    Raises:
        CaptureError: if the functions cannot be exported (see
            :func:`~krtlab.authoring.capture.capture`) or have an unsupported signature.
    """
    return _render(node, version, handler, init, input_type, output_type)[0]


def node_files_and_origins(
    *,
    node: str,
    version: str,
    handler: Callable[..., Any],
    init: Callable[..., Any] | None,
    input_type: type | None,
    output_type: type | None,
) -> tuple[dict[str, bytes], dict[int, str]]:
    """Every file of a node's folder, keyed by path inside it: ``main.py`` (see
    :func:`render_main_py`) and a copy of each local module it imports (``textutils.py``,
    ``helpers/__init__.py``, and the local modules those import); and where each line of
    ``main.py`` came from (line -> ``cell In[4], line 2``), for messages about the file.

    Raises:
        CaptureError: as :func:`render_main_py`, and for local modules that cannot be copied.
    """
    from krtlab.authoring.local_modules import local_files

    text, captured, origins = _render(node, version, handler, init, input_type, output_type)
    files = local_files(captured.local_modules, node=node)
    files["main.py"] = text.encode()
    return files, origins


def _render(
    node: str,
    version: str,
    handler: Callable[..., Any],
    init: Callable[..., Any] | None,
    input_type: type | None,
    output_type: type | None,
) -> tuple[str, Captured, dict[int, str]]:
    from krtlab.authoring.capture import capture  # capture imports the writers above

    handler = _plain(handler)  # krtlab node wrappers hold the user's function
    init = _plain(init) if init is not None else None
    keep = [init] if init is not None and init.__name__ == "init" and _accepts(init, 1) else []
    captured = capture([handler, *([init] if init is not None else [])], node=node, keep=keep)
    blocks = list(captured.definitions)
    entry = _init_block(captured, init) if init is not None else None
    blocks += [entry] if entry else []
    blocks.append(_handler_block(captured, handler, input_type, output_type))
    if _has_annotated_class(captured.definitions):
        blocks.insert(0, _REGISTER.format(sys=captured.module_name_for("sys")))
    head = _docstring(node, version, captured.where) + "\n\n" + captured.import_block()
    # like isort/ruff: one blank line after the imports before a statement, two before a def
    first = ast.parse(blocks[0]).body[0]
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    text = head + ("\n\n\n" if isinstance(first, defs) else "\n\n")
    origins: dict[int, str] = {}
    shift = 1 if blocks[0].startswith("if __name__ not in") else 0  # the _REGISTER block
    for i, block in enumerate(blocks):
        if i:
            text += "\n\n\n"
        j = i - shift
        if 0 <= j < len(captured.origins):
            start = text.count("\n") + 1
            origins.update({start + k: w for k, w in enumerate(captured.origins[j]) if w})
        text += block
    return text + "\n", captured, origins
