"""Reading source for :mod:`krtlab.authoring.capture` (internal).

Finds the exact ``def``/``class`` block of notebook or script objects (also classes defined in
Jupyter cells, which :func:`inspect.getsource` cannot find), lists the global names a block uses
with Python's scoping rules and rewrites blocks (renames, dropped decorators). IPython is never
imported: the running shell, if any, is found in ``sys.modules``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import linecache
import os
import sys
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from krtlab.errors import CaptureError

__all__ = ["Ref", "Source", "class_source", "function_source", "location", "rewrite", "scan"]
__all__ += ["statement_source"]

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _cell_numbers() -> dict[str, int]:
    """IPython cell pseudo file name -> execution count ({} outside IPython)."""
    get = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get() if callable(get) else None
    mapping = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return dict(mapping) if isinstance(mapping, dict) else {}


def location(filename: str, line: int) -> str:
    """``cell In[5], line 3`` in IPython, else ``path/to/file.py, line 42`` (relative if below
    the working directory)."""
    count = _cell_numbers().get(filename)
    if count is not None:
        return f"cell In[{count}], line {line}"
    if not filename.startswith("<"):
        try:
            rel = os.path.relpath(filename)
        except ValueError:  # another drive on Windows
            rel = ".."
        filename = filename if rel.startswith("..") else rel
    return f"{filename}, line {line}"


@dataclass(frozen=True)
class Ref:
    """A use of a global name: 1-based line and 0-based character column in the block's text.

    ``col`` is -1 where the name cannot be renamed in place (inside a string annotation, or in a
    ``global`` statement, then ``global_stmt`` is set). ``deferred`` marks uses inside a function
    or lambda body: they are looked up when it is called, not when the block runs.
    """

    name: str
    line: int
    col: int
    annotation: bool = False
    store: bool = False
    global_stmt: bool = False
    deferred: bool = False


@dataclass(frozen=True)
class Source:
    """The dedented source of one ``def`` or ``class`` block (or one top-level statement) and
    where it came from."""

    name: str
    text: str
    filename: str
    first_line: int
    tree: ast.Module = field(repr=False, compare=False)

    @property
    def node(self) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
        return self.tree.body[0]  # type: ignore[return-value]

    @property
    def is_def(self) -> bool:
        return isinstance(self.tree.body[0], _DEFS)

    def where(self, line: int = 1) -> str:
        """Location text for ``line`` of :attr:`text`."""
        return location(self.filename, self.first_line + line - 1)


@functools.lru_cache(maxsize=128)
def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


@functools.lru_cache(maxsize=128)
def _functions(text: str) -> dict[tuple[str, int], ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function of a source text by (name, first line), nested ones included."""
    tree = _parse(text)
    return {
        (node.name, _start(node)): node
        for node in (ast.walk(tree) if tree else ())
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _start(node: _Def) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _top_level_defs(tree: ast.AST) -> Iterator[ast.stmt]:
    """Defs and classes not nested in another def/class (they may sit inside if/try/with)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, _DEFS):
            yield child
        elif isinstance(child, ast.stmt):
            yield from _top_level_defs(child)


def _dedent(text: str, by: int) -> str:
    """``text`` (a nested block indented by ``by``) moved left by ``by`` columns, but for the
    lines inside a string spanning lines: those are the string's own text (textwrap.dedent
    would change what the string holds)."""
    inside: set[int] = set()  # 0-based indexes of lines that continue a string
    tree = _parse("if 1:\n" + text)  # a header makes the indented block parse
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.Constant, ast.JoinedStr)) and node.end_lineno != node.lineno:
            inside.update(range(node.lineno - 1, (node.end_lineno or node.lineno) - 1))
    out = []
    for i, line in enumerate(text.splitlines(keepends=True)):
        if i in inside:
            out.append(line)
        elif line[:by].isspace() or not line.strip():
            out.append(line[by:] if line.strip() else line.lstrip(" \t"))
        else:  # less indented: a line inside brackets (any indentation is fine there)
            out.append(line.lstrip(" \t"))
    return "".join(out)


def _block(name: str, filename: str, lines: list[str], node: _Def) -> Source:
    start = _start(node)
    text = "".join(lines[start - 1 : node.end_lineno])
    text = (_dedent(text, node.col_offset) if node.col_offset else text).rstrip() + "\n"
    tree = _parse(text)
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], _DEFS):
        where = location(filename, start)
        raise CaptureError(
            f"cannot cut the source of {name!r} out of {where}; define it at the top level of "
            "a cell or module",
            name=name,
            where=where,
        )
    return Source(name, text, filename, start, tree)


def statement_source(name: str, text: str, filename: str, first_line: int) -> Source:
    """A top-level statement's text as a :class:`Source` (comments above it included)."""
    tree = _parse(text)
    if tree is None or not tree.body:
        where = location(filename, first_line)
        raise CaptureError(f"cannot read the statement that defines {name!r} ({where})",
                           name=name, where=where)  # fmt: skip
    return Source(name, text, filename, first_line, tree)


