"""Naming what a captured node imports (internal): modules, library objects, the import
statements the notebook wrote, and the local modules that must travel with the node."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from krtlab.authoring.capture_common import (
    _PUBLIC_ALIASES,
    NOWHERE,
    RESERVED,
    RUNNER_MODULES,
    Item,
    _attr,
    _exportable_def,
    _fresh,
)
from krtlab.authoring.capture_history import IMPORT, Binding
from krtlab.authoring.capture_values import is_builtin
from krtlab.authoring.handler_py import ImportLine, import_group
from krtlab.errors import CaptureError

if TYPE_CHECKING:
    from krtlab.authoring.capture_source import Source

__all__ = ["Imports"]


class Imports:
    """The import half of :class:`~krtlab.authoring.capture_resolve.Capturer`."""

    if TYPE_CHECKING:  # what the Capturer provides
        home: dict[str, dict[str, Any]]
        items: dict[tuple, Item]
        bound: dict[str, tuple]
        records: set[ImportLine]
        local: set[str]

        def _error(self, name: str, where: str, what: str, at: str = "") -> CaptureError: ...
        def _claim(self, name: str, key: tuple, where: str) -> None: ...
        def _define(
            self, obj: Any, used_at: str = "", *, root: bool = False, source: Source | None = None
        ) -> tuple: ...
        def _resolve(
            self,
            name: str,
            ns: Mapping[str, Any],
            where: str,
            *,
            at: tuple[int, int] | None = None,
            annotation_only: bool = False,
            user: tuple | None = None,
        ) -> tuple | None: ...

    def _name_for(self, obj: Any, where: str, needs: set[tuple]) -> str | None:
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
            item: tuple | None
            try:
                if ns.get(name) is obj:  # its own name: however the notebook made it
                    item = self._resolve(name, ns, where)
                elif _exportable_def(obj):
                    item = self._define(obj, where)
                else:
                    return None
            except CaptureError:
                return None
            if item is not None:
                needs.add(item)
            return name
        public = self._importable(obj)
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

    def _import_statement(
        self, name: str, binding: Binding, where: str, claim: bool = True, package: Any = None
    ) -> tuple | str | None:
        """``name`` as the import statement that bound it (``from utils import WORD_RE``); a
        relative import (``from .data import WORD``) made absolute from ``package``, the
        importing module's. "unresolved" when it cannot be."""
        node = binding.stmt.node
        for alias in getattr(node, "names", ()):
            bound = alias.asname or alias.name.split(".")[0]
            if bound != name:
                continue
            if isinstance(node, ast.ImportFrom):
                module = _absolute(node, package)
                if module is None:
                    return "unresolved"
                attr = alias.name
            elif alias.asname:
                module, attr = alias.name, ""
            else:
                module, attr = alias.name.split(".")[0], ""
            if not claim:
                self._record(name, module, attr)
                self._submodules(name, binding)
                return None
            self._import(name, module, attr, where)
            return None
        return "unresolved"

    def _submodules(self, name: str, binding: Binding | None) -> None:
        """``import xml.etree.ElementTree`` binds ``xml`` and loads the submodule the code then
        reaches as ``xml.etree.ElementTree``: keep that import line as written."""
        node = binding.stmt.node if binding is not None and binding.kind == IMPORT else None
        for alias in node.names if isinstance(node, ast.Import) else ():
            if not alias.asname and "." in alias.name and alias.name.split(".")[0] == name:
                self.records.add(ImportLine(alias.name, "", ""))

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
        record = self._record(name, module, attr)
        self._claim(name, ("import", record.module, record.attr), where)
        return None

    def _record(self, name: str, module: str, attr: str) -> ImportLine:
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
        self.items.setdefault(item_key, Item(item_key, "const", (name,), NOWHERE, text=text))
        self._claim(name, ("import", module, top, *path), where)
        return item_key


def _absolute(node: ast.ImportFrom, package: Any) -> str | None:
    """The module a ``from ... import`` statement reads, absolute (None: a relative import
    outside a package, or above its top)."""
    if not node.level:
        return node.module
    try:
        return importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except (ImportError, ValueError, TypeError, AttributeError):
        return None
