"""Globals captured as the statement that made them, or as their value (internal)."""

from __future__ import annotations

import ast
import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from krtlab.authoring.capture_changes import may_change
from krtlab.authoring.capture_common import (
    _HINT,
    _MAX_LITERAL,
    NOWHERE,
    Item,
    _attr,
    _globals,
    _snippet,
)
from krtlab.authoring.capture_history import Binding, History, Statement, reads_files
from krtlab.authoring.capture_source import class_source, scan, statement_source
from krtlab.authoring.capture_values import value_source
from krtlab.authoring.handler_py import literal_source
from krtlab.errors import CaptureError

__all__ = ["Statements"]


class Statements:
    """The statement and value half of :class:`~krtlab.authoring.capture_resolve.Capturer`."""

    if TYPE_CHECKING:  # what the Capturer and its import half provide
        node: str
        home: dict[str, dict[str, Any]]
        items: dict[tuple, Item]

        def _error(self, name: str, where: str, what: str, at: str = "") -> CaptureError: ...
        def _claim(self, name: str, key: tuple, where: str) -> None: ...
        def _history(self, ns: Mapping[str, Any]) -> History | None: ...
        def _resolve_refs(
            self, item: Item, ns: Mapping[str, Any], pos: tuple[int, int]
        ) -> None: ...
        def _name_for(self, obj: Any, where: str, needs: set[tuple]) -> str | None: ...

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
        item = Item(key, "stmt", tuple(sorted({r.name for r in refs if r.store})), stmt.pos,
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
                raise self._error(name, where, (
                    f"it is made by {stmt.where()} (`{_snippet(stmt)}`), and {change.where()} "
                    f"may change it afterwards (`{_snippet(change.stmt)}`); the runner would "
                    "only re-run the first. Make the change part of the statement that creates "
                    "it (or do it in init(ctx) with ctx.set(...)) and export again"
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

    def _value(self, name: str, value: Any, where: str, binding: Binding | None) -> tuple:
        """``name`` written back from its value: no single statement made it."""
        key = ("value", name, id(value))
        if key in self.items:
            self._claim(name, key, where)
            return key
        needs: set[tuple] = set()

        def namer(obj: Any) -> str | None:
            return self._name_for(obj, where, needs)

        text = value_source(value, namer, width=max(40, 97 - len(name)))
        if text is None:
            raise self._error(name, where, self._hint(value))
        if len(text) > _MAX_LITERAL:
            raise self._error(name, where, self._too_large(text))
        pos = binding.stmt.pos if binding is not None else NOWHERE
        self.items[key] = Item(key, "value", (name,), pos, text=text, needs=needs)
        self._claim(name, key, where)
        return key

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
        key = ("const", name, text)  # two modules' LIMIT = 5 and LIMIT = 4 cannot share a name
        pos = binding.stmt.pos if binding is not None else NOWHERE
        self.items.setdefault(key, Item(key, "const", (name,), pos, text=text))
        self._claim(name, key, where)
        return key
