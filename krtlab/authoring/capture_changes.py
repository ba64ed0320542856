"""Which later statements may change an object in place (internal).

``TOK.lower = False`` and ``MODEL.fit(X, y)`` change the object a statement made, so re-running
that statement on the runner would give another object; ``log.info("x")``, ``WORD.findall(t)``
and ``TOK.tokenize("x")`` shown as a cell's output do not. :func:`may_change` judges a
:class:`~krtlab.authoring.capture_history.Change` against the live object: immutable types
never change; loggers, builtin containers and numpy arrays by their known methods; classes the
notebook defined by reading their methods (do they assign to ``self``?); anything else by the
method's name, or by whether the call was made for its effect.
"""

from __future__ import annotations

import ast
import inspect
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["may_change"]


def _kind(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


_IMMUTABLE = (str, bytes, int, float, complex, bool, tuple, frozenset, range, type(None))
_IMMUTABLE_KINDS = frozenset({
    "re.Pattern", "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    "functools.partial", "zoneinfo.ZoneInfo",
})  # fmt: skip
_LOGGER_READS = frozenset({
    "debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal",
    "isEnabledFor", "getEffectiveLevel", "getChild", "hasHandlers", "findCaller",
})  # fmt: skip
_BUILTIN_MUTATORS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "update",
    "setdefault", "popitem", "add", "discard", "intersection_update", "difference_update",
    "symmetric_difference_update", "appendleft", "extendleft", "popleft", "rotate",
    "__setitem__", "__delitem__", "__iadd__", "__ior__",
})  # fmt: skip
_NUMPY_MUTATORS = frozenset({
    "sort", "fill", "resize", "put", "itemset", "setflags", "setfield", "partition", "byteswap",
})  # fmt: skip
#: method names that change their object, by prefix (fit, set_params, add_word, load_state ...)
_MUTATOR_PREFIXES = (
    "fit", "partial_fit", "train", "update", "set", "add", "append", "extend", "insert",
    "remove", "pop", "clear", "load", "reset", "register", "compile", "learn", "build", "seed",
    "configure", "setup", "push", "put", "write", "close", "connect", "start", "stop", "attach",
    "init", "feed", "observe", "refresh", "populate", "incr", "decr", "mutate", "enable",
    "disable", "drop_", "delete", "del", "discard", "sort", "shuffle",
)  # fmt: skip


def _mutator_name(method: str) -> bool:
    plain = method.lstrip("_").lower()
    return any(plain == p or plain.startswith(p) for p in _MUTATOR_PREFIXES)


def may_change(value: Any, change: Any, own_class: Callable[[type], ast.ClassDef | None]) -> bool:
    """Whether ``change`` (a :class:`~krtlab.authoring.capture_history.Change`) may have
    changed ``value`` in place. ``own_class`` gives the ``class`` statement of a class the
    notebook defined (None for others): its methods are read to see whether they assign to
    ``self``."""
    if change.kind == "store" or change.inplace:
        return True
    target = value
    for attr in change.path:
        try:
            target = getattr(target, attr)
        except Exception:
            target = None
            break
    method = change.method
    if target is None:
        return _unknown_call_changes(change)
    if isinstance(target, _IMMUTABLE) or _kind(target) in _IMMUTABLE_KINDS:
        return False
    if isinstance(target, (logging.Logger, logging.LoggerAdapter)):
        return method not in _LOGGER_READS
    if isinstance(target, (list, dict, set, bytearray)) or type(target).__module__ == "collections":
        return method in _BUILTIN_MUTATORS
    if type(target).__module__ == "numpy" and type(target).__name__ == "ndarray":
        return method in _NUMPY_MUTATORS
    verdict = _own_method_changes(type(target), method, own_class, set())
    if verdict is not None:
        return verdict
    return _unknown_call_changes(change)


def _unknown_call_changes(change: Any) -> bool:
    """A method of an object krtlab cannot look into: judged by its name, else by whether the
    call was made for its effect (its result thrown away, not shown as a cell's output)."""
    if _mutator_name(change.method):
        return True
    if _reader_name(change.method):
        return False
    return change.discarded and not change.shown


_READER_PREFIXES = ("get", "to", "is", "has", "describe", "head", "tail", "predict", "score",
                    "transform", "copy", "sum", "mean", "std", "min", "max", "count", "index",
                    "keys", "values", "items", "info", "search", "match", "find", "sub",
                    "split", "format", "str", "as", "show", "plot", "print", "display",
                    "summary", "render", "repr", "tokenize", "encode", "decode", "lookup",
                    "evaluate", "compute", "call", "run", "apply", "query", "select")  # fmt: skip


def _reader_name(method: str) -> bool:
    plain = method.lstrip("_").lower()
    return any(plain.startswith(p) for p in _READER_PREFIXES)


def _own_method_changes(
    cls: type, method: str, own_class: Callable[[type], ast.ClassDef | None], seen: set
) -> bool | None:
    """Whether ``cls.method`` assigns to ``self`` (directly or through other methods of the
    notebook's own classes); None when the method is not defined by such a class."""
    for klass in inspect.getmro(cls):
        node = own_class(klass)
        if node is None:
            continue
        defs = {
            s.name: s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        if method not in defs:
            continue
        if (klass, method) in seen:
            return False
        seen.add((klass, method))
        fn = defs[method]
        if not fn.args.args:
            return False  # a staticmethod-like def: no self to change
        me = fn.args.args[0].arg
        for sub in ast.walk(fn):
            if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = sub.targets if isinstance(sub, (ast.Assign, ast.Delete)) else [sub.target]
                for t in targets:
                    root = t
                    while isinstance(root, (ast.Attribute, ast.Subscript)):
                        root = root.value
                    if root is not t and isinstance(root, ast.Name) and root.id == me:
                        return True
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                root = sub.func.value
                on_self = isinstance(root, ast.Name) and root.id == me
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if isinstance(root, ast.Name) and root.id == me:
                    name = sub.func.attr
                    if on_self:
                        inner = _own_method_changes(cls, name, own_class, seen)
                        if inner:
                            return True
                    elif name in _BUILTIN_MUTATORS or _mutator_name(name):
                        return True
            if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)
                    and sub.func.id in ("setattr", "delattr") and sub.args
                    and isinstance(sub.args[0], ast.Name) and sub.args[0].id == me):  # fmt: skip
                return True
        return False
    return None
