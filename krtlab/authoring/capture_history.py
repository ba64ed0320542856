"""What a notebook (or script) ran, in order: the history source capture reads (internal).

A :class:`History` lists the top-level statements of a module's code in the order they ran: the
cells of a Jupyter kernel by execution count (IPython keeps every cell's text in
:mod:`linecache`), or the statements of a script's file. Capture asks it which statement bound a
name last (:meth:`History.binding`), what a name was bound to when an earlier statement ran, and
which later statements may have changed the object (:meth:`History.changes`: ``TOK.lower =
False``, ``MODEL.fit(X, y)``, ``ITEMS.append(x)``).

A binding is *single* when one statement made the value on its own (``X = ...``, ``def``,
``class``, ``import``); a name bound in a loop, a ``with`` or ``try`` block, by ``+=`` or by a
walrus has no single statement (its value may still be re-created from the value itself).
"""

from __future__ import annotations

import ast
import functools
import linecache
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from krtlab.authoring.capture_source import _cell_numbers, _parse, location

__all__ = ["END", "Binding", "Change", "History", "Statement", "history_of"]

#: A position after every statement: "now".
END = (sys.maxsize, sys.maxsize)

# kinds of binding
ASSIGN, DEF, CLASS, IMPORT, COMPOUND, AUGMENTED, DELETED = (
    "assign", "def", "class", "import", "compound", "augmented", "deleted"
)  # fmt: skip
SINGLE = frozenset({ASSIGN, DEF, CLASS, IMPORT})

_COMPOUND = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)
_COMPOUND += tuple(getattr(ast, n) for n in ("TryStar", "Match") if hasattr(ast, n))
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
#: functions that change their first argument in place
_IN_PLACE_FUNCS = frozenset({"setattr", "delattr", "shuffle"})


@dataclass(frozen=True)
class Unit:
    """One cell (or one file) of code."""

    filename: str
    lines: tuple[str, ...]
    tree: ast.Module = field(repr=False, compare=False)


@dataclass(frozen=True)
class Statement:
    """A top-level statement and its place in the history."""

    pos: tuple[int, int]  # (unit number, statement number): the order things ran
    node: ast.stmt = field(repr=False, compare=False)
    unit: Unit = field(repr=False, compare=False)
    last_in_unit: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.unit.filename, self.pos[1])

    def where(self, line: int | None = None) -> str:
        """``cell In[5], line 3``: where the statement (or its ``line``) is."""
        return location(self.unit.filename, line or self.node.lineno)

    def text(self) -> tuple[str, int]:
        """(source, first line): the statement's lines with the comment lines right above it,
        or only its own characters when it shares a line with another statement."""
        node, lines = self.node, self.unit.lines
        end = node.end_lineno or node.lineno
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        shared = any(
            other is not node
            and (other.end_lineno or other.lineno) >= start
            and other.lineno <= end
            for other in self.unit.tree.body
        )
        if shared:
            segment = ast.get_source_segment("".join(lines), node) or ""
            return segment + "\n", node.lineno
        while start > 1 and lines[start - 2].startswith("#"):  # comments above, not indented
            start -= 1
        return "".join(lines[start - 1 : end]).rstrip() + "\n", start


@dataclass(frozen=True)
class Binding:
    """A statement that bound ``name``, and how (:data:`ASSIGN`, :data:`DEF`, ...)."""

    name: str
    kind: str
    stmt: Statement

    @property
    def single(self) -> bool:
        return self.kind in SINGLE


@dataclass(frozen=True)
class Change:
    """A statement that may change the object bound to a name in place.

    ``kind`` is ``"store"`` (``X.a = 1``, ``X[k] = v``, ``del X.a``, ``setattr(X, ...)``) or
    ``"call"`` (``X.m(...)`` / ``X.a.m(...)``: ``path`` holds the attributes before the method,
    ``method`` its name); ``shown`` is set for a call that is the last expression of a cell
    (Jupyter displays its result, so it was called to look at, not for its effect).
    """

    kind: str
    stmt: Statement
    line: int
    path: tuple[str, ...] = ()
    method: str = ""
    keywords: frozenset[str] = frozenset()
    inplace: bool = False
    shown: bool = False
    discarded: bool = False

    def where(self) -> str:
        return self.stmt.where(self.line)


