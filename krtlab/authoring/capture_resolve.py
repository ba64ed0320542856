"""The capturer: what each name a node uses means, as an item of the exported module
(internal; :func:`krtlab.authoring.capture.capture` is the entry point)."""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
from collections import ChainMap
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from krtlab.authoring.capture import Captured
from krtlab.authoring.capture_common import (
    _DUNDERS,
    _LITERALS,
    _PUBLIC_ALIASES,
    NOWHERE,
    RESERVED,
    Item,
    _attr,
    _base_name,
    _exportable_def,
    _fresh,
    _globals,
    _identifiers,
    _is_krtlab,
    _is_node_wrapper,
    _namespace,
    _plain,
    _shadows_builtin,
)
from krtlab.authoring.capture_history import (
    CLASS,
    DEF,
    IMPORT,
    Binding,
    History,
    history_of,
)
from krtlab.authoring.capture_imports import Imports
from krtlab.authoring.capture_order import order_items
from krtlab.authoring.capture_order import origins as line_origins
from krtlab.authoring.capture_source import (
    Ref,
    Source,
    class_source,
    function_source,
    rewrite,
    scan,
    statement_source,
)
from krtlab.authoring.capture_statements import Statements
from krtlab.authoring.capture_values import live_reason
from krtlab.authoring.handler_py import ImportLine, proto_import
from krtlab.errors import CaptureError

__all__ = ["Capturer"]


