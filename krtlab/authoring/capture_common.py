"""Names and small helpers shared by the capture modules (internal)."""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
import re
from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain, count
from types import ModuleType
from typing import Any

from krtlab.authoring.capture_history import Statement
from krtlab.authoring.capture_source import Ref, Source
from krtlab.spec.runner_image import RUNNER_SHADOWED_MODULES

#: Entry points the kre-py runner looks up by name: user code must not define them by accident.
RESERVED = ("handler", "init")
#: Modules the kre-py runner's own files shadow (its src/ comes first on sys.path).
RUNNER_MODULES = RUNNER_SHADOWED_MODULES  # the runner's own modules come first on its path
_DUNDERS = {"__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__"}
_LITERALS = {type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset}
_MAX_LITERAL = 100_000  # characters; bigger data belongs in an asset file
_PUBLIC_ALIASES = {"posix": "os", "nt": "os", "posixpath": "os.path", "ntpath": "os.path"}
_HINT = (
    "load it in init(ctx) with ctx.set(...) and read it with ctx.get(...), or attach the file as "
    "an asset and read it with ctx.path(...)"
)
NOWHERE = (-1, -1)  # the position of what no statement made


def _identifiers(texts: Iterable[str]) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", "\n".join(texts)))


def _fresh(base: str, taken: set[str]) -> str:
    return next(n for n in chain([base], (f"{base}_{i}" for i in count(2))) if n not in taken)


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
    node: ast.AST | None = expr
    while not isinstance(node, ast.Name):
        node = getattr(node, "func", None) or getattr(node, "value", None)
        if node is None:
            return None
    return node.id


def _is_node_wrapper(obj: Any) -> bool:
    """Whether ``obj`` is a krtlab node wrapper (or one like it), or its class: the class says
    so. Asking an instance would take anything that answers every attribute (mocks, config
    proxies) for one."""
    return _attr(obj if isinstance(obj, type) else type(obj), "__krt_node__") is True


def _plain(fn: Any) -> Any:
    """The user's function behind a krtlab node wrapper, else ``fn`` itself."""
    inner = _attr(fn, "__wrapped__")
    return inner if _is_node_wrapper(fn) and inner is not None else fn


def _snippet(stmt: Statement) -> str:
    node = stmt.node
    if getattr(node, "decorator_list", None):  # the def or class line, not its first decorator
        node = copy.copy(node)
        node.decorator_list = []  # type: ignore[attr-defined]
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(eq=False)
class Item:
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