def _root(expr: ast.expr) -> tuple[str | None, tuple[str, ...]]:
    """``a.b.c`` -> ("a", ("b", "c")); subscripts count as a step without a name."""
    path: list[str] = []
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        if isinstance(expr, ast.Attribute):
            path.insert(0, expr.attr)
        expr = expr.value
    return (expr.id, tuple(path)) if isinstance(expr, ast.Name) else (None, ())


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _walk_here(node: ast.AST) -> Iterator[ast.AST]:
    """Every node of a top-level statement that runs when the statement runs: not the bodies
    of functions, classes or lambdas it defines (their names do bind, though)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if isinstance(current, _SCOPES):  # it binds its name; only its header runs now
            todo += getattr(current, "decorator_list", [])
            todo += getattr(current, "bases", []) + [
                k.value for k in getattr(current, "keywords", [])
            ]
            args = getattr(current, "args", None)
            if isinstance(args, ast.arguments):
                todo += [d for d in [*args.defaults, *args.kw_defaults] if d is not None]
            continue
        todo += ast.iter_child_nodes(current)


def _bound_names(stmt: ast.stmt) -> dict[str, str]:
    """Names a top-level statement binds, with the kind of binding."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return {stmt.name: DEF}
    if isinstance(stmt, ast.ClassDef):
        return {stmt.name: CLASS}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name.split(".")[0]): IMPORT for a in stmt.names if a.name != "*"}
    found: dict[str, str] = {}
    if isinstance(stmt, ast.Assign):
        found = {n: ASSIGN for t in stmt.targets for n in _target_names(t)}
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        found = {n: ASSIGN for n in _target_names(stmt.target)}
    elif isinstance(stmt, ast.AugAssign):
        found = {n: AUGMENTED for n in _target_names(stmt.target)}
    elif isinstance(stmt, ast.Delete):
        found = {n: DELETED for t in stmt.targets for n in _target_names(t)}
    compound = isinstance(stmt, _COMPOUND)
    for node in _walk_here(stmt):
        names: list[str] = []
        if isinstance(node, ast.NamedExpr):
            names = [node.target.id]
        elif compound and node is not stmt:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"]
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names = [node.id]
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names = [node.name]
            elif type(node).__name__ in ("MatchAs", "MatchStar") and node.name:  # type: ignore[attr-defined]
                names = [node.name]  # type: ignore[attr-defined]
        for name in names:
            found.setdefault(name, COMPOUND)
    if compound:
        found = dict.fromkeys(found, COMPOUND)
    return found


def _changes(stmt: Statement, cell: bool) -> Iterator[tuple[str, Change]]:
    """(name, change) for every in-place change a top-level statement makes to a global
    (``cell``: the statement is in a Jupyter cell, whose last expression is shown)."""
    node = stmt.node
    effects = {id(s.value) for s in _walk_here(node) if isinstance(s, ast.Expr)}
    for sub in _walk_here(node):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign):
            targets = list(sub.targets)
        elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
            targets = [sub.target]
        elif isinstance(sub, ast.Delete):
            targets = list(sub.targets)
        elif isinstance(sub, (ast.For, ast.AsyncFor, ast.comprehension)):
            targets = [sub.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)) and not isinstance(
                    getattr(part, "ctx", None), ast.Load
                ):
                    name, path = _root(part)
                    if name is not None:
                        yield name, Change("store", stmt, part.lineno, path)
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        keywords = frozenset(k.arg for k in sub.keywords if k.arg)
        inplace = any(
            k.arg == "inplace" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in sub.keywords
        )
        if isinstance(func, ast.Attribute):
            name, path = _root(func.value)
            if name is not None:
                shown = (
                    stmt.last_in_unit and isinstance(node, ast.Expr) and node.value is sub and cell
                )
                yield name, Change("call", stmt, sub.lineno, path, func.attr, keywords, inplace,
                                   bool(shown), id(sub) in effects)  # fmt: skip
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in _IN_PLACE_FUNCS and sub.args:
            name, path = _root(sub.args[0])
            if name is not None:
                yield name, Change("store", stmt, sub.lineno, path)


