"""Capture a node's functions as standalone Python source.

:func:`capture` takes the node's handler (and init) function, defined in Jupyter cells or ordinary
modules, and collects exactly what a standalone ``main.py`` needs: their source, the imports they
use, the helper functions, classes and constants they reference (transitively) and nothing else.
What has no source form (a model object, an open file, a lambda) is refused with a
:class:`~krtlab.errors.CaptureError` naming the node, the name and the cell/line that uses it.

Importing this module does not import IPython.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import re
import sys
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from krtlab.authoring.capture_source import (
    Ref,
    Source,
    class_source,
    function_source,
    rewrite,
    scan,
)
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


@dataclass(frozen=True)
class Captured:
    """What a standalone node module needs, as collected by :func:`capture`.

    Attributes:
        node: the node name (for messages).
        definitions: source blocks: one block of constants (and aliases), then the helper
            functions and classes in dependency order, then the roots; dedented, with krtlab
            decorators removed and reserved names renamed.
        names: each emitted function/class name -> where it was defined.
        roots: the emitted names of the roots, in the order given to :func:`capture`.
        where: where the first root was defined (``cell In[5], line 1``, ``nodes.py, line 3``).
    """

    node: str
    definitions: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    where: str = ""
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


@dataclass
class _Def:
    obj: Any
    source: Source
    refs: list[Ref]
    drop: list[range]  # lines of krtlab decorators


class _Capturer:
    """One capture: resolves names depth-first, so dependencies come before their users."""

    def __init__(self, node: str, roots: Sequence[Any], keep: Sequence[Any]) -> None:
        self.node = node
        self.roots = [self._root(r) for r in roots]
        self.keep = {("def", id(_plain(k))) for k in keep}
        self.home = {r.__module__: r.__globals__ for r in reversed(self.roots)}
        self.bound: dict[str, tuple[Any, ...]] = {}  # emitted name -> what it stands for
        self.first_use: dict[str, str] = {}
        self.records: set[ImportLine] = {ImportLine("__future__", "annotations")}
        self.constants: dict[str, str] = {}  # name -> value source, in first-use order
        self.defs: dict[int, _Def] = {}  # in dependency order
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

    def _error(self, name: str, where: str, what: str) -> CaptureError:
        message = f"cannot export {name!r}, used by node {self.node!r} ({where}): {what}"
        return CaptureError(message, node=self.node, name=name, where=where)

    def _claim(self, name: str, key: tuple[Any, ...], where: str) -> None:
        self.first_use.setdefault(name, where)
        if self.bound.setdefault(name, key) != key:
            raise self._error(
                name, where, "the exported module would need this name for two different "
                f"objects (also used at {self.first_use[name]}); rename one of them",
            )  # fmt: skip

    def run(self) -> Captured:
        for root in self.roots:
            self._define(root)
        taken = set(self.bound) | _identifiers(d.source.text for d in self.defs.values())
        renames: dict[str, str] = {}
        for name in RESERVED:
            key = self.bound.get(name)
            if key is not None and key not in self.keep:
                renames[name] = _fresh(f"user_{name}", taken)
        roots = [self.defs[id(r)] for r in self.roots]
        ordered = [d for d in self.defs.values() if d not in roots] + roots
        blocks = []
        if self.constants:
            lines = [f"{renames.get(n, n)} = {text}" for n, text in self.constants.items()]
            blocks.append("\n".join(lines))
        for d in ordered:
            blocks.append(rewrite(d.source, d.refs, renames, d.drop))
            target = renames.get(d.source.name, d.source.name)
            key, name = ("def", id(d.obj)), d.source.name
            aliases = [n for n, k in self.bound.items() if k == key and n != name]
            if aliases:  # the function is also used under other names (h = helper)
                blocks.append("\n".join(f"{renames.get(a, a)} = {target}" for a in aliases))
        records = {r._replace(alias=renames.get(r.bound, r.alias)) for r in self.records}
        return Captured(
            node=self.node,
            definitions=tuple(blocks),
            names={renames.get(d.source.name, d.source.name): d.source.where() for d in ordered},
            roots=tuple(renames.get(d.source.name, d.source.name) for d in roots),
            where=roots[0].source.where(),
            _records=frozenset(records),
        )

    def _define(self, obj: Any, used_at: str = "") -> _Def:
        """Capture a function or class of the node's own module, and what it uses."""
        if id(obj) in self.defs:  # also ends recursion
            return self.defs[id(obj)]
        try:
            if inspect.isfunction(obj):
                source, ns = function_source(obj), _namespace(obj)
            else:
                source, ns = class_source(obj), self.home[obj.__module__]
        except CaptureError as exc:  # say which node needs it, and where
            used = f", used at {used_at}" if used_at else ""
            where = exc.where or used_at
            raise CaptureError(f"node {self.node!r}: {exc}{used}", node=self.node, name=exc.name,
                               where=where) from None  # fmt: skip
        decorators = [d for d in source.node.decorator_list if self._drop_decorator(obj, d, ns)]
        drop = [range(d.lineno, (d.end_lineno or d.lineno) + 1) for d in decorators]
        free = set(getattr(getattr(obj, "__code__", None), "co_freevars", ()))
        nonlocals = [n for n in ast.walk(source.node) if isinstance(n, ast.Nonlocal)]
        shared = free & {name for n in nonlocals for name in n.names}
        if shared:  # a module-level copy could not write back into the enclosing function
            raise self._error(", ".join(sorted(shared)), source.where(), "it is assigned with "
                              "nonlocal; keep such state in ctx.set(...) or a global")  # fmt: skip
        refs = [r for r in scan(source) if not any(r.line in lines for lines in drop)]
        self.defs[id(obj)] = d = _Def(obj, source, refs, drop)
        self._claim(source.name, ("def", id(obj)), source.where())
        uses: dict[str, list[Ref]] = {}
        for ref in (r for r in refs if not r.store):
            uses.setdefault(ref.name, []).append(ref)
        for name, loads in uses.items():
            runtime = [r for r in loads if not r.annotation]
            self._resolve(name, ns, not runtime, source.where((runtime or loads)[0].line))
        del self.defs[id(obj)]  # re-insert after its dependencies
        self.defs[id(obj)] = d
        return d

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

    def _resolve(self, name: str, ns: dict[str, Any], annotation_only: bool, where: str) -> None:
        if name in _DUNDERS:
            return  # the runner's module has its own
        if name not in ns:
            bi = ns.get("__builtins__", builtins)
            if name in (bi if isinstance(bi, dict) else vars(bi)) or annotation_only:
                return  # annotations are never evaluated (from __future__ import annotations)
            message = f"name {name!r} used by node {self.node!r} ({where}) is not defined"
            raise CaptureError(message, node=self.node, name=name, where=where)
        if _shadows_builtin(name, ns[name]):
            return  # IPython's wrapper over a builtin (its `open`): the runner has the builtin
        try:
            self._bind(name, ns[name], where)
        except CaptureError as exc:
            if not (annotation_only and exc.name == name):  # annotations: drop, never evaluated
                raise

    def _bind(self, name: str, value: Any, where: str) -> None:
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
        if type(value) in _LITERALS:
            return self._constant(name, value, where)
        target = value
        if not inspect.isfunction(value) and _attr(value, "__wrapped__") is not None:
            try:  # a decorated function (lru_cache...): its def re-applies the decorators
                target = inspect.unwrap(value)
            except ValueError:  # a __wrapped__ cycle
                pass
        if inspect.isfunction(target) and target.__name__ == "<lambda>":
            raise self._error(name, where, "it is a lambda; define it with def instead")
        own = inspect.isfunction(target) or isinstance(target, type)
        if own and target.__module__ in self.home:
            if not _exportable_def(target):
                raise self._error(name, where, "it is defined inside a function or class; "
                                  "move it to the top level of a cell or module")  # fmt: skip
            self._define(target, where)
            return self._claim(name, ("def", id(target)), where)
        public = self._importable(value)
        if public is None:
            raise self._error(name, where, self._hint(value))
        return self._import(name, *public, where)

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

    def _importable(self, value: Any) -> tuple[str, str] | None:
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
        record = ImportLine(module, attr, "" if name == (attr or module) else name)
        self.records.add(record)
        self._claim(name, ("import", record.module, record.attr), where)

    def _proto(self, name: str, module: str, top: str, path: tuple[str, ...], where: str) -> None:
        if not path:
            return self._import(name, module, top, where)
        # nested types are reached through their top-level class: Item = Request.Item
        key = ("import", module, top)
        top_name = next((n for n, k in self.bound.items() if k == key), None)
        if top_name is None:
            top_name = _fresh(top, set(self.bound))
            self._import(top_name, module, top, where)
        self.constants[name] = ".".join([top_name, *path])
        self._claim(name, ("import", module, top, *path), where)

    def _constant(self, name: str, value: Any, where: str) -> None:
        text = literal_source(value, width=max(40, 97 - len(name)))
        if text is None:
            raise self._error(name, where, self._hint(value))
        if len(text) > _MAX_LITERAL:
            raise self._error(
                name, where, f"its value is too large to inline ({len(text)} characters); save "
                "it to a file, attach it as an asset and load it in init(ctx) with ctx.path()",
            )  # fmt: skip
        self.constants[name] = text
        self._claim(name, ("const", text), where)


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
        The captured imports, definitions and names.

    Raises:
        CaptureError: a referenced name is undefined, has no source form (lambda, live object,
            krtlab object used at run time) or its source cannot be found; the message names
            the node, the name and the cell/line that uses it.
    """
    if not roots:
        raise CaptureError(f"node {node!r}: nothing to capture", node=node)
    return _Capturer(node, roots, keep).run()
