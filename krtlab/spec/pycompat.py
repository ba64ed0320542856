"""Python code that a runner image's (older) Python cannot run, found by reading it.

kre-py images run Python 3.7 (tags up to 1.25.x) or 3.9 (from 1.26.0). :func:`python_issues`
reads a node's module as that Python would and lists, with their lines:

* syntax newer than it (walrus ``:=``, positional-only ``/``, ``match``, ``except*``, f-string
  ``{x=}``, parenthesized context managers ...), parsed with the image's grammar;
* standard-library modules and functions it does not have (``zoneinfo``, ``tomllib``,
  ``math.prod``, ``itertools.pairwise``, ``str.removeprefix``, ``zip(strict=)`` ...);
* operators and annotations it evaluates and fails on: ``dict | dict``, ``X | Y`` types and
  ``list[int]``-style generics evaluated at run time (annotations are not evaluated under
  ``from __future__ import annotations``).

Reading, not running: a name shadowing a module (``math = ...``) can fool it; ``krtlab check``
runs the code for real under the image's Python.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["PyIssue", "python_issues"]

Version = tuple[int, int]

#: standard-library modules, by the Python that added them
_MODULES: dict[str, Version] = {
    "zoneinfo": (3, 9), "graphlib": (3, 9), "tomllib": (3, 11), "importlib.metadata": (3, 8),
    "wsgiref.types": (3, 11), "importlib.resources.abc": (3, 11),
}  # fmt: skip
#: module attributes, by the Python that added them
_ATTRS: dict[tuple[str, str], Version] = {
    **dict.fromkeys([("math", n) for n in ("prod", "isqrt", "dist", "comb", "perm")], (3, 8)),
    **dict.fromkeys([("math", n) for n in ("lcm", "nextafter", "ulp")], (3, 9)),
    **dict.fromkeys([("math", n) for n in ("cbrt", "exp2")], (3, 11)),
    ("itertools", "pairwise"): (3, 10),
    ("itertools", "batched"): (3, 12),
    ("functools", "cache"): (3, 9),
    ("functools", "cached_property"): (3, 8),
    ("functools", "singledispatchmethod"): (3, 8),
    **dict.fromkeys(
        [
            ("statistics", n)
            for n in ("fmean", "geometric_mean", "multimode", "quantiles", "NormalDist")
        ],
        (3, 8),
    ),
    **dict.fromkeys(
        [("statistics", n) for n in ("correlation", "covariance", "linear_regression")], (3, 10)
    ),
    **dict.fromkeys(
        [
            ("typing", n)
            for n in (
                "Literal",
                "Final",
                "Protocol",
                "TypedDict",
                "final",
                "runtime_checkable",
                "get_origin",
                "get_args",
                "SupportsIndex",
            )
        ],
        (3, 8),
    ),
    ("typing", "Annotated"): (3, 9),
    **dict.fromkeys(
        [
            ("typing", n)
            for n in ("ParamSpec", "TypeAlias", "TypeGuard", "Concatenate", "is_typeddict")
        ],
        (3, 10),
    ),
    **dict.fromkeys(
        [
            ("typing", n)
            for n in (
                "Self",
                "Never",
                "LiteralString",
                "assert_never",
                "reveal_type",
                "TypeVarTuple",
                "Unpack",
                "Required",
                "NotRequired",
                "dataclass_transform",
                "assert_type",
            )
        ],
        (3, 11),
    ),
    ("typing", "override"): (3, 12),
    ("asyncio", "to_thread"): (3, 9),
    **dict.fromkeys([("asyncio", n) for n in ("TaskGroup", "timeout", "Runner")], (3, 11)),
    ("random", "randbytes"): (3, 9),
    ("os", "waitstatus_to_exitcode"): (3, 9),
    ("datetime", "UTC"): (3, 11),
    **dict.fromkeys([("enum", n) for n in ("StrEnum", "verify", "member", "nonmember")], (3, 11)),
    ("contextlib", "aclosing"): (3, 10),
    ("contextlib", "chdir"): (3, 11),
    ("dataclasses", "KW_ONLY"): (3, 10),
    ("operator", "call"): (3, 11),
    ("sys", "exception"): (3, 11),
    ("shlex", "join"): (3, 8),
    ("hashlib", "file_digest"): (3, 11),
    ("secrets", "randbits"): (3, 6),
}
#: methods of builtin types, by the Python that added them (matched by name)
_METHODS: dict[str, tuple[Version, str]] = {
    "removeprefix": ((3, 9), "str.removeprefix"),
    "removesuffix": ((3, 9), "str.removesuffix"),
    "bit_count": ((3, 10), "int.bit_count"),
    "is_integer": ((3, 12), "int.is_integer"),  # float.is_integer is older; ints got it in 3.12
}
#: keyword arguments of builtins and functions, by the Python that added them
_KEYWORDS: dict[tuple[str, str], Version] = {
    ("zip", "strict"): (3, 10),
    ("bisect", "key"): (3, 10),
    ("bisect_left", "key"): (3, 10),
    ("bisect_right", "key"): (3, 10),
    ("insort", "key"): (3, 10),
    ("dataclass", "slots"): (3, 10),
    ("dataclass", "kw_only"): (3, 10),
    ("dataclass", "match_args"): (3, 10),
    ("lru_cache", "typed"): (3, 3),
    ("round", "ndigits"): (3, 0),
}
_GENERICS = {"list", "dict", "set", "frozenset", "tuple", "type"}


@dataclass(frozen=True)
class PyIssue:
    """One thing the older Python cannot run: ``code`` is ``syntax``, ``stdlib`` or
    ``annotation``; ``needs`` the Python it needs."""

    line: int
    code: str
    message: str
    needs: Version

    @property
    def needs_text(self) -> str:
        return ".".join(map(str, self.needs))


def _syntax(text: str, python: Version) -> PyIssue | None:
    try:
        ast.parse(text, feature_version=python)
    except SyntaxError as exc:
        return PyIssue(exc.lineno or 1, "syntax", f"Python {python[0]}.{python[1]} cannot "
                       f"parse this: {exc.msg}", (python[0], python[1] + 1))  # fmt: skip
    return None


_SELF_DOC = re.compile(r"\{[^{}!:=<>]*[^{}!:=<>\s]\s*=\s*(![rsa])?(:[^{}]*)?\}")


def _fstring_debug(text: str) -> Iterator[int]:
    """Lines of f-strings with ``{x=}`` (3.8), which the 3.7 tokenizer takes for text."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return
    for tok in tokens:
        if tok.type != tokenize.STRING:
            continue
        prefix = tok.string[: len(tok.string) - len(tok.string.lstrip("rRbBfFuU"))].lower()
        body = tok.string[len(prefix) :]
        # an escaped "{{" is literal text; "}}" may close a nested field, as in f"{x:{y=}}"
        if "f" in prefix and _SELF_DOC.search(body.replace("{{", "")):
            yield tok.start[0]