class History:
    """The top-level statements of some code units, in the order they ran."""

    def __init__(self, units: list[Unit]) -> None:
        self._bindings: dict[str, list[Binding]] = {}
        self._changes: dict[str, list[Change]] = {}
        self._stars: list[tuple[Statement, str]] = []
        self._by_file = {unit.filename: (u, unit) for u, unit in enumerate(units)}
        cells = set(_cell_numbers())
        for u, unit in enumerate(units):
            body = unit.tree.body
            for i, node in enumerate(body):
                stmt = Statement((u, i), node, unit, i == len(body) - 1)
                for name, kind in _bound_names(node).items():
                    self._bindings.setdefault(name, []).append(Binding(name, kind, stmt))
                for name, change in _changes(stmt, unit.filename in cells):
                    self._changes.setdefault(name, []).append(change)
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    if any(a.name == "*" for a in node.names):
                        self._stars.append((stmt, node.module))

    def binding(self, name: str, before: tuple[int, int] = END) -> Binding | None:
        """The last statement that bound ``name`` before position ``before`` (None if none)."""
        found = None
        for b in self._bindings.get(name, ()):
            if b.stmt.pos < before:
                found = b
            else:
                break
        return found

    def changes(
        self, name: str, after: tuple[int, int], before: tuple[int, int] = END
    ) -> list[Change]:
        """Statements between two positions that may change ``name``'s object in place."""
        return [c for c in self._changes.get(name, ()) if after < c.stmt.pos < before]

    def star_modules(self, before: tuple[int, int] = END) -> list[str]:
        """Modules imported with ``from m import *`` before ``before``, latest first."""
        return [m for s, m in reversed(self._stars) if s.pos < before]

    def statement_at(self, filename: str, line: int) -> Statement | None:
        """The top-level statement of ``filename`` that spans ``line``."""
        found = self._by_file.get(filename)
        if found is not None:
            u, unit = found
            for i, node in enumerate(unit.tree.body):
                first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                if first <= line <= (node.end_lineno or node.lineno):
                    return Statement((u, i), node, unit, i == len(unit.tree.body) - 1)
        return None


def _unit(filename: str) -> Unit | None:
    lines = linecache.getlines(filename)
    tree = _parse("".join(lines))  # no lines (a cell gone from the cache): nothing bound there
    return Unit(filename, tuple(lines), tree) if tree is not None else None


@functools.lru_cache(maxsize=32)
def _history(files: tuple[tuple[str, int], ...]) -> History:
    units = [u for u in (_unit(f) for f, _ in files) if u is not None]
    return History(units)


def history_of(namespace: Mapping[str, Any]) -> History | None:
    """The history of the module whose globals are ``namespace``: its file when it has one,
    else (a Jupyter kernel's ``__main__``) the cells by execution count; None if neither."""
    path = namespace.get("__file__")
    if isinstance(path, str) and linecache.getlines(path, namespace):  # type: ignore[arg-type]
        return _history(((path, hash(tuple(linecache.getlines(path)))),))
    if namespace.get("__name__") != "__main__":
        return None
    cells = sorted(_cell_numbers().items(), key=lambda item: item[1])
    if not cells:
        return None
    # a cell that runs gets a new filename; a file's key changes with its text
    return _history(tuple((f, hash(tuple(linecache.getlines(f)))) for f, _ in cells))


#: calls that read a file: the object they make stays behind with the notebook's files
_READERS = frozenset({
    "open", "read_csv", "read_table", "read_parquet", "read_json", "read_excel", "read_feather",
    "read_pickle", "read_hdf", "read_fwf", "read_orc", "read_sas", "read_spss", "read_stata",
    "read_xml", "load", "safe_load", "full_load", "unsafe_load", "loadtxt", "genfromtxt",
    "fromfile", "read_text", "read_bytes", "load_model", "load_workbook", "imread", "load_npz",
})  # fmt: skip


def reads_files(node: ast.stmt, folders: list[str]) -> str | None:
    """What in a statement reads a file when it runs: ``pd.read_csv(...)``, ``open(...)``, or a
    string naming a file that exists (relative to ``folders``, or absolute); else None."""
    import os

    for sub in _walk_here(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _READERS:
                return f"{ast.unparse(func)}(...)"
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            text = sub.value
            if len(text) > 400 or "\n" in text:  # text, not a file name
                continue
            # isfile() is False for "" and for what no file can be called (NUL, too long);
            # join() keeps an absolute path as it is
            if any(os.path.isfile(os.path.join(base, text)) for base in folders):
                return repr(text)
    return None
