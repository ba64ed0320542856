"""Static facts about a Python node's ``main.py``, read with :mod:`ast` (never imported).

kre-py 1.x loads the file and awaits ``handler(ctx, data)``; a missing or non-``async`` handler
only fails once the version runs, so krtlab looks before KRE does.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable

from krtlab.spec.facts import SourceFacts

__all__ = ["read_python_source"]


def read_python_source(text: str) -> SourceFacts:
    """Facts about a node source: handler shape, imports, and the message types it uses."""
    return _read(text)


# The facts are frozen and depend on the text alone: validate, build and the graph of one
# version read the same sources several times (a 100-node version: 400 parses per build).
@functools.lru_cache(maxsize=512)
def _read(text: str) -> SourceFacts:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return SourceFacts(syntax_error=(exc.lineno, exc.msg))
    except (ValueError, RecursionError, MemoryError) as exc:
        return SourceFacts(syntax_error=(None, str(exc) or type(exc).__name__))

    imports: list[tuple[str, int]] = []
    names: dict[str, tuple[str, str]] = {}  # local name → (module, Name) for `from x_pb2 import N`
    aliases: dict[str, str] = {}  # `import public_input_pb2 as pb` → {"pb": "public_input_pb2"}
    handler: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    init_params = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(a.name.split(".")[0], node.lineno) for a in node.names]
            for a in node.names:
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imports.append((node.module.split(".")[0], node.lineno))
            for a in node.names:
                names[a.asname or a.name] = (node.module, a.name)
    certain = frozenset(_unguarded_imports(tree))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "handler":
                handler = node
            elif node.name == "init":
                init_params = len(node.args.args)

    uses = _ctx_uses(tree)
    if handler is None:
        return SourceFacts(imports=tuple(imports), certain_imports=certain, init_params=init_params,
                           ctx_uses=uses, text=text)  # fmt: skip

    input_ref, output_ref, output_line = _infer_types(handler, names, aliases)
    return SourceFacts(
        handler_line=handler.lineno,
        handler_async=isinstance(handler, ast.AsyncFunctionDef),
        handler_params=len(handler.args.args),
        init_params=init_params,
        imports=tuple(imports),
        certain_imports=certain,
        ctx_uses=uses,
        text=text,
        input_ref=input_ref,
        output_ref=output_ref,
        output_line=output_line,
    )


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_NEVER_RUN = ("TYPE_CHECKING", "typing.TYPE_CHECKING", "False")  # tests of `if` bodies


def _catches_import_errors(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(k, ast.Name) and k.id in _IMPORT_ERRORS for k in kinds):
            return True
    return False


def _unguarded_imports(tree: ast.Module) -> list[int]:
    """Lines of the imports that run unguarded when their code runs: not in a ``try`` that
    catches ImportError, not under ``if TYPE_CHECKING:`` (nor ``if False:``)."""
    lines: list[int] = []

    def visit(nodes: Iterable[ast.AST]) -> None:
        for child in nodes:
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if not (isinstance(child, ast.ImportFrom) and child.level):
                    lines.append(child.lineno)
            elif isinstance(child, ast.Try) and _catches_import_errors(child):
                # its body may fail to import; the handlers, else and finally run unguarded
                visit([stmt for handler in child.handlers for stmt in handler.body])
                visit([*child.orelse, *child.finalbody])
            elif isinstance(child, ast.If) and ast.unparse(child.test) in _NEVER_RUN:
                visit(child.orelse)
            else:
                visit(ast.iter_child_nodes(child))

    visit(tree.body)
    return lines


def _ctx_uses(tree: ast.Module) -> tuple[tuple[str, int], ...]:
    """``ctx.member`` uses: on parameters named ``ctx`` or ``context``, and on the first
    parameter of ``handler``/``init`` (the runner passes its context there)."""
    found: list[tuple[str, int]] = []  # in the order read: the sort below is then repeatable
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
        names = {p for p in params if p in ("ctx", "context")}
        if not isinstance(fn, ast.Lambda) and fn.name in ("handler", "init") and params:
            names.add(params[0])
        if not names:
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
            ):
                found.append((node.attr, node.lineno))
    return tuple(sorted(dict.fromkeys(found), key=lambda u: (u[1], u[0])))


def _class_ref(
    call: ast.AST, names: dict[str, tuple[str, str]], aliases: dict[str, str]
) -> tuple[str, str] | None:
    """``Request()`` or ``pb.Request()`` → (module, "Request") when the callee is a pb2 import."""
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    if isinstance(func, ast.Name) and func.id in names:
        return names[func.id]
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        module = aliases.get(func.value.id)
        return (module, func.attr) if module else None
    return None


def _infer_types(
    handler: ast.FunctionDef | ast.AsyncFunctionDef,
    names: dict[str, tuple[str, str]],
    aliases: dict[str, str],
) -> tuple[tuple[str, str] | None, tuple[str, str] | None, int | None]:
    data_param = handler.args.args[1].arg if len(handler.args.args) > 1 else "data"
    created: dict[str, tuple[str, str]] = {}
    input_ref = None
    outputs: list[tuple[tuple[str, str] | None, int]] = []
    for node in ast.walk(handler):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            ref = _class_ref(node.value, names, aliases)
            if isinstance(target, ast.Name) and ref:
                created[target.id] = ref
    for node in ast.walk(handler):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "Unpack"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == data_param
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Name) and arg.id in created:
                input_ref = created[arg.id]
            else:
                input_ref = _class_ref(arg, names, aliases) or input_ref
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            ref = (
                created.get(value.id)
                if isinstance(value, ast.Name)
                else _class_ref(value, names, aliases)
            )
            outputs.append((ref, node.lineno))
    refs = {r for r, _ in outputs}
    output_ref = outputs[0][0] if len(refs) == 1 and outputs else None
    return input_ref, output_ref, outputs[0][1] if outputs else None
