"""Capture a node's functions as standalone Python source.

:func:`capture` takes the node's handler (and init) functions, as defined in Jupyter cells or
ordinary modules, and collects exactly what a standalone ``main.py`` needs: their source, the
imports they use, the helper functions, classes and constants they reference (transitively) and
nothing else. Anything that has no source form (a model object, an open file, a lambda) is refused
with a :class:`~krtlab.errors.CaptureError` naming the node, the name and the cell/line using it.

This module never imports IPython; when running inside IPython, cells are found through the
running shell in ``sys.modules``.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from krtlab.authoring.capture_source import (
    Ref,
    Source,
    class_source,
    function_source,
    literal_source,
    rewrite,
    scan,
)
from krtlab.errors import CaptureError

__all__ = ["Captured", "capture", "proto_import"]

#: Entry points the kre-py runner looks up by name; user code must not define them by accident.
RESERVED = ("handler", "init")
#: Modules the kre-py runner's own files shadow (its src/ comes first on sys.path).
RUNNER_MODULES = frozenset({"config", "context", "kre_runner", "main", "kre_nats_msg_pb2"})
_MODULE_DUNDERS = frozenset(
    {"__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__"}
)
_LITERAL_TYPES = frozenset(
    {type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset}
)
_MAX_LITERAL = 100_000  # characters; bigger data belongs in an asset file
_HINT_LOAD = (
    "load it in init(ctx) with ctx.set(...) and read it with ctx.get(...), or attach the file "
    "as an asset and read it with ctx.path(...)"
)


@dataclass(frozen=True, order=True)
class _Import:
    module: str
    attr: str = ""  # "" means `import module`
    alias: str = ""

    @property
    def bound(self) -> str:
        return self.alias or self.attr or self.module.split(".")[0]


def _group(module: str) -> int:
    top = module.split(".")[0]
    if top == "__future__":
        return 0
    if top in sys.stdlib_module_names:
        return 1
    return 3 if "." not in module and module.endswith("_pb2") else 2


def _member_key(name: str) -> tuple[int, str]:
    # isort/ruff "order by type": CONSTANTS, Classes, functions
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


def _render_group(records: list[_Import]) -> list[str]:
    lines = [
        f"import {r.module}" + (f" as {r.alias}" if r.alias else "")
        for r in sorted(r for r in records if not r.attr)
    ]
    for module in sorted({r.module for r in records if r.attr}):
        plain = sorted({r.attr for r in records if r.module == module and r.attr and not r.alias})
        if plain:
            names = sorted(plain, key=_member_key)
            line = f"from {module} import {', '.join(names)}"
            if len(line) > 100:
                line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
            lines.append(line)
        aliased = [r for r in records if r.module == module and r.attr and r.alias]
        lines += [f"from {module} import {r.attr} as {r.alias}" for r in sorted(aliased)]
    return lines


def proto_import(obj: Any) -> tuple[str, str, tuple[str, ...]] | None:
    """Where a protobuf message class or enum wrapper is imported from on the runner.

    Returns ``(module, top_level_name, nested_path)``, e.g. ``("public_input_pb2", "Request",
    ("Item",))`` for ``Request.Item``, or None if ``obj`` is not a message class/enum wrapper.
    The ``_pb2`` module is the basename of the ``.proto`` file, because KRE ships the generated
    files flat next to ``main.py``; well-known types keep their ``google.protobuf`` package.
    """
    from google.protobuf.descriptor import Descriptor, EnumDescriptor

    desc = _attr(obj, "DESCRIPTOR")
    is_message = isinstance(obj, type) and isinstance(desc, Descriptor)
    if not (is_message or (not isinstance(obj, type) and isinstance(desc, EnumDescriptor))):
        return None
    path: list[str] = []
    while desc.containing_type is not None:
        path.insert(0, desc.name)
        desc = desc.containing_type
    filename: str = desc.file.name
    stem = filename.rsplit("/", 1)[-1].removesuffix(".proto").replace("-", "_") + "_pb2"
    module = "google.protobuf." + stem if filename.startswith("google/protobuf/") else stem
    return module, desc.name, tuple(path)


@dataclass(frozen=True)
class Captured:
    """Everything a standalone node module needs, as produced by :func:`capture`.

    Attributes:
        node: the node name (for messages).
        definitions: source blocks in emission order: one block of constants (and aliases),
            then helpers/classes in dependency order, then the roots; dedented, krtlab
            decorators removed, reserved names renamed.
        names: each emitted function/class name mapped to where it was defined.
        roots: the emitted names of the roots, in the order given to :func:`capture`.
        where: where the first root was defined (``cell In[5], line 1`` or ``file.py, line 3``).
    """

    node: str
    definitions: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    where: str = ""
    _records: frozenset[_Import] = field(default=frozenset(), repr=False)
    _extra: dict[tuple[str, str], _Import] = field(default_factory=dict, repr=False, compare=False)

    def _all(self) -> list[_Import]:
        return sorted({*self._records, *self._extra.values()})

    @property
    def imports(self) -> tuple[str, ...]:
        """Import statements, deduplicated and sorted: ``__future__``, stdlib, third party,
        then the ``*_pb2`` modules shipped next to ``main.py`` (includes extra imports)."""
        records = self._all()
        return tuple(
            line
            for g in range(4)
            for line in _render_group([r for r in records if _group(r.module) == g])
        )

    @property
    def modules(self) -> frozenset[str]:
        """Top-level modules imported, apart from ``__future__`` and the local ``*_pb2`` ones."""
        return frozenset(r.module.split(".")[0] for r in self._all() if _group(r.module) in (1, 2))

    @property
    def protos(self) -> frozenset[str]:
        """The local ``*_pb2`` modules the code imports (they must sit next to ``main.py``)."""
        return frozenset(r.module for r in self._all() if _group(r.module) == 3)

    def import_block(self) -> str:
        """The import statements as text, one blank line between groups (PEP 8)."""
        records = self._all()
        groups = [_render_group([r for r in records if _group(r.module) == g]) for g in range(4)]
        return "\n\n".join("\n".join(g) for g in groups if g)

    def import_name_for(self, cls: Any) -> str:
        """The expression naming a message class in the generated module, importing it if needed.

        Reuses an existing import of the class or of its ``_pb2`` namespace (``pb.Request``);
        otherwise records ``from <x>_pb2 import <Name>`` (aliased if the name is taken), which
        then shows in :attr:`imports`. Nested types are reached through their top-level class.

        Raises:
            CaptureError: if ``cls`` is not a protobuf message class or enum wrapper.
        """
        found = proto_import(cls)
        if found is None:
            raise CaptureError(
                f"node {self.node!r}: {cls!r} is not a protobuf message class", node=self.node
            )
        module, top, path = found
        records = self._all()
        base = next((r.bound for r in records if r.module == module and r.attr == top), None)
        if base is None:
            spaces = [r.bound for r in records if r.module == module and not r.attr]
            if spaces:
                base = f"{spaces[0]}.{top}"
        if base is None:
            taken = {r.bound for r in records} | _identifiers(self.definitions) | set(RESERVED)
            name = _fresh(top, taken, suffix="_msg")
            self._extra[(module, top)] = _Import(module, top, "" if name == top else name)
            base = name
        return ".".join([base, *path])


def _identifiers(blocks: Sequence[str]) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", "\n".join(blocks)))


def _fresh(base: str, taken: set[str], suffix: str = "") -> str:
    if base not in taken:
        return base
    candidates = [base + suffix] if suffix else []
    candidates += [f"{base}{suffix}_{i}" for i in range(2, 1000)]
    return next(c for c in candidates if c not in taken)


def _attr(obj: Any, name: str) -> Any:
    # Arbitrary user objects may raise anything from __getattr__ (proxies, mocks, lazy loaders).
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _is_krtlab(obj: Any) -> bool:
    names = [_attr(obj, "__name__") if isinstance(obj, ModuleType) else _attr(obj, "__module__")]
    names.append(type(obj).__module__)
    return any(isinstance(n, str) and (n == "krtlab" or n.startswith("krtlab.")) for n in names)


def _plain(fn: Any) -> Any:
    """The user's function behind a krtlab node wrapper (or the object itself)."""
    if _attr(fn, "__krt_node__") and _attr(fn, "__wrapped__") is not None:
        return fn.__wrapped__
    return fn


