"""Finding, scanning and rewriting the source of notebook/script functions and classes.

Internal helpers of :mod:`krtlab.authoring.capture`:

* :func:`location` turns a code file name and line into what the user recognises
  (``cell In[5], line 3`` in IPython, ``path/to/file.py, line 42`` otherwise);
* :func:`function_source` / :func:`class_source` find the exact ``def``/``class`` block, including
  classes defined in Jupyter cells, which :func:`inspect.getsource` cannot find;
* :func:`scan` lists the global names a block uses, with proper Python scoping;
* :func:`rewrite` renames globals and drops decorators in the emitted text;
* :func:`literal_source` writes constants (lists, dicts, nan, ...) back as source.

Nothing here imports IPython: the running shell, if any, is looked up in ``sys.modules``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import linecache
import os
import sys
import textwrap
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from krtlab.errors import CaptureError

__all__ = [
    "Ref",
    "Source",
    "cell_files",
    "class_source",
    "function_source",
    "literal_source",
    "location",
    "rewrite",
    "scan",
]

_DEF_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def cell_files() -> dict[str, int]:
    """Map each IPython cell's pseudo file name to its execution count ({} outside IPython)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    mapping = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return dict(mapping) if isinstance(mapping, dict) else {}


def location(filename: str, line: int) -> str:
    """Describe ``line`` of ``filename`` the way the user sees it (cell number or path)."""
    count = cell_files().get(filename)
    if count is not None:
        return f"cell In[{count}], line {line}"
    if not filename.startswith("<"):
        try:
            rel = os.path.relpath(filename)
        except ValueError:  # another drive on Windows
            rel = filename
        if not rel.startswith(".."):
            filename = rel
    return f"{filename}, line {line}"


@dataclass(frozen=True)
class Ref:
    """One use of a global name inside a block of source.

    ``line``/``col`` are 1-based/0-based character positions in :attr:`Source.text`; ``col`` is
    -1 for uses that cannot be renamed in place (inside a string annotation or a ``global``
    statement, where ``global_stmt`` is true).
    """

    name: str
    line: int
    col: int
    annotation: bool = False
    store: bool = False
    global_stmt: bool = False


@dataclass(frozen=True)
class Source:
    """The dedented source of one top-level ``def`` or ``class`` and where it came from."""

    name: str
    text: str
    filename: str
    first_line: int
    tree: ast.Module = field(repr=False, compare=False)

    @property
    def node(self) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
        """The block's AST node (the only statement of :attr:`tree`)."""
        return self.tree.body[0]  # type: ignore[return-value]

    def where(self, line: int = 1) -> str:
        """Location text for ``line`` of :attr:`text` (1-based)."""
        return location(self.filename, self.first_line + line - 1)


