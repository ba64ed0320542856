"""Capture a node's functions as standalone Python source.

:func:`capture` takes the node's handler (and init) function, defined in Jupyter cells or ordinary
modules, and collects exactly what a standalone ``main.py`` needs, and nothing else:

* the functions' own source, and the imports, helper functions and classes they use
  (transitively);
* a global whose value is a plain literal (numbers, strings, lists, dicts ...) as its value, so
  later changes to it are kept;
* any other global as **the user's own statement that bound it last** (``WORD =
  re.compile(...)``, ``log = logging.getLogger(...)``, ``TOK = Tokenizer.default()``), with what
  that statement needs in turn, in the order the notebook ran it (a constant redefined after a
  statement used it is emitted before and after that statement);
* when no single statement made the value (a loop, a ``with`` block, ``+=``, ``exec``, a cell
  gone from history), the value written back as source where it has an exact form
  (:mod:`~krtlab.authoring.capture_values`);
* local modules it imports (a ``utils.py`` beside the notebook): their names, so that their
  files travel into the node's folder (:mod:`~krtlab.authoring.local_modules`).

What cannot be re-created faithfully is refused with a :class:`~krtlab.errors.CaptureError` that
names the node, the name, the cell (or file) and line, and what to do instead: open files,
sockets and generators, objects made by reading a file beside the notebook, objects a later
cell changed in place (``TOK.lower = False``, ``MODEL.fit(X, y)``), krtlab objects, and anything
made from those.

Importing this module does not import IPython.
"""

from __future__ import annotations

import ast
import builtins
import heapq
import inspect
import io
import itertools
import os
import re
import sys
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from krtlab.authoring.capture_history import (
    CLASS,
    DEF,
    IMPORT,
    Binding,
    History,
    Statement,
    history_of,
    reads_files,
)
from krtlab.authoring.capture_source import (
    Ref,
    Source,
    class_source,
    function_source,
    location,
    rewrite,
    scan,
    statement_source,
)
from krtlab.authoring.capture_values import is_builtin, live_reason, may_change, value_source
from krtlab.authoring.handler_py import (
    ImportLine,
    import_group,
    literal_source,
    proto_import,
    render_imports,
)
from krtlab.errors import CaptureError

__all__ = ["RESERVED", "RUNNER_MODULES", "Captured", "capture"]

#: Entry points the kre-py runner looks up by name: user code must not define them by accident.
RESERVED = ("handler", "init")
#: Modules the kre-py runner's own files shadow (its src/ comes first on sys.path).
RUNNER_MODULES = frozenset({"config", "context", "kre_runner", "main", "kre_nats_msg_pb2"})
_DUNDERS = {"__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__"}
_LITERALS = {type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset}
_MAX_LITERAL = 100_000  # characters; bigger data belongs in an asset file
_PUBLIC_ALIASES = {"posix": "os", "nt": "os", "posixpath": "os.path", "ntpath": "os.path"}
_HINT = (
    "load it in init(ctx) with ctx.set(...) and read it with ctx.get(...), or attach the file as "
    "an asset and read it with ctx.path(...)"
)
_NOWHERE = (-1, -1)  # the position of what no statement made