def _future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )  # fmt: skip


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> module or module.attr, for ``import x as y`` / ``from x import y``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(expr: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.insert(0, expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        return ".".join([expr.id, *parts])
    return None


def _is_dict(expr: ast.expr) -> bool:
    return isinstance(expr, (ast.Dict, ast.DictComp)) or (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict"
    )


def _annotation_issues(
    expr: ast.expr, python: Version, imports: dict[str, str]
) -> Iterator[PyIssue]:
    for node in ast.walk(expr):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and python < (3, 10):
            yield PyIssue(node.lineno, "annotation", "`X | Y` types are evaluated here and need "
                          "Python 3.10; add `from __future__ import annotations` or use "
                          "Optional/Union", (3, 10))  # fmt: skip
            return
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id in _GENERICS and node.value.id not in imports
                and python < (3, 9)):  # fmt: skip
            yield PyIssue(node.lineno, "annotation", f"`{node.value.id}[...]` is evaluated here "
                          "and needs Python 3.9; add `from __future__ import annotations` or "
                          f"use typing.{node.value.id.title()}", (3, 9))  # fmt: skip
            return


def python_issues(text: str, python: Version) -> list[PyIssue]:
    """What in module source ``text`` Python ``python`` (e.g. ``(3, 7)``) cannot run."""
    return list(_issues(text, tuple(python)))


# frozen issues of a text: validate and build check the same sources again
@functools.lru_cache(maxsize=512)
def _issues(text: str, python: Version) -> tuple[PyIssue, ...]:
    issue = _syntax(text, python)
    found: list[PyIssue] = [issue] if issue is not None else []
    try:  # the rest is read with this Python's grammar (one syntax error stops the old one)
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return tuple(found)
    if python < (3, 8):
        lines = {i.line for i in found}
        found += [PyIssue(line, "syntax", "f-string `{x=}` needs Python 3.8", (3, 8))
                  for line in _fstring_debug(text) if line not in lines]  # fmt: skip
    imports = _imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if node.module and node.level == 0 else [])  # fmt: skip
            for module in modules:
                need = next((v for m, v in _MODULES.items()
                             if module == m or module.startswith(m + ".")), None)  # fmt: skip
                if need and python < need:
                    found.append(PyIssue(node.lineno, "stdlib", f"module {module!r} is new in "
                                         f"Python {need[0]}.{need[1]}", need))  # fmt: skip
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    need = _ATTRS.get((node.module, a.name)) or _MODULES.get(
                        f"{node.module}.{a.name}"
                    )
                    if need and python < need:
                        what = f"{node.module}.{a.name} is new in Python {need[0]}.{need[1]}"
                        found.append(PyIssue(node.lineno, "stdlib", what, need))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node)
            if dotted is not None and "." in dotted:
                head, _, attr = dotted.rpartition(".")
                imported = imports.get(head.split(".")[0])
                if imported is not None:
                    module = ".".join([imported, *head.split(".")[1:]])
                    need = _ATTRS.get((module, attr))
                    if need and python < need:
                        found.append(PyIssue(node.lineno, "stdlib", f"{module}.{attr} is new "
                                             f"in Python {need[0]}.{need[1]}", need))  # fmt: skip
                        continue
            if node.attr in _METHODS:
                need, what = _METHODS[node.attr]
                if python < need:
                    found.append(PyIssue(node.lineno, "stdlib", f"{what}() is new in Python "
                                         f"{need[0]}.{need[1]}", need))  # fmt: skip
        elif isinstance(node, ast.Call):
            callee = _dotted(node.func) or ""
            short = callee.rsplit(".", 1)[-1]
            for kw in node.keywords:
                need = _KEYWORDS.get((short, kw.arg or ""))
                if need and python < need:
                    found.append(PyIssue(node.lineno, "stdlib", f"{short}({kw.arg}=...) is new "
                                         f"in Python {need[0]}.{need[1]}", need))  # fmt: skip
            if (short == "isinstance" and len(node.args) == 2 and python < (3, 10)
                    and isinstance(node.args[1], ast.BinOp)
                    and isinstance(node.args[1].op, ast.BitOr)):  # fmt: skip
                found.append(PyIssue(node.lineno, "annotation", "isinstance(x, A | B) needs "
                                     "Python 3.10; use a tuple (A, B)", (3, 10)))  # fmt: skip
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.BitOr):
            if isinstance(node, ast.BinOp):
                left, right = node.left, node.right
            else:
                left, right = node.target, node.value
            if python < (3, 9) and (_is_dict(left) or _is_dict(right)):
                found.append(PyIssue(node.lineno, "stdlib", "dict | dict (merging with |) is new "
                                     "in Python 3.9; use {**a, **b}", (3, 9)))  # fmt: skip
    if not _future_annotations(tree):  # annotations are evaluated when the def runs
        for node in ast.walk(tree):
            exprs: list[ast.expr] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                exprs = [a.annotation for a in every if a is not None and a.annotation is not None]
                exprs += [node.returns] if node.returns is not None else []
            elif isinstance(node, ast.AnnAssign):
                exprs = [node.annotation]
            for expr in exprs:
                if isinstance(expr, ast.Constant):  # a string: not evaluated
                    continue
                found += _annotation_issues(expr, python, imports)
    unique = {(i.line, i.message): i for i in found}
    return tuple(sorted(unique.values(), key=lambda i: (i.line, i.message)))