@functools.lru_cache(maxsize=128)
def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _top_level_defs(tree: ast.AST) -> Iterator[ast.AST]:
    """Defs and classes not nested in another def/class (they may sit inside if/try/with)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, _DEF_TYPES):
            yield child
        elif isinstance(child, ast.stmt):
            yield from _top_level_defs(child)


def _block(name: str, filename: str, lines: list[str], node: ast.AST) -> Source:
    start = _start(node)
    text = "".join(lines[start - 1 : node.end_lineno])
    if node.col_offset:
        text = textwrap.dedent(text)
    tree = _parse(text)
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], _DEF_TYPES):
        raise CaptureError(
            f"cannot cut the source of {name!r} out of {location(filename, start)}; "
            "define it at the top level of a cell or module",
            name=name,
            where=location(filename, start),
        )
    return Source(name, text.rstrip() + "\n", filename, start, tree)


def function_source(func: Callable) -> Source:
    """Find the ``def`` block of a plain (top-level) function, decorators included."""
    code = func.__code__
    name = code.co_name
    lines = linecache.getlines(code.co_filename, getattr(func, "__globals__", None))
    tree = _parse("".join(lines)) if lines else None
    where = location(code.co_filename, code.co_firstlineno)
    if tree is not None:
        for node in _top_level_defs(tree):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == name
                and _start(node) == code.co_firstlineno
            ):
                return _block(name, code.co_filename, lines, node)
    raise CaptureError(
        f"cannot find the source of function {name!r} ({where}); was the file changed after it "
        "ran? Re-run the cell or module that defines it",
        name=name,
        where=where,
    )


def _class_hints(cls: type) -> list[tuple[str, int | None]]:
    """Candidate (file, line inside the class) pairs, best first."""
    hints: list[tuple[str, int | None]] = []
    for value in vars(cls).values():
        for fn in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
            code = getattr(inspect.unwrap(fn), "__code__", None) if fn is not None else None
            if code is not None and not code.co_filename.startswith("<string"):
                hints.append((code.co_filename, code.co_firstlineno))
    first = getattr(cls, "__firstlineno__", None)  # Python >= 3.13
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if isinstance(path, str):
        hints.append((path, first))
    # Jupyter: __main__ has no file; try every cell, newest first (the latest definition wins).
    cells = sorted(cell_files().items(), key=lambda item: -item[1])
    hints.extend((filename, None) for filename, _ in cells)
    return hints


def _same_shape(cls: type, node: ast.ClassDef) -> bool:
    """Whether a ``class`` statement plausibly produced ``cls`` (same methods and fields)."""
    methods = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    fields = {
        s.target.id
        for s in node.body
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    }
    try:
        annotations = set(inspect.get_annotations(cls))
    except Exception:  # annotations that fail to evaluate lazily (3.14): do not rule it out
        annotations = fields
    return methods <= set(vars(cls)) and fields == annotations


def class_source(cls: type) -> Source:
    """Find the ``class`` block that defined ``cls``, also for classes defined in Jupyter cells."""
    seen: set[tuple[str, int | None]] = set()
    for filename, line in _class_hints(cls):
        if (filename, line) in seen:
            continue
        seen.add((filename, line))
        lines = linecache.getlines(filename)
        tree = _parse("".join(lines)) if lines else None
        if tree is None:
            continue
        found = [
            n
            for n in _top_level_defs(tree)
            if isinstance(n, ast.ClassDef) and n.name == cls.__name__
        ]
        if line is not None:
            found = [n for n in found if _start(n) <= line <= (n.end_lineno or n.lineno)]
        for node in reversed(found):  # the last definition in a file is the one that ran last
            if _same_shape(cls, node):
                return _block(cls.__name__, filename, lines, node)
    raise CaptureError(
        f"cannot find the source of class {cls.__name__!r}; define it at the top level of a "
        "notebook cell or module and run that cell again",
        name=cls.__name__,
    )


class _Scope:
    __slots__ = ("bound", "declared", "kind", "loads", "nonlocals", "parent", "stores")

    def __init__(self, kind: str, parent: _Scope | None) -> None:
        self.kind, self.parent = kind, parent
        self.bound: set[str] = set()
        self.declared: set[str] = set()  # `global x`
        self.nonlocals: set[str] = set()
        self.loads: list[Ref] = []
        self.stores: list[Ref] = []

    def is_global(self, name: str) -> bool:
        """Python's name resolution for a name used in this scope."""
        scope: _Scope | None = self
        while scope is not None:
            if scope.kind == "module" or name in scope.declared:
                return True
            if name in scope.nonlocals or name in scope.bound:
                # class bodies only see their own names, not those of an enclosing class
                if scope is self or scope.kind != "class":
                    return False
            scope = scope.parent
        return True