@dataclass(frozen=True)
class Captured:
    """What a standalone node module needs, as collected by :func:`capture`.

    Attributes:
        node: the node name (for messages).
        definitions: source blocks in the order they must run: constants and statements, the
            helper functions and classes, then the roots; dedented, with krtlab decorators
            removed and reserved names renamed.
        names: each emitted function, class or statement-made name -> where it was defined.
        roots: the emitted names of the roots, in the order given to :func:`capture`.
        where: where the first root was defined (``cell In[5], line 1``, ``nodes.py, line 3``).
        local_modules: top-level names of the local modules imported (shipped with the node).
        origins: for each block, where each of its lines came from (``cell In[4], line 2``;
            empty for lines krtlab wrote, such as a constant's value).
    """

    node: str
    definitions: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    where: str = ""
    local_modules: frozenset[str] = frozenset()
    origins: tuple[tuple[str, ...], ...] = ()
    _records: frozenset[ImportLine] = field(default=frozenset(), repr=False)
    _extra: dict = field(default_factory=dict, repr=False, compare=False)  # import_name_for's

    def _groups(self) -> list[list[ImportLine]]:
        records = sorted({*self._records, *self._extra.values()})
        return [[r for r in records if import_group(r.module) == g] for g in range(4)]

    @property
    def imports(self) -> tuple[str, ...]:
        """Import statements, deduplicated and sorted: ``__future__``, stdlib, third party, then
        the ``*_pb2`` modules; includes those added by :meth:`import_name_for`."""
        return tuple(line for group in self._groups() for line in render_imports(group))

    @property
    def modules(self) -> frozenset[str]:
        """Top-level modules imported, apart from ``__future__`` and the ``*_pb2`` files."""
        groups = self._groups()
        return frozenset(r.module.split(".")[0] for r in groups[1] + groups[2])

    @property
    def protos(self) -> frozenset[str]:
        """The ``*_pb2`` modules imported (they must sit beside ``main.py``)."""
        return frozenset(r.module for r in self._groups()[3])

    def import_block(self) -> str:
        """The imports as text, a blank line between groups (PEP 8)."""
        return "\n\n".join("\n".join(render_imports(g)) for g in self._groups() if g)

    def _add(self, module: str, attr: str, preferred: str) -> str:
        taken = {r.bound for r in {*self._records, *self._extra.values()}} | set(RESERVED)
        taken |= _identifiers(self.definitions)
        name = _fresh(preferred, taken)
        alias = "" if name == (attr or module) else name
        self._extra[(module, attr)] = ImportLine(module, attr, alias)
        return name

    def import_name_for(self, cls: Any) -> str:
        """The expression that names message class ``cls`` in the generated module.

        Reuses an import of the class or of its ``_pb2`` namespace (``pb.Request``), else adds
        ``from <x>_pb2 import <Name>`` (aliased if the name is taken) to :attr:`imports`.
        Nested types are reached through their top-level class (``Request.Item``).

        Raises:
            CaptureError: if ``cls`` is not a protobuf message class or enum wrapper.
        """
        found = proto_import(cls)
        if found is None:
            message = f"node {self.node!r}: {cls!r} is not a protobuf message class"
            raise CaptureError(message, node=self.node)
        module, top, path = found
        records = {*self._records, *self._extra.values()}
        base = next((r.bound for r in records if (r.module, r.attr) == (module, top)), None)
        space = next((r.bound for r in records if (r.module, r.attr) == (module, "")), None)
        if base is None:
            base = f"{space}.{top}" if space else self._add(module, top, top)
        return ".".join([base, *path])

    def module_name_for(self, module: str) -> str:
        """The name of ``module`` in the generated module, adding ``import module`` if needed."""
        records = {*self._records, *self._extra.values()}
        found = next((r.bound for r in records if (r.module, r.attr) == (module, "")), None)
        return found or self._add(module, "", module.rsplit(".", 1)[-1])


def _identifiers(texts: Iterable[str]) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", "\n".join(texts)))


def _fresh(base: str, taken: set[str]) -> str:
    return next(n for n in [base, *(f"{base}_{i}" for i in range(2, 999))] if n not in taken)


def _attr(obj: Any, name: str) -> Any:
    try:  # user objects may raise anything from __getattr__ (proxies, mocks, lazy loaders)
        return getattr(obj, name, None)
    except Exception:
        return None


def _shadows_builtin(name: str, value: Any) -> bool:
    """IPython puts wrappers over some builtins into the user namespace (``open`` warns about
    stdin/stdout file descriptors); exported code must keep using the builtin itself."""
    builtin = getattr(builtins, name, None)
    if builtin is None:
        return False
    # functools.wraps copies __module__ ("io"), so recognise the wrapper by what it wraps
    return value is builtin or getattr(value, "__wrapped__", None) is builtin


def _is_krtlab(obj: Any) -> bool:
    own = _attr(obj, "__name__" if isinstance(obj, ModuleType) else "__module__")
    kind = type(obj).__module__
    return any(isinstance(n, str) and n.split(".")[0] == "krtlab" for n in (own, kind))


def _namespace(fn: Any) -> Mapping[str, Any]:
    """What a function's names refer to: its closure (a def inside a function), then globals."""
    cells = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            cells[name] = cell.cell_contents
        except ValueError:  # not assigned (yet)
            continue
    return ChainMap(cells, fn.__globals__) if cells else fn.__globals__


def _globals(ns: Mapping[str, Any]) -> Mapping[str, Any]:
    return ns.maps[-1] if isinstance(ns, ChainMap) else ns


def _exportable_def(obj: Any) -> bool:
    """Top-level functions/classes, and functions defined inside functions (closures);
    not methods or classes defined in a function (their source cannot stand alone)."""
    parts = obj.__qualname__.split(".")
    return len(parts) == 1 or (inspect.isfunction(obj) and parts[-2] == "<locals>")


def _base_name(expr: ast.expr) -> str | None:
    """The name a decorator expression starts from: @v.node(name="x") -> v."""
    while not isinstance(expr, ast.Name):
        expr = getattr(expr, "func", None) or getattr(expr, "value", None)
        if expr is None:
            return None
    return expr.id


def _plain(fn: Any) -> Any:
    """The user's function behind a krtlab node wrapper, else ``fn`` itself."""
    inner = _attr(fn, "__wrapped__")
    return inner if _attr(fn, "__krt_node__") and inner is not None else fn


def _snippet(stmt: Statement) -> str:
    text = ast.unparse(stmt.node).splitlines()[0] if stmt.node else ""
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(eq=False)
class _Item:
    """One piece of the module: ``NAME = value``, a statement, or a def/class block."""

    key: tuple
    kind: str  # "const" | "value" | "stmt" | "def"
    names: tuple[str, ...]
    pos: tuple[int, int]
    text: str = ""  # the expression of a const/value item
    source: Source | None = None
    refs: list[Ref] = field(default_factory=list)
    drop: list[range] = field(default_factory=list)
    needs: set[tuple] = field(default_factory=set)  # items that must run before this one
    calls: list[tuple[str, Mapping[str, Any], str]] = field(default_factory=list)  # deferred uses
    obj: Any = None
    root: bool = False