def function_source(func: Callable) -> Source:
    """The ``def`` block of a function (dedented if nested), decorators included."""
    code = func.__code__
    lines = linecache.getlines(code.co_filename, func.__globals__)
    # decorated: the def starts at its first decorator's line
    node = _functions("".join(lines)).get((code.co_name, code.co_firstlineno)) if lines else None
    if node is not None:
        return _block(code.co_name, code.co_filename, lines, node)
    where = location(code.co_filename, code.co_firstlineno)
    raise CaptureError(
        f"cannot find the source of function {code.co_name!r} ({where}); was the file changed "
        "after it ran? Run the cell or module that defines it again",
        name=code.co_name,
        where=where,
    )


def _class_hints(cls: type) -> Iterator[tuple[str, int | None]]:
    """Candidate (file, line inside the class) pairs, best first."""
    for value in vars(cls).values():
        for fn in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
            try:
                code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None
            except ValueError:  # a __wrapped__ cycle
                continue
            if code is not None and not code.co_filename.startswith("<"):  # not dataclass-made
                yield code.co_filename, code.co_firstlineno
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if isinstance(path, str):
        yield path, getattr(cls, "__firstlineno__", None)  # Python >= 3.13
    # Jupyter's __main__ has no file: try every cell, newest first (the latest definition runs)
    for filename, _ in sorted(_cell_numbers().items(), key=lambda item: -item[1]):
        yield filename, None


def _same_shape(cls: type, node: ast.ClassDef) -> bool:
    """Whether a ``class`` statement plausibly made ``cls`` (same methods and fields)."""
    methods = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    targets = [s.target for s in node.body if isinstance(s, ast.AnnAssign)]
    fields = {t.id for t in targets if isinstance(t, ast.Name)}
    try:
        annotations = set(inspect.get_annotations(cls))
    except Exception:  # lazily evaluated annotations that fail (3.14): do not rule it out
        annotations = fields
    return methods <= set(vars(cls)) and fields == annotations


def class_source(cls: type) -> Source:
    """The ``class`` block that defined ``cls``, also for classes defined in Jupyter cells."""
    for filename, line in dict.fromkeys(_class_hints(cls)):
        lines = linecache.getlines(filename)
        tree = _parse("".join(lines)) if lines else None
        found = [
            n
            for n in (_top_level_defs(tree) if tree else ())
            if isinstance(n, ast.ClassDef) and n.name == cls.__name__
        ]
        if line is not None:
            found = [n for n in found if _start(n) <= line <= (n.end_lineno or n.lineno)]
        for node in reversed(found):  # in one file, the last definition is the one that ran
            if _same_shape(cls, node):
                return _block(cls.__name__, filename, lines, node)
    raise CaptureError(
        f"cannot find the source of class {cls.__name__!r}; define it at the top level of a "
        "cell or module and run that again",
        name=cls.__name__,
    )


class _Scope:
    __slots__ = ("bound", "declared", "deferred", "kind", "loads", "nonlocals", "parent", "stores")

    def __init__(self, kind: str, parent: _Scope | None) -> None:
        self.kind, self.parent = kind, parent
        self.deferred: bool = kind == "function" or (parent is not None and parent.deferred)
        self.bound: set[str] = set()
        self.declared: set[str] = set()  # `global x`
        self.nonlocals: set[str] = set()
        self.loads: list[Ref] = []
        self.stores: list[Ref] = []

    def is_global(self, name: str) -> bool:
        """Python's resolution of ``name`` used in this scope."""
        scope: _Scope | None = self
        while scope is not None:
            if scope.kind == "module" or name in scope.declared:
                return True
            # a class body's names are invisible to the functions nested in it
            if (name in scope.bound or name in scope.nonlocals) and (
                scope is self or scope.kind != "class"
            ):
                return False
            scope = scope.parent
        return True