class _Scanner(ast.NodeVisitor):
    """Collects every use of a name per scope; :func:`scan` then keeps the global ones."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.scope = _Scope("module", None)
        self.scopes = [self.scope]
        self.annotation = False

    def _col(self, node: ast.expr) -> int:
        # AST columns are UTF-8 byte offsets; the rewriter works on characters.
        line = self.lines[node.lineno - 1].encode()
        return len(line[: node.col_offset].decode(errors="replace"))

    def _enter(self, kind: str, names: set[str], body: list[ast.AST]) -> None:
        outer = self.scope
        self.scope = _Scope(kind, outer)
        self.scope.bound |= names
        self.scopes.append(self.scope)
        for node in body:
            self.visit(node)
        self.scope = outer

    def _annotate(self, node: ast.expr | None) -> None:
        if node is not None:
            outer, self.annotation = self.annotation, True
            self.visit(node)
            self.annotation = outer

    def visit_Name(self, node: ast.Name) -> None:
        ref = Ref(node.id, node.lineno, self._col(node), self.annotation)
        if isinstance(node.ctx, ast.Load):
            self.scope.loads.append(ref)
        else:
            self.scope.bound.add(node.id)
            self.scope.stores.append(Ref(node.id, ref.line, ref.col, store=True))

    def visit_Constant(self, node: ast.Constant) -> None:
        # Names inside string annotations ("Request") are only for import completeness.
        if self.annotation and isinstance(node.value, str):
            try:
                inner = ast.parse(node.value, mode="eval")
            except SyntaxError:
                return
            for sub in ast.walk(inner):
                if isinstance(sub, ast.Name):
                    self.scope.loads.append(Ref(sub.id, node.lineno, -1, annotation=True))

    def _arguments(self, args: ast.arguments) -> set[str]:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        for arg in every:
            self._annotate(arg.annotation)
        return {arg.arg for arg in every}

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        params = self._arguments(node.args)
        self._annotate(node.returns)
        self.scope.bound.add(node.name)
        self._enter("function", params, node.body)

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._enter("function", self._arguments(node.args), [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self.scope.bound.add(node.name)
        self._enter("class", set(), node.body)

    def _comprehension(self, node: ast.AST, results: list[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        body: list[ast.AST] = []
        for i, gen in enumerate(generators):
            body += [gen.target, *([gen.iter] if i else []), *gen.ifs]
        self._enter("comprehension", set(), body + results)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        scope.bound.add(node.target.id)
        scope.stores.append(
            Ref(node.target.id, node.target.lineno, self._col(node.target), store=True)
        )

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared.update(node.names)
        self.scope.stores.extend(Ref(n, node.lineno, -1, global_stmt=True) for n in node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocals.update(node.names)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.scope.bound.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.scope.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.AST) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        if name:
            self.scope.bound.add(name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchMapping = visit_MatchAs

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotate(node.annotation)
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)


def scan(source: Source) -> list[Ref]:
    """Every use of a global name in ``source`` (loads, stores to ``global`` names), in order."""
    scanner = _Scanner(source.text.splitlines())
    scanner.visit(source.tree)
    refs: list[Ref] = []
    for scope in scanner.scopes:
        refs += [r for r in scope.loads if scope.is_global(r.name)]
        refs += [r for r in scope.stores if scope.kind != "module" and r.name in scope.declared]
    return sorted(refs, key=lambda r: (r.line, r.col))


def _name_token_after_keyword(
    text: str, line: int, keywords: set[str]
) -> list[tuple[int, int, str]]:
    """(line, col, name) of NAME tokens following one of ``keywords`` on ``line``."""
    found: list[tuple[int, int, str]] = []
    after_keyword = False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.start[0] > line:
            break
        if tok.start[0] == line and tok.type == tokenize.NAME:
            if after_keyword and tok.string not in keywords:
                found.append((tok.start[0], tok.start[1], tok.string))
            after_keyword = after_keyword or tok.string in keywords
    return found


def rewrite(source: Source, refs: list[Ref], renames: dict[str, str], drop: list[range]) -> str:
    """The block's text with global ``renames`` applied and the decorator lines in ``drop`` removed.

    Renames touch only the tokens that really are the global (from :func:`scan`): attributes,
    keyword arguments and locals with the same name are left alone.
    """
    lines = source.text.splitlines()
    edits: list[tuple[int, int, str, str]] = []  # (line, col, old, new)
    for ref in refs:
        new = renames.get(ref.name)
        if new is None:
            continue
        if ref.global_stmt:
            for line, col, name in _name_token_after_keyword(source.text, ref.line, {"global"}):
                if name == ref.name:
                    edits.append((line, col, name, new))
        elif ref.col >= 0:
            edits.append((ref.line, ref.col, ref.name, new))
    node = source.node
    if node.name in renames:
        keyword = {"class"} if isinstance(node, ast.ClassDef) else {"def"}
        for line, col, name in _name_token_after_keyword(source.text, node.lineno, keyword)[:1]:
            edits.append((line, col, name, renames[node.name]))
    for line, col, old, new in sorted(set(edits), reverse=True):
        text = lines[line - 1]
        if text[col : col + len(old)] != old:  # should not happen; never corrupt the code
            raise CaptureError(f"internal error renaming {old!r} in {source.where(line)}")
        lines[line - 1] = text[:col] + new + text[col + len(old) :]
    kept = [t for i, t in enumerate(lines, 1) if not any(i in r for r in drop)]
    return "\n".join(kept).rstrip()


_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}
_EVAL_NS: dict = {"__builtins__": {}, "float": float, "set": set, "frozenset": frozenset}


def _items(value: list | tuple | set | frozenset) -> list:
    # Sets are written sorted by their text: repr() order changes with hash randomisation.
    return sorted(value, key=_one) if isinstance(value, (set, frozenset)) else list(value)


def _one(value: object, depth: int = 0) -> str | None:
    """One-line source of a literal value, or None if it is not made only of literals."""
    kind = type(value)
    if depth > 50:  # also stops self-containing containers
        return None
    if kind in _SCALARS:
        if kind is float and value != value:
            return 'float("nan")'
        if kind is float and value in (float("inf"), float("-inf")):
            return 'float("inf")' if value > 0 else '-float("inf")'  # type: ignore[operator]
        return repr(value)
    if kind is dict:
        pairs = [(_one(k, depth + 1), _one(v, depth + 1)) for k, v in value.items()]  # type: ignore[attr-defined]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if kind not in _CONTAINERS:
        return None
    parts = [_one(v, depth + 1) for v in value]  # type: ignore[attr-defined]
    if None in parts:
        return None
    if kind in (set, frozenset):
        parts.sort()  # type: ignore[call-arg]
        if not parts:
            return f"{kind.__name__}()"
    opener, closer = _CONTAINERS[kind]
    trailing = "," if kind is tuple and len(parts) == 1 else ""
    return opener + ", ".join(parts) + trailing + closer  # type: ignore[arg-type]


def _pretty(value: object, indent: int, width: int) -> str | None:
    one = _one(value)
    kind = type(value)
    if one is None or indent + len(one) <= width or not (kind is dict or kind in _CONTAINERS):
        return one
    pad = " " * (indent + 4)
    if kind is dict:
        rows = [f"{_one(k)}: {_pretty(v, indent + 4, width)}" for k, v in value.items()]  # type: ignore[attr-defined]
        opener, closer = "{", "}"
    else:
        items = _items(value)  # type: ignore[arg-type]
        rows = [str(_pretty(v, indent + 4, width)) for v in items]
        opener, closer = _CONTAINERS[kind]
        if all(type(v) in _SCALARS for v in items):  # numbers/strings: fill lines, not one each
            rows = _fill(rows, width - indent - 4)
    return opener + "\n" + "".join(f"{pad}{row},\n" for row in rows) + " " * indent + closer


def _fill(rows: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for row in rows:
        if lines and len(lines[-1]) + len(row) + 3 <= width:
            lines[-1] += ", " + row
        else:
            lines.append(row)
    return lines


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, (set, frozenset)):  # by text, so that sets holding nan compare equal
        return sorted(map(_one, a)) == sorted(map(_one, b))  # type: ignore[arg-type]
    return bool(a == b)


def literal_source(value: object, indent: int = 0, width: int = 100) -> str | None:
    """Python source that rebuilds ``value`` if it is made only of literals, else None.

    Containers that do not fit in ``width`` are written one item per line. The text is checked
    by evaluating it back (no names but ``float``/``set``/``frozenset`` are available).
    """
    text = _pretty(value, indent, width)
    if text is None:
        return None
    try:
        back = eval(text, dict(_EVAL_NS))  # noqa: S307 - our own literal text, no builtins
    except Exception:
        return None
    return text if _same(back, value) else None