class _Capturer:
    """One capture: resolves each name a node needs to an item, then orders the items."""

    def __init__(self, node: str, roots: Sequence[Any], keep: Sequence[Any]) -> None:
        self.node = node
        self.roots = [self._root(r) for r in roots]
        self.keep = {("def", id(_plain(k))) for k in keep}
        self.home = {r.__module__: r.__globals__ for r in reversed(self.roots)}
        self.items: dict[tuple, _Item] = {}
        self.bound: dict[str, tuple] = {}  # name the module uses at run time -> what it is
        self.first_use: dict[str, str] = {}
        self.records: set[ImportLine] = {ImportLine("__future__", "annotations")}
        self.local: set[str] = set()
        self.uses: list[tuple[tuple, str, tuple]] = []  # (user, name, item used), import time
        self._histories: dict[int, History | None] = {}
        self._closures: set[tuple[tuple, tuple[int, int]]] = set()
        # roots krtlab handed over undecorated: their decorators returned them as they were
        self.plain_roots = {id(_plain(r)) for r in roots if inspect.isfunction(_plain(r))}

    def _root(self, root: Any) -> Any:
        fn = _plain(root)
        fn = inspect.unwrap(fn) if callable(fn) and not inspect.isfunction(fn) else fn
        if not inspect.isfunction(fn) or fn.__name__ == "<lambda>" or not _exportable_def(fn):
            name = _attr(fn, "__name__") or ""
            raise CaptureError(
                f"node {self.node!r}: {root!r} must be a function defined with def "
                "at the top level of a cell or module",
                node=self.node,
                name=name,
            )
        return fn

    # -- errors and names -----------------------------------------------------------------------

    def _error(self, name: str, where: str, what: str, at: str = "") -> CaptureError:
        message = f"cannot export {name!r}, used by node {self.node!r} ({where}): {what}"
        return CaptureError(message, node=self.node, name=name, where=at or where, reason=what)

    def _claim(self, name: str, key: tuple, where: str) -> None:
        self.first_use.setdefault(name, where)
        if self.bound.setdefault(name, key) != key:
            raise self._error(
                name, where, "the exported module would need this name for two different "
                f"objects (also used at {self.first_use[name]}); rename one of them",
            )  # fmt: skip

    def _history(self, ns: Mapping[str, Any]) -> History | None:
        g = _globals(ns)
        if id(g) not in self._histories:
            self._histories[id(g)] = history_of(g)
        return self._histories[id(g)]

    # -- the whole capture ----------------------------------------------------------------------

    def run(self) -> Captured:
        for root in self.roots:
            self._define(root, root=True)
        processed: set[tuple] = set()
        while len(processed) < len(self.items):  # closures may add items (earlier bindings)
            for item in [i for i in self.items.values() if i.key not in processed]:
                processed.add(item.key)
                self._call_closure(item)
        order = self._order()
        renames = self._renames()
        blocks: list[str] = []
        origins: list[tuple[str, ...]] = []
        names: dict[str, str] = {}
        lines: list[str] = []  # consecutive one-statement items share a block
        where: list[str] = []
        for item in order:
            text = self._render(item, renames)
            came = self._origins(item, text)
            if item.source is not None:
                names.update({renames.get(n, n): item.source.where() for n in item.names})
            if item.kind == "def":
                if lines:
                    blocks.append("\n".join(lines))
                    origins.append(tuple(where))
                    lines, where = [], []
                blocks.append(text)
                origins.append(came)
            else:
                lines.append(text)
                where += came
        if lines:
            blocks.append("\n".join(lines))
            origins.append(tuple(where))
        roots = [self.items[("def", id(r))] for r in self.roots]
        records = {r._replace(alias=renames.get(r.bound, r.alias)) for r in self.records}
        return Captured(
            node=self.node,
            definitions=tuple(blocks),
            names=names,
            roots=tuple(renames.get(r.names[0], r.names[0]) for r in roots),
            where=roots[0].source.where() if roots[0].source else "",
            local_modules=frozenset(self.local),
            origins=tuple(origins),
            _records=frozenset(records),
        )

    @staticmethod
    def _origins(item: _Item, text: str) -> tuple[str, ...]:
        """Where each line of an item's text came from ("" where nothing does)."""
        count = len(text.splitlines())
        source = item.source
        if source is None:
            return ("",) * count
        kept = [
            source.where(i)
            for i in range(1, len(source.text.splitlines()) + 1)
            if not any(i in r for r in item.drop)
        ]
        return tuple((kept + [""] * count)[:count])

    def _renames(self) -> dict[str, str]:
        taken = set(self.bound)
        taken |= _identifiers(i.source.text for i in self.items.values() if i.source)
        renames: dict[str, str] = {}
        for name in RESERVED:
            keys = {i.key for i in self.items.values() if name in i.names}
            keys |= {self.bound[name]} if name in self.bound else set()
            if keys and not keys <= self.keep:
                renames[name] = _fresh(f"user_{name}", taken)
        return renames

    def _render(self, item: _Item, renames: dict[str, str]) -> str:
        if item.kind in ("const", "value"):
            return f"{renames.get(item.names[0], item.names[0])} = {item.text}"
        assert item.source is not None
        return rewrite(item.source, item.refs, renames, item.drop)

    def _order(self) -> list[_Item]:
        """Every item after what it needs; a name bound twice in the order the notebook bound
        it, and what used the first binding before the second; otherwise constants first, then
        the notebook's order, the roots last."""
        items = list(self.items.values())
        seq = {item.key: i for i, item in enumerate(items)}
        before: dict[tuple, set[tuple]] = {i.key: {k for k in i.needs if k in seq} for i in items}
        binders: dict[str, list[_Item]] = {}
        for item in items:
            for name in item.names:
                binders.setdefault(name, []).append(item)
        for group in binders.values():
            group.sort(key=lambda i: (i.pos, i.kind in ("const", "value"), seq[i.key]))
            for a, b in itertools.pairwise(group):
                before[b.key].add(a.key)
        for user, name, used in self.uses:
            u, d = self.items[user], self.items[used]
            for later in binders.get(name, ()):
                if later is not d and later.pos > d.pos and later is not u and u.pos < later.pos:
                    before[later.key].add(user)
        for key in before:
            before[key].discard(key)

        def rank(item: _Item) -> tuple:
            kind = 2 if item.root else 0 if item.kind == "const" else 1
            return (kind, item.pos, seq[item.key])

        done: list[_Item] = []
        placed: set[tuple] = set()
        waiting = {i.key: i for i in items}
        ready = [(rank(i), i.key) for i in items if not before[i.key]]
        heapq.heapify(ready)
        while waiting:
            if not ready:  # a cycle (functions calling each other at import): notebook order
                best = min(waiting.values(), key=rank)
                ready.append((rank(best), best.key))
            _, key = heapq.heappop(ready)
            if key not in waiting:
                continue
            done.append(waiting.pop(key))
            placed.add(key)
            for other in list(waiting.values()):
                if key in before[other.key] and before[other.key] <= placed:
                    heapq.heappush(ready, (rank(other), other.key))
        return done

    # -- functions and classes ------------------------------------------------------------------

    def _define(
        self, obj: Any, used_at: str = "", *, root: bool = False, source: Source | None = None
    ) -> tuple:
        """Capture a function or class of the node's own module, and what it uses."""
        key = ("def", id(obj))
        if key in self.items:  # also ends recursion
            return key
        try:
            if source is None:
                source = function_source(obj) if inspect.isfunction(obj) else class_source(obj)
            ns = _namespace(obj) if inspect.isfunction(obj) else self.home[obj.__module__]
        except CaptureError as exc:  # say which node needs it, and where
            used = f", used at {used_at}" if used_at else ""
            where = exc.where or used_at
            raise CaptureError(f"node {self.node!r}: {exc}{used}", node=self.node, name=exc.name,
                               where=where, reason=str(exc)) from None  # fmt: skip
        decorators = [d for d in source.node.decorator_list if self._drop_decorator(obj, d, ns)]
        drop = [range(d.lineno, (d.end_lineno or d.lineno) + 1) for d in decorators]
        free = set(getattr(getattr(obj, "__code__", None), "co_freevars", ()))
        nonlocals = [n for n in ast.walk(source.node) if isinstance(n, ast.Nonlocal)]
        shared = free & {name for n in nonlocals for name in n.names}
        if shared:  # a module-level copy could not write back into the enclosing function
            raise self._error(", ".join(sorted(shared)), source.where(), "it is assigned with "
                              "nonlocal; keep such state in ctx.set(...) or a global")  # fmt: skip
        refs = [r for r in scan(source) if not any(r.line in lines for lines in drop)]
        history = self._history(ns)
        line = (
            source.first_line
            + min([source.node.lineno, *(d.lineno for d in source.node.decorator_list)])
            - 1
        )
        stmt = history.statement_at(source.filename, line) if history else None
        pos = stmt.pos if stmt is not None else _NOWHERE
        item = _Item(key, "def", (source.name,), pos, source=source, refs=refs, drop=drop,
                     obj=obj, root=root)  # fmt: skip
        self.items[key] = item
        self._claim(source.name, key, source.where())
        self._resolve_refs(item, ns, pos)
        return key

    def _resolve_refs(self, item: _Item, ns: Mapping[str, Any], pos: tuple[int, int]) -> None:
        """Resolve the names an item uses: those used while it runs (a statement, a class
        body, decorators) as they were at ``pos``; those used inside functions as they are
        now, remembered for statements that call those functions."""
        source = item.source
        assert source is not None
        uses: dict[tuple[str, bool], list[Ref]] = {}
        for ref in (r for r in item.refs if not r.store):
            uses.setdefault((ref.name, ref.deferred), []).append(ref)
        for (name, deferred), loads in uses.items():
            runtime = [r for r in loads if not r.annotation]
            where = source.where((runtime or loads)[0].line)
            if deferred:
                self._resolve(name, ns, where, annotation_only=not runtime)
                if runtime:
                    item.calls.append((name, ns, where))
            else:
                used = self._resolve(name, ns, where, at=pos if pos != _NOWHERE else None,
                                     annotation_only=not runtime, user=item.key)  # fmt: skip
                if used is not None and runtime:
                    item.needs.add(used)

    def _call_closure(self, item: _Item) -> None:
        """What runs while an item runs (a statement, a class body, decorators) may call
        functions: what those use must come first too, as it was at that moment."""
        at = item.pos if item.pos != _NOWHERE else None
        calls = list(item.calls) if item.kind == "stmt" else []  # lambdas it may call
        todo = [k for k in item.needs if k in self.items and self.items[k].kind == "def"]
        seen: set[tuple] = set()
        while calls or todo:
            if not calls:
                fn = self.items[todo.pop()]
                if fn.key not in seen:
                    seen.add(fn.key)
                    calls += fn.calls
                continue
            name, ns, where = calls.pop()
            used = self._resolve(name, ns, where, at=at, user=item.key)
            if used is not None and used != item.key:
                item.needs.add(used)
                if self.items[used].kind == "def":
                    todo.append(used)

    def _drop_decorator(self, obj: Any, expr: ast.expr, ns: Mapping[str, Any]) -> bool:
        """krtlab's decorators (@v.node(...), @greet.init) have no place on the runner."""
        name = _base_name(expr)
        if name is None:
            return False
        if name not in ns and id(obj) in self.plain_roots and "." in obj.__qualname__:
            # a def inside a function: its decorators used the function's locals, gone now;
            # krtlab got the function itself, so they only registered it (krtlab's do)
            return True
        value = ns.get(name)
        return _is_krtlab(value) or bool(_attr(value, "__krt_node__"))

    # -- names ------------------------------------------------------------------------------------

    def _resolve(
        self,
        name: str,
        ns: Mapping[str, Any],
        where: str,
        *,
        at: tuple[int, int] | None = None,
        annotation_only: bool = False,
        user: tuple | None = None,
    ) -> tuple | None:
        """Capture what ``name`` means in ``ns`` (now, or when the statement at ``at`` ran);
        returns the item that binds it (None for imports and builtins)."""
        if name in _DUNDERS:
            return None  # the runner's module has its own
        if name not in ns:
            bi = ns.get("__builtins__", builtins)
            if name in (bi if isinstance(bi, dict) else vars(bi)) or annotation_only:
                return None  # annotations are never evaluated (from __future__ import annotations)
            message = f"name {name!r} used by node {self.node!r} ({where}) is not defined"
            raise CaptureError(message, node=self.node, name=name, where=where)
        if _shadows_builtin(name, ns[name]):
            return None  # IPython's wrapper over a builtin (its `open`): the runner has the builtin
        closure = isinstance(ns, ChainMap) and name in ns.maps[0]
        history = None if closure else self._history(ns)
        try:
            if history is not None and at is not None:
                then, now = history.binding(name, before=at), history.binding(name)
                if then is not None and now is not None and then.stmt is not now.stmt:
                    key = self._historical(name, then, ns, where)
                    if key is not None and user is not None:
                        self.uses.append((user, name, key))
                    return key
            key = self._bind(name, ns[name], where, ns, history, at)
        except CaptureError as exc:
            if annotation_only and exc.name == name:  # annotations: drop, never evaluated
                return None
            raise
        if key is not None and user is not None:
            self.uses.append((user, name, key))
        return key

    def _historical(self, name: str, binding: Binding, ns: Mapping[str, Any], where: str):
        """``name`` as an earlier statement bound it, for a statement that ran in between."""
        if binding.kind == IMPORT:
            return self._import_statement(name, binding, where, claim=False)
        if not binding.single:
            raise self._error(name, where, (
                f"a statement used it ({where}) before {binding.stmt.where()} changed it, and "
                "krtlab cannot tell what it was then; restart the kernel, run all cells in "
                "order and export again"
            ))  # fmt: skip
        return self._statement(name, binding, ns, where, current=False)

    def _bind(
        self,
        name: str,
        value: Any,
        where: str,
        ns: Mapping[str, Any],
        history: History | None,
        at: tuple[int, int] | None,
    ) -> tuple | None:
        value = _plain(value)
        space = _attr(value, "__krt_pb2_module__") if isinstance(value, ModuleType) else None
        if isinstance(space, str):  # krtlab's stand-in for a generated <stem>_pb2 module
            return self._import(name, space, "", where)
        if isinstance(value, ModuleType) and not _is_krtlab(value):
            module = _PUBLIC_ALIASES.get(value.__name__, value.__name__)  # os.path, not posixpath
            return self._import(name, module, "", where)
        found = proto_import(value)
        if found is not None:
            return self._proto(name, *found, where)
        if _is_krtlab(value):
            raise self._error(
                name, where, "it is a krtlab object, and krtlab is not installed on the runner; "
                "use krtlab names only in annotations (they are never evaluated there)",
            )  # fmt: skip
        binding = history.binding(name) if history is not None else None
        if type(value) in _LITERALS:
            key = self._constant(name, value, where, binding)
            if key is not None:
                return key
        reason = live_reason(value)
        if reason is not None:
            raise self._error(name, where, reason)
        target = value
        made = self._made_by(value, binding)
        if made is not None:  # a decorated def: the def re-applies its decorators
            target = made
        elif not inspect.isfunction(value) and _attr(value, "__wrapped__") is not None:
            try:  # a decorated function (lru_cache...): its def re-applies the decorators
                target = inspect.unwrap(value)
            except ValueError:  # a __wrapped__ cycle
                pass
        own = inspect.isfunction(target) or isinstance(target, type)
        if own and target.__module__ in self.home:
            return self._own(name, target, where, binding, ns)
        public = self._importable(value, history)
        if public is not None:
            return self._import(name, *public, where)
        if binding is not None and binding.kind == IMPORT:
            key = self._import_statement(name, binding, where)
            if key != "unresolved":
                return key
        if binding is not None and binding.kind not in (DEF, CLASS) and binding.single:
            return self._statement(name, binding, ns, where)
        return self._value(name, value, where, binding, history)

    @staticmethod
    def _made_by(value: Any, binding: Binding | None) -> Any:
        """The function a ``def`` statement made, behind the decorators that wrap it."""
        if binding is None or binding.kind != DEF:
            return None
        obj = value
        for _ in range(20):
            code = _attr(obj, "__code__")
            if (
                inspect.isfunction(obj)
                and code.co_name == binding.stmt.node.name
                and code.co_filename == binding.stmt.unit.filename
            ):
                return obj
            obj = _attr(obj, "__wrapped__")
            if obj is None:
                return None
        return None

    def _own(self, name: str, target: Any, where: str, binding: Binding | None, ns) -> tuple:
        """A function or class the notebook (or script) itself made."""
        kind = binding.kind if binding is not None else ""
        if kind in (DEF, CLASS) and binding.stmt.node.name == name:
            source = None
            if kind == CLASS and target.__name__ == name:
                text, first = binding.stmt.text()
                source = statement_source(name, text, binding.stmt.unit.filename, first)
                if not source.is_def:
                    source = None
            key = self._define(target, where, source=source)
            if target.__name__ != name:  # def f ... then f = g? the statement is the def
                self._claim(name, key, where)
            return key
        if binding is not None and binding.single and kind not in (DEF, CLASS):
            return self._statement(name, binding, ns, where)  # Pair = namedtuple(...), h = f
        if inspect.isfunction(target) and target.__name__ == "<lambda>":
            raise self._error(name, where, "it is a lambda made without a single statement "
                              "(in a loop or block); define it with def instead")  # fmt: skip
        if not _exportable_def(target):
            raise self._error(name, where, "it is defined inside a function or class; "
                              "move it to the top level of a cell or module")  # fmt: skip
        key = self._define(target, where)
        self._claim(name, key, where)
        return key

    # -- statements -------------------------------------------------------------------------------

    def _statement(
        self, name: str, binding: Binding, ns: Mapping[str, Any], where: str, *,
        current: bool = True,
    ) -> tuple:  # fmt: skip
        """``name`` as the user's own statement that bound it (``WORD = re.compile(...)``)."""
        stmt = binding.stmt
        key = ("stmt", *stmt.key)
        if current:
            self._check_unchanged(name, ns[name], stmt, where, ns)
            self._claim(name, key, where)
        if key in self.items:
            return key
        made = f"{stmt.where()} (`{_snippet(stmt)}`)"
        reading = reads_files(stmt.node, self._folders(ns))
        if reading is not None:
            raise self._error(name, where, (
                f"it is made by {made}, which reads {reading} from a file beside the notebook; "
                "the runner has no such file. Attach the file with v.asset(\"data/...\", "
                "\"path/here\"), load it in init(ctx) from ctx.path(\"data/...\") and keep it "
                "with ctx.set(...)"
            ), at=stmt.where())  # fmt: skip
        text, first = stmt.text()
        source = statement_source(name, text, stmt.unit.filename, first)
        refs = scan(source, stores=True)
        item = _Item(key, "stmt", tuple(sorted({r.name for r in refs if r.store})), stmt.pos,
                     source=source, refs=refs)  # fmt: skip
        if source.is_def:  # an earlier definition of a function or class
            item.kind = "def"
            item.names = (source.node.name,)
            item.refs = scan(source)
        self.items[key] = item
        try:
            self._resolve_refs(item, ns, stmt.pos)
        except CaptureError as exc:
            if exc.node == self.node and exc.reason and exc.name != name:
                del self.items[key]
                raise self._error(name, where, (
                    f"it is made by {made} from {exc.name!r}, which cannot be exported: "
                    f"{exc.reason}"
                ), at=exc.where) from None  # fmt: skip
            raise
        return key

    def _check_unchanged(
        self, name: str, value: Any, stmt: Statement, where: str, ns: Mapping[str, Any]
    ) -> None:
        """Refuse an object a later statement may have changed in place: re-running the
        statement that made it would give another object."""
        history = self._history(ns)
        if history is None:
            return
        for change in history.changes(name, after=stmt.pos):
            if may_change(value, change, self._class_statement):
                what = ast.unparse(change.stmt.node).splitlines()[0][:60]
                raise self._error(name, where, (
                    f"it is made by {stmt.where()} (`{_snippet(stmt)}`), and {change.where()} "
                    f"may change it afterwards (`{what}`); the runner would only re-run the "
                    "first. Make the change part of the statement that creates it (or do it in "
                    "init(ctx) with ctx.set(...)) and export again"
                ), at=change.where())  # fmt: skip

    def _class_statement(self, cls: type) -> ast.ClassDef | None:
        """The class statement of a class the notebook defined (for :func:`may_change`)."""
        if cls.__module__ not in self.home:
            return None
        try:
            node = class_source(cls).node
        except CaptureError:
            return None
        return node if isinstance(node, ast.ClassDef) else None

    def _folders(self, ns: Mapping[str, Any]) -> list[str]:
        path = _globals(ns).get("__file__")
        folders = [os.getcwd()]
        if isinstance(path, str):
            folders.insert(0, os.path.dirname(os.path.abspath(path)))
        return folders

    # -- values -----------------------------------------------------------------------------------

    def _value(self, name: str, value: Any, where: str, binding: Binding | None, history) -> tuple:
        """``name`` written back from its value: no single statement made it."""
        key = ("value", name, id(value))
        if key in self.items:
            self._claim(name, key, where)
            return key
        needs: set[tuple] = set()

        def namer(obj: Any) -> str | None:
            return self._name_for(obj, where, needs, history)

        text = value_source(value, namer, width=max(40, 97 - len(name)))
        if text is None:
            raise self._error(name, where, self._hint(value))
        if len(text) > _MAX_LITERAL:
            raise self._error(name, where, self._too_large(text))
        pos = binding.stmt.pos if binding is not None else _NOWHERE
        self.items[key] = _Item(key, "value", (name,), pos, text=text, needs=needs)
        self._claim(name, key, where)
        return key

    def _name_for(self, obj: Any, where: str, needs: set[tuple], history) -> str | None:
        """The expression naming a class, function or module in a written-back value."""
        builtin = is_builtin(obj)
        if builtin is not None:
            return builtin
        for bound, key in self.bound.items():  # already imported or defined under a name
            if key[0] == "import" and self._import_value(key) is obj:
                return bound
        name = _attr(obj, "__name__")
        for bound, key in self.bound.items():  # import uuid is there: uuid.UUID
            space = self._import_value(key) if key[0] == "import" and not key[2] else None
            if (
                isinstance(space, ModuleType)
                and isinstance(name, str)
                and (_attr(space, name) is obj)
            ):
                return f"{bound}.{name}"
        if isinstance(obj, ModuleType):
            module = _PUBLIC_ALIASES.get(obj.__name__, obj.__name__)
            preferred = "np" if module == "numpy" else module.rsplit(".", 1)[-1]
            return self._fresh_import(module, "", preferred, where)
        own = inspect.isfunction(obj) or isinstance(obj, type)
        if own and obj.__module__ in self.home:
            ns, name = self.home[obj.__module__], obj.__name__
            try:
                if ns.get(name) is obj:  # its own name: however the notebook made it
                    key = self._resolve(name, ns, where)
                elif _exportable_def(obj):
                    key = self._define(obj, where)
                else:
                    return None
            except CaptureError:
                return None
            if key is not None:
                needs.add(key)
            return name
        public = self._importable(obj, history)
        if public is None:
            return None
        return self._fresh_import(public[0], public[1], public[1], where)

    def _fresh_import(self, module: str, attr: str, preferred: str, where: str) -> str:
        taken = set(self.bound) | set(RESERVED)
        for r in self.records:
            if (r.module, r.attr) == (module, attr):
                return r.bound
        name = _fresh(preferred, taken)
        self._import(name, module, attr, where)
        return name

    @staticmethod
    def _import_value(key: tuple) -> Any:
        module = sys.modules.get(key[1])
        return _attr(module, key[2]) if key[2] else module

    def _hint(self, value: Any) -> str:
        kind = type(value)
        full = kind.__qualname__
        full = full if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{full}"
        what = f"it is a {full} object, which has no source form; "
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            return "it holds values that are not literals; " + _HINT
        if isinstance(value, io.IOBase):
            return what + "open the file inside the function (attach it as an asset: ctx.path())"
        if isinstance(value, (int, float, str, bytes)):
            return what + "convert it to a plain int, float or str"
        if kind.__module__ in self.home:
            return what + "create it inside the function, or in init(ctx) with ctx.set(...)"
        tolist = " (small arrays can become plain lists with .tolist())"
        return what + _HINT + (tolist if callable(_attr(value, "tolist")) else "")

    @staticmethod
    def _too_large(text: str) -> str:
        return (
            f"its value is too large to inline ({len(text)} characters); save it to a file, "
            "attach it as an asset and load it in init(ctx) with ctx.path()"
        )

    def _constant(self, name: str, value: Any, where: str, binding: Binding | None):
        text = literal_source(value, width=max(40, 97 - len(name)))
        if text is None:
            return None  # literal containers holding other things: a statement or a value
        if len(text) > _MAX_LITERAL:
            raise self._error(name, where, self._too_large(text))
        key = ("const", name)
        pos = binding.stmt.pos if binding is not None else _NOWHERE
        self.items.setdefault(key, _Item(key, "const", (name,), pos, text=text))
        self._claim(name, key, where)
        return key

    # -- imports ----------------------------------------------------------------------------------

    def _importable(self, value: Any, history: History | None = None) -> tuple[str, str] | None:
        """(shortest public module exposing ``value``, its name there), or None."""
        module, name = _attr(value, "__module__"), _attr(value, "__qualname__")
        if not (isinstance(module, str) and isinstance(name, str) and name.isidentifier()):
            return None
        if module == "__main__" or module in self.home:
            return None
        parts = module.split(".")
        prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        public = [p for p in prefixes if not any(s.startswith("_") for s in p.split("."))]
        alias = [_PUBLIC_ALIASES[module]] if module in _PUBLIC_ALIASES else []  # posix -> os
        for candidate in [*alias, *public, module.lstrip("_"), module]:  # _io -> io
            if _attr(sys.modules.get(candidate), name) is value:
                return candidate, name
        return None

    def _import_statement(
        self, name: str, binding: Binding, where: str, claim: bool = True
    ) -> tuple | str | None:
        """``name`` as the import statement that bound it (``from utils import WORD_RE``)."""
        node = binding.stmt.node
        for alias in getattr(node, "names", ()):
            bound = alias.asname or alias.name.split(".")[0]
            if bound != name:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level or not node.module:
                    return "unresolved"
                module, attr = node.module, alias.name
            elif alias.asname:
                module, attr = alias.name, ""
            else:
                module, attr = alias.name.split(".")[0], ""
            if not claim:
                self._record(name, module, attr, where)
                return None
            return self._import(name, module, attr, where)
        return "unresolved"

    def _import(self, name: str, module: str, attr: str, where: str) -> None:
        top = module.split(".")[0]
        if top in RUNNER_MODULES:
            raise self._error(
                name, where, f"the kre-py runner has its own module {top!r}, which would be "
                "imported instead; rename your module",
            )  # fmt: skip
        if module == "__main__" or module in self.home:
            raise self._error(name, where, "it is the notebook/script module itself")
        if not attr and "." in module and name == module.rsplit(".", 1)[1]:
            module, attr = module.rsplit(".", 1)  # from os import path
        record = self._record(name, module, attr, where)
        self._claim(name, ("import", record.module, record.attr), where)
        return None

    def _record(self, name: str, module: str, attr: str, where: str) -> ImportLine:
        from krtlab.authoring.local_modules import module_origin

        record = ImportLine(module, attr, "" if name == (attr or module) else name)
        self.records.add(record)
        top = module.split(".")[0]
        if import_group(module) == 2 and not top.endswith("_pb2") and module_origin(top) == "local":
            self.local.add(top)  # a utils.py beside the notebook: it travels with the node
        return record

    def _proto(self, name: str, module: str, top: str, path: tuple[str, ...], where: str):
        if not path:
            return self._import(name, module, top, where)
        # nested types are reached through their top-level class: Item = Request.Item
        key = ("import", module, top)
        top_name = next((n for n, k in self.bound.items() if k == key), None)
        if top_name is None:
            top_name = _fresh(top, set(self.bound))
            self._import(top_name, module, top, where)
        item_key = ("const", name)
        text = ".".join([top_name, *path])
        self.items.setdefault(item_key, _Item(item_key, "const", (name,), _NOWHERE, text=text))
        self._claim(name, ("import", module, top, *path), where)
        return item_key


def capture(
    roots: Sequence[Callable[..., Any]], *, node: str, keep: Sequence[Callable[..., Any]] = ()
) -> Captured:
    """Collect the source a standalone node module needs for ``roots``.

    Args:
        roots: the node's functions, handler first, then its init function if any: plain or
            ``async def`` functions of notebook cells or modules (krtlab node wrappers are
            unwrapped).
        node: the node name, for error messages.
        keep: roots that may keep a reserved name because they *are* the runner's entry point
            (an init function already named ``init``). Any other function, class, constant or
            import named ``handler`` or ``init`` becomes ``user_handler``/``user_init``, uses
            included, so that it cannot shadow the entry points.

    Returns:
        The captured imports, definitions, names and local modules.

    Raises:
        CaptureError: a referenced name is undefined or cannot be re-created faithfully (see
            the module docstring); the message names the node, the name, the cell/line and
            what to do instead.
    """
    if not roots:
        raise CaptureError(f"node {node!r}: nothing to capture", node=node)
    return _Capturer(node, roots, keep).run()


__all__ += ["location"]  # re-exported for messages that point into cells