class _Scanner(ast.NodeVisitor):
    """Records every use and binding of a name per scope; :func:`scan` keeps the globals."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.scope = _Scope("module", None)
        self.scopes = [self.scope]
        self.annotation = False

    def _col(self, node: ast.expr) -> int:
        # AST columns count UTF-8 bytes; the rewriter works on characters
        return len(self.lines[node.lineno - 1].encode()[: node.col_offset].decode(errors="replace"))

    def _enter(self, kind: str, names: set[str], body: list) -> None:
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
        ref = Ref(node.id, node.lineno, self._col(node), self.annotation,
                  deferred=self.scope.deferred)  # fmt: skip
        if isinstance(node.ctx, ast.Load):
            self.scope.loads.append(ref)
        else:
            self.scope.bound.add(node.id)
            self.scope.stores.append(Ref(node.id, ref.line, ref.col, store=True))

    def visit_Constant(self, node: ast.Constant) -> None:
        # names in string annotations ("Quote"): imported for completeness, never renamed
        if self.annotation and isinstance(node.value, str):
            try:
                names = [n.id for n in ast.walk(ast.parse(node.value, mode="eval"))
                         if isinstance(n, ast.Name)]  # fmt: skip
            except SyntaxError:
                return
            self.scope.loads += [Ref(n, node.lineno, -1, annotation=True,
                                     deferred=self.scope.deferred) for n in names]  # fmt: skip

    def _arguments(self, args: ast.arguments) -> set[str]:
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        for arg in filter(None, every):
            self._annotate(arg.annotation)
        return {arg.arg for arg in filter(None, every)}

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
        body: list = []
        for i, gen in enumerate(generators):
            body += [gen.target, *([gen.iter] if i else []), *gen.ifs]
        self._enter("comprehension", set(), body + results)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope  # := binds in the enclosing function, not the comprehension
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        scope.bound.add(node.target.id)
        col = self._col(node.target)
        scope.stores.append(Ref(node.target.id, node.target.lineno, col, store=True))

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared.update(node.names)
        for name in node.names:
            self.scope.stores.append(Ref(name, node.lineno, -1, store=True, global_stmt=True))

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocals.update(node.names)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.scope.bound |= {a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"}

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.AST) -> None:
        name = getattr(node, "name", None) or getattr(node, "rest", None)  # also match patterns
        if name:
            self.scope.bound.add(name)
        self.generic_visit(node)

    visit_MatchAs = visit_MatchStar = visit_MatchMapping = visit_ExceptHandler

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotate(node.annotation)
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)


def scan(source: Source, *, stores: bool = False) -> list[Ref]:
    """Every use of a global name in ``source`` (and stores to ``global`` names), in order;
    with ``stores``, also the names a top-level statement binds (to rename them)."""
    scanner = _Scanner(source.text.splitlines())
    scanner.visit(source.tree)
    refs: list[Ref] = []
    for scope in scanner.scopes:
        refs += [r for r in scope.loads if scope.is_global(r.name)]
        refs += [r for r in scope.stores if scope.kind != "module" and r.name in scope.declared]
        if stores and scope.kind == "module":
            refs += scope.stores
    return sorted(refs, key=lambda r: (r.line, r.col))


def _names_after(text: str, line: int, keyword: str) -> list[tuple[int, int, str]]:
    """(line, col, name) of the NAME tokens after ``keyword`` on ``line`` of ``text``."""
    found, seen = [], False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.start[0] > line:
            break
        if tok.start[0] == line and tok.type == tokenize.NAME:
            if seen:
                found.append((line, tok.start[1], tok.string))
            seen = seen or tok.string == keyword
    return found


def rewrite(source: Source, refs: list[Ref], renames: dict[str, str], drop: list[range]) -> str:
    """``source``'s text with global ``renames`` applied and the lines in ``drop`` removed.

    Only the tokens that are the global (see :func:`scan`) change: attributes, keyword arguments
    and locals of the same name stay as they are.
    """
    lines = source.text.splitlines()
    edits = {(r.line, r.col, r.name) for r in refs if r.name in renames and r.col >= 0}
    for ref in refs:
        if ref.global_stmt and ref.name in renames:
            edits |= {e for e in _names_after(source.text, ref.line, "global") if e[2] == ref.name}
    node = source.node
    if source.is_def and node.name in renames:
        keyword = "class" if isinstance(node, ast.ClassDef) else "def"
        edits |= set(_names_after(source.text, node.lineno, keyword)[:1])
    for line, col, old in sorted(edits, reverse=True):
        text = lines[line - 1]
        if text[col : col + len(old)] != old:  # never corrupt code; this would be a krtlab bug
            raise CaptureError(f"internal error renaming {old!r} at {source.where(line)}")
        lines[line - 1] = text[:col] + renames[old] + text[col + len(old) :]
    return "\n".join(t for i, t in enumerate(lines, 1) if not any(i in r for r in drop)).rstrip()