def _describe(value: Any) -> str:
    kind = type(value)
    if kind.__module__ in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass
class _Def:
    obj: Any
    source: Source
    refs: list[Ref]
    drop: list[range]


class _Capturer:
    """One capture run: resolves names depth-first, so dependencies are emitted first."""

    def __init__(self, node: str, roots: Sequence[Callable[..., Any]], keep: Sequence[Any]):
        self.node = node
        self.roots = [self._root(r) for r in roots]
        self.keep = {("def", id(_plain(k))) for k in keep}
        self.home = {r.__module__: r.__globals__ for r in reversed(self.roots)}
        self.bound: dict[str, tuple[Any, ...]] = {}  # emitted name -> what it stands for
        self.first_use: dict[str, str] = {}
        self.records: set[_Import] = {_Import("__future__", "annotations")}
        self.constants: dict[str, str] = {}  # name -> source of the value, in first-use order
        self.defs: dict[int, _Def] = {}  # dependency order (post-order)

    def _root(self, root: Any) -> Any:
        fn = _plain(root)
        if not inspect.isfunction(fn) and callable(fn):
            fn = inspect.unwrap(fn)
        if not inspect.isfunction(fn):
            raise CaptureError(
                f"node {self.node!r}: {root!r} is not a function defined with def", node=self.node
            )
        if fn.__name__ == "<lambda>" or fn.__qualname__ != fn.__name__:
            raise CaptureError(
                f"node {self.node!r}: {fn.__qualname__!r} must be a def at the top level of a cell "
                "or module (not a lambda or a function defined inside another one)",
                node=self.node,
                name=fn.__name__,
            )
        return fn

    def _error(self, name: str, where: str, what: str) -> CaptureError:
        return CaptureError(
            f"cannot export {name!r}, used by node {self.node!r} ({where}): {what}",
            node=self.node,
            name=name,
            where=where,
        )

    def _claim(self, name: str, key: tuple[Any, ...], where: str) -> None:
        old = self.bound.setdefault(name, key)
        self.first_use.setdefault(name, where)
        if old != key:
            raise self._error(
                name,
                where,
                f"the exported module would need the name for two different things (also used "
                f"at {self.first_use[name]}); rename one of them",
            )

    def run(self) -> Captured:
        for root in self.roots:
            self._define(root)
        renames = self._renames()
        roots = [self.defs[id(r)] for r in self.roots]
        ordered = [d for d in self.defs.values() if d not in roots] + roots
        blocks = []
        if self.constants:
            blocks.append(
                "\n".join(f"{renames.get(n, n)} = {t}" for n, t in self.constants.items())
            )
        for d in ordered:
            name = d.source.name
            blocks.append(rewrite(d.source, d.refs, renames, d.drop))
            aliases = [n for n, k in self.bound.items() if k == ("def", id(d.obj)) and n != name]
            if aliases:
                target = renames.get(name, name)
                blocks.append("\n".join(f"{renames.get(a, a)} = {target}" for a in aliases))
        records = frozenset(
            _Import(r.module, r.attr, renames[r.bound]) if r.bound in renames else r
            for r in self.records
        )
        return Captured(
            node=self.node,
            definitions=tuple(blocks),
            names={renames.get(d.source.name, d.source.name): d.source.where() for d in ordered},
            roots=tuple(renames.get(d.source.name, d.source.name) for d in roots),
            where=roots[0].source.where(),
            _records=records,
        )

    def _renames(self) -> dict[str, str]:
        taken = set(self.bound) | _identifiers([d.source.text for d in self.defs.values()])
        renames = {}
        for name in RESERVED:
            key = self.bound.get(name)
            if key is not None and key not in self.keep:
                renames[name] = _fresh(f"user_{name}", taken)
                taken.add(renames[name])
        return renames

    def _define(self, obj: Any) -> _Def:
        """Capture a function or class of the node's own module (and what it uses)."""
        if id(obj) in self.defs:  # also ends recursion and mutual references
            return self.defs[id(obj)]
        if inspect.isfunction(obj):
            source, ns = function_source(obj), obj.__globals__
        else:
            source, ns = class_source(obj), self.home[obj.__module__]
        drop = [
            range(d.lineno, (d.end_lineno or d.lineno) + 1)
            for d in source.node.decorator_list
            if self._is_krtlab_decorator(d, ns)
        ]
        refs = [r for r in scan(source) if not any(r.line in span for span in drop)]
        self.defs[id(obj)] = d = _Def(obj, source, refs, drop)
        self._claim(source.name, ("def", id(obj)), source.where())
        uses: dict[str, list[Ref]] = {}
        for ref in refs:
            if not ref.store:
                uses.setdefault(ref.name, []).append(ref)
        for name, loads in uses.items():
            runtime = [r for r in loads if not r.annotation]
            where = source.where((runtime or loads)[0].line)
            self._resolve(name, ns, not runtime, where)
        del self.defs[id(obj)]  # re-insert: dependencies come first in the emitted module
        self.defs[id(obj)] = d
        return d

    @staticmethod
    def _is_krtlab_decorator(expr: Any, ns: dict[str, Any]) -> bool:
        while not isinstance(expr, ast.Name):
            expr = getattr(expr, "func", None) or getattr(expr, "value", None)
            if expr is None:
                return False
        value = ns.get(expr.id)
        return _is_krtlab(value) or bool(_attr(value, "__krt_node__"))

    def _resolve(self, name: str, ns: dict[str, Any], annotation_only: bool, where: str) -> None:
        if name in _MODULE_DUNDERS:
            return  # the runner's module has its own
        if name not in ns:
            bi = ns.get("__builtins__", builtins)
            if name in (bi if isinstance(bi, dict) else vars(bi)) or annotation_only:
                return  # annotations are never evaluated (from __future__ import annotations)
            raise CaptureError(
                f"name {name!r} used by node {self.node!r} ({where}) is not defined",
                node=self.node,
                name=name,
                where=where,
            )
        try:
            self._bind(name, ns[name], annotation_only, where)
        except CaptureError as exc:
            if not (annotation_only and exc.name == name):
                raise

    def _bind(self, name: str, value: Any, annotation_only: bool, where: str) -> None:
        value = _plain(value)
        namespace = _attr(value, "__krt_pb2_module__") if isinstance(value, ModuleType) else None
        if isinstance(namespace, str):  # krtlab's stand-in for a generated <stem>_pb2 module
            return self._import(name, None, namespace, where)
        if isinstance(value, ModuleType) and not _is_krtlab(value):
            module = "os.path" if sys.modules.get("os.path") is value else value.__name__
            return self._import(name, None, module, where)
        found = proto_import(value)
        if found is not None:
            return self._proto(name, *found, where)
        if _is_krtlab(value):
            raise self._error(
                name,
                where,
                "it is a krtlab object, and krtlab is not installed on the runner; use krtlab "
                "names only in annotations (they are never evaluated there)",
            )
        if type(value) in _LITERAL_TYPES:
            return self._constant(name, value, where)
        target = value
        if not (inspect.isfunction(value) or isinstance(value, type)):
            target = inspect.unwrap(value) if _attr(value, "__wrapped__") is not None else value
        if inspect.isfunction(target) and target.__name__ == "<lambda>":
            raise self._error(name, where, "it is a lambda; define it with def instead")
        own = inspect.isfunction(target) or isinstance(target, type)
        if own and _attr(target, "__module__") in self.home:
            if target.__qualname__ != target.__name__:
                raise self._error(
                    name,
                    where,
                    "it is defined inside another function or class; move it to the "
                    "top level of a cell or module",
                )
            self._define(target)
            return self._claim(name, ("def", id(target)), where)
        found_import = self._importable(value)
        if found_import is not None:
            return self._import(name, found_import[1], found_import[0], where)
        raise self._error(name, where, self._hint(value))

    def _hint(self, value: Any) -> str:
        what = f"it is a {_describe(value)} object, which has no source form; "
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            what = "it holds values that are not literals; "
        elif isinstance(value, io.IOBase):
            return what + "open the file inside the function (attach it as an asset, ctx.path(...))"
        elif isinstance(value, (int, float, str, bytes)):
            return what + "convert it to a plain int, float or str"
        elif type(value).__module__ in self.home:
            return what + "create it inside the function, or in init(ctx) with ctx.set(...)"
        hint = what + _HINT_LOAD
        if callable(_attr(value, "tolist")):
            hint += " (small arrays can become plain lists with .tolist())"
        return hint

    def _importable(self, value: Any) -> tuple[str, str] | None:
        """(shortest public module that exposes ``value``, attribute name), or None."""
        module, name = _attr(value, "__module__"), _attr(value, "__qualname__")
        name = name if isinstance(name, str) else _attr(value, "__name__")
        if not (isinstance(module, str) and isinstance(name, str) and name.isidentifier()):
            return None
        if module == "__main__" or module in self.home:
            return None
        parts = module.split(".")
        prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        public = [p for p in prefixes if not any(s.startswith("_") for s in p.split("."))]
        for candidate in [*public, module]:
            if _attr(sys.modules.get(candidate), name) is value:
                return candidate, name
        return None

    def _import(self, name: str, attr: str | None, module: str, where: str) -> None:
        top = module.split(".")[0]
        if top in RUNNER_MODULES:
            raise self._error(
                name,
                where,
                f"the kre-py runner has its own module {top!r}, which would be "
                "imported instead; rename your module",
            )
        if module == "__main__" or module in self.home:
            raise self._error(name, where, "it is the notebook/script module itself")
        if attr is None and "." in module and name == module.rsplit(".", 1)[1]:
            module, attr = module.rsplit(".", 1)  # from os import path
        if attr is None:
            record = _Import(module, "", "" if name == module else name)
        else:
            record = _Import(module, attr, "" if name == attr else name)
        self.records.add(record)
        self._claim(name, ("import", record.module, record.attr), where)

    def _proto(self, name: str, module: str, top: str, path: tuple[str, ...], where: str) -> None:
        if not path:
            return self._import(name, top, module, where)
        key = ("import", module, top)
        top_name = next((n for n, k in self.bound.items() if k == key), None)
        if top_name is None:  # nested types are reached through their top-level class
            top_name = _fresh(top, set(self.bound), suffix="_msg")
            self._import(top_name, top, module, where)
        self.constants[name] = ".".join([top_name, *path])
        self._claim(name, ("import", module, top, *path), where)

    def _constant(self, name: str, value: Any, where: str) -> None:
        text = literal_source(value, width=max(40, 97 - len(name)))
        if text is None:
            raise self._error(name, where, self._hint(value))
        if len(text) > _MAX_LITERAL:
            raise self._error(
                name,
                where,
                f"its value is too large to inline ({len(text)} characters); save it "
                "to a file, attach it as an asset and load it in init(ctx) with ctx.path(...)",
            )
        self.constants[name] = text
        self._claim(name, ("const", text), where)


def capture(
    roots: Sequence[Callable[..., Any]],
    *,
    node: str,
    keep: Sequence[Callable[..., Any]] = (),
) -> Captured:
    """Collect the source a standalone node module needs for ``roots``.

    Args:
        roots: the node's functions, handler first and then its init function if any (plain or
            ``async def`` functions from notebook cells or modules; krtlab node wrappers are
            unwrapped).
        node: the node name, used in error messages.
        keep: roots that may keep a reserved name (``handler``/``init``) because they *are* the
            runner's entry point (e.g. an init function already named ``init``). Any other
            function, class, constant or import named ``handler`` or ``init`` is renamed to
            ``user_handler``/``user_init`` (with its uses) so it cannot shadow the entry points.

    Returns:
        The captured imports, definitions and names.

    Raises:
        CaptureError: when a referenced name is undefined, has no source form (lambda, live
            object, krtlab object used at run time) or its source cannot be found; the message
            names the node, the name and the cell/line that uses it.
    """
    if not roots:
        raise CaptureError(f"node {node!r}: nothing to capture", node=node)
    return _Capturer(node, roots, keep).run()