class Capturer(Statements, Imports):
    """One capture: resolves each name a node needs to an item, then orders the items."""

    def __init__(self, node: str, roots: Sequence[Any], keep: Sequence[Any]) -> None:
        self.node = node
        self.roots = [self._root(r) for r in roots]
        self.keep = {("def", id(_plain(k))) for k in keep}
        self.home = {r.__module__: r.__globals__ for r in reversed(self.roots)}
        self.items: dict[tuple, Item] = {}
        self.bound: dict[str, tuple] = {}  # name the module uses at run time -> what it is
        self.first_use: dict[str, str] = {}
        self.records: set[ImportLine] = {ImportLine("__future__", "annotations")}
        self.local: set[str] = set()
        self.uses: list[tuple[tuple, str, tuple]] = []  # (user, name, item used), import time
        self._histories: dict[int, History | None] = {}
        self._closures: set[tuple[tuple, tuple[int, int]]] = set()
        # roots krtlab handed over undecorated: their decorators returned them as they were
        self.plain_roots = {id(_plain(r)) for r in roots if inspect.isfunction(_plain(r))}

    def _state(self) -> dict[str, Any]:
        """Copies of what capturing a name adds to (items, names, imports, uses)."""
        kept = ("items", "bound", "first_use", "records", "local", "uses", "_closures")
        return {k: copy.copy(getattr(self, k)) for k in kept}

    def _root(self, root: Any) -> Any:
        fn = _plain(root)
        try:  # behind functools.wraps (lru_cache, the user's own): its def has the decorators
            fn = inspect.unwrap(fn) if callable(fn) else fn
        except ValueError:  # a __wrapped__ cycle
            pass
        if not inspect.isfunction(fn) or fn.__name__ == "<lambda>" or not _exportable_def(fn):
            name = _attr(fn, "__name__") or ""
            raise CaptureError(
                f"node {self.node!r}: {root!r} must be a function defined with def "
                "at the top level of a cell or module",
                node=self.node,
                name=name,
            )
        return fn

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

    def run(self) -> Captured:
        for root in self.roots:
            self._define(root, root=True)
        processed: set[tuple] = set()
        while len(processed) < len(self.items):  # closures may add items (earlier bindings)
            for item in [i for i in self.items.values() if i.key not in processed]:
                processed.add(item.key)
                self._call_closure(item)
        order = order_items(self.items, self.uses)
        renames = self._renames()
        blocks: list[str] = []
        origins: list[tuple[str, ...]] = []
        names: dict[str, str] = {}
        lines: list[str] = []  # consecutive one-statement items share a block
        where: list[str] = []
        for item in order:
            text = self._render(item, renames)
            came = line_origins(item, text)
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

    def _render(self, item: Item, renames: dict[str, str]) -> str:
        if item.kind in ("const", "value"):
            return f"{renames.get(item.names[0], item.names[0])} = {item.text}"
        assert item.source is not None
        return rewrite(item.source, item.refs, renames, item.drop)

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
        pos = stmt.pos if stmt is not None else NOWHERE
        item = Item(key, "def", (source.name,), pos, source=source, refs=refs, drop=drop,
                     obj=obj, root=root)  # fmt: skip
        self.items[key] = item
        self._claim(source.name, key, source.where())
        self._resolve_refs(item, ns, pos)
        return key

    def _resolve_refs(self, item: Item, ns: Mapping[str, Any], pos: tuple[int, int]) -> None:
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
                used = self._resolve(name, ns, where, at=pos if pos != NOWHERE else None,
                                     annotation_only=not runtime, user=item.key)  # fmt: skip
                if used is not None and runtime:
                    item.needs.add(used)

    def _call_closure(self, item: Item) -> None:
        """What runs while an item runs (a statement, a class body, decorators) may call
        functions: what those use must come first too, as it was at that moment."""
        at = item.pos if item.pos != NOWHERE else None
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
        return _is_krtlab(value) or _is_node_wrapper(value)

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
        saved = self._state() if annotation_only else None
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
            if saved is not None and exc.name == name:  # annotations: drop, never evaluated
                self.__dict__.update(saved)  # with what was captured for it before the error
                return None
            raise
        if key is not None and user is not None:
            self.uses.append((user, name, key))
        return key

    def _historical(self, name: str, binding: Binding, ns: Mapping[str, Any], where: str):
        """``name`` as an earlier statement bound it, for a statement that ran in between."""
        if binding.kind == IMPORT:
            package = _globals(ns).get("__package__")
            if self._import_statement(name, binding, where, False, package) is not None:
                raise self._error(name, where, (
                    f"{binding.stmt.where()} imports it with a relative import krtlab cannot "
                    "resolve (the module is in no package); import it by its full name"
                ))  # fmt: skip
            return None
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
            self._import(name, space, "", where)
            return None
        binding = history.binding(name) if history is not None else None
        if isinstance(value, ModuleType) and not _is_krtlab(value):
            module = _PUBLIC_ALIASES.get(value.__name__, value.__name__)  # os.path, not posixpath
            self._import(name, module, "", where)
            self._submodules(name, binding)
            return None
        found = proto_import(value)
        if found is not None:
            return self._proto(name, *found, where)
        if _is_krtlab(value):
            raise self._error(
                name, where, "it is a krtlab object, and krtlab is not installed on the runner; "
                "use krtlab names only in annotations (they are never evaluated there)",
            )  # fmt: skip
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
        elif self._replaced_by_decorator(value, binding):
            # `@timed def f` where timed returns a new function without functools.wraps (or any
            # other object): nothing leads back to f, but its decorated def makes the value again
            assert binding is not None
            return self._statement(name, binding, ns, where)
        own = inspect.isfunction(target) or isinstance(target, type)
        if own and target.__module__ in self.home:
            return self._own(name, target, where, binding, ns)
        public = self._importable(value)
        if public is not None:
            self._import(name, *public, where)
            return None
        if binding is not None and binding.kind == IMPORT:
            key = self._import_statement(
                name, binding, where, package=_globals(ns).get("__package__")
            )
            if not isinstance(key, str):  # "unresolved": look further
                return key
        if binding is not None and binding.kind not in (DEF, CLASS) and binding.single:
            return self._statement(name, binding, ns, where)
        return self._value(name, value, where, binding)

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
                and code.co_name == getattr(binding.stmt.node, "name", None)
                and code.co_filename == binding.stmt.unit.filename
            ):
                return obj
            obj = _attr(obj, "__wrapped__")
            if obj is None:
                return None
        return None

    @staticmethod
    def _replaced_by_decorator(value: Any, binding: Binding | None) -> bool:
        """Whether ``value`` is what the decorators of its ``class`` or ``def`` statement returned
        in place of the class or function it made (for a def, :meth:`_made_by` found nothing)."""
        node = binding.stmt.node if binding is not None else None
        if not getattr(node, "decorator_list", None):  # only a def or a class has decorators
            return False
        if isinstance(node, ast.ClassDef):
            return not (isinstance(value, type) and value.__name__ == node.name)
        return True

    def _own(self, name: str, target: Any, where: str, binding: Binding | None, ns) -> tuple:
        """A function or class the notebook (or script) itself made."""
        if binding is not None and binding.kind in (DEF, CLASS):  # `def name` / `class name`
            # `Settings.level = 2` after the class: the exported class statement would not have it
            self._check_unchanged(name, target, binding.stmt, where, ns)
            source = None
            if binding.kind == CLASS and target.__name__ == name:
                text, first = binding.stmt.text()
                source = statement_source(name, text, binding.stmt.unit.filename, first)
            key = self._define(target, where, source=source)
            if target.__name__ != name:  # def f ... then f = g? the statement is the def
                self._claim(name, key, where)
            return key
        if binding is not None and binding.single:
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
