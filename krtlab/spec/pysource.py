"""Static facts about a Python node's ``main.py``, read with :mod:`ast` (never imported).

kre-py 1.x loads the file and awaits ``handler(ctx, data)``; a missing or non-``async`` handler
only fails once the version runs, so krtlab looks before KRE does.
"""

from __future__ import annotations

import ast

from krtlab.spec.facts import SourceFacts

__all__ = ["read_python_source"]


def read_python_source(text: str) -> SourceFacts:
    """Facts about a node source: handler shape, imports, and the message types it uses."""
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
    certain = frozenset(
        n.lineno
        for n in tree.body
        if isinstance(n, ast.Import) or (isinstance(n, ast.ImportFrom) and n.level == 0)
    )
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "handler":
                handler = node
            elif node.name == "init":
                init_params = len(node.args.args)

    if handler is None:
        return SourceFacts(imports=tuple(imports), certain_imports=certain, init_params=init_params)

    input_ref, output_ref, output_line = _infer_types(handler, names, aliases)
    return SourceFacts(
        handler_line=handler.lineno,
        handler_async=isinstance(handler, ast.AsyncFunctionDef),
        handler_params=len(handler.args.args),
        init_params=init_params,
        imports=tuple(imports),
        certain_imports=certain,
        input_ref=input_ref,
        output_ref=output_ref,
        output_line=output_line,
    )


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
