"""A small GraphQL parser and executor: the subset KRE's admin API schema needs.

It reads SDL (``type``/``input``/``enum``/``scalar``) and executable documents (query and mutation
operations with names, typed variables with defaults, arguments with input objects, lists, enums
and strings, nested selection sets, aliases, fragments, ``__typename``), validates them against
the schema the way gqlgen (gqlparser) does, and executes them with plain Python resolvers.

Errors use gqlgen's wording and shape: validation errors come back with HTTP 422, code
``GRAPHQL_VALIDATION_FAILED`` and locations; resolver errors with HTTP 200, ``path`` and
``data: null`` when the failing root field is non-null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GraphQLError", "Schema"]

_TOKEN = re.compile(
    r'(?P<ws>[\s,\ufeff]+|#[^\n]*)|(?P<block>"""(?:\\"""|[^"]|"(?!""))*""")'
    r'|(?P<str>"(?:\\.|[^"\\\n])*")|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<punct>\.\.\.|[!$&():=@\[\]{}|])"
)


class GraphQLError(Exception):
    """One GraphQL error as gqlgen serialises it (``message``, ``locations``, ``path``, ...)."""

    def __init__(
        self,
        message: str,
        *,
        loc: tuple[int, int] | None = None,
        path: list[str | int] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.loc, self.path = message, loc, path
        self.extensions = dict(extensions or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.path is not None:
            out["path"] = list(self.path)
        if self.loc is not None:
            out["locations"] = [{"line": self.loc[0], "column": self.loc[1]}]
        if self.extensions:
            out["extensions"] = self.extensions
        return out


# -- lexing and parsing --------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str
    value: str
    loc: tuple[int, int]


def _lex(text: str) -> list[_Tok]:
    toks, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            col = pos - line_start + 1
            raise GraphQLError(f"Unexpected <Invalid> {text[pos]!r}", loc=(line, col))
        kind = m.lastgroup or ""
        if kind != "ws":
            value = m.group()
            if kind == "block":
                kind, value = "str", value[3:-3].replace('\\"""', '"""')
            elif kind == "str":
                value = _unescape(value[1:-1])
            toks.append(_Tok(kind, value, (line, pos - line_start + 1)))
        chunk = m.group()
        if "\n" in chunk:
            line += chunk.count("\n")
            line_start = pos + chunk.rindex("\n") + 1
        pos = m.end()
    toks.append(_Tok("eof", "<EOF>", (line, pos - line_start + 1)))
    return toks


def _unescape(s: str) -> str:
    simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def sub(m: re.Match[str]) -> str:
        esc = m.group(1)
        return chr(int(esc[1:], 16)) if esc[0] == "u" else simple.get(esc, esc)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", sub, s)


@dataclass
class TypeRef:
    """``name`` for named types, ``of`` for lists; ``non_null`` marks ``!``."""

    name: str | None = None
    of: TypeRef | None = None
    non_null: bool = False

    def __str__(self) -> str:
        inner = self.name if self.of is None else f"[{self.of}]"
        return f"{inner}{'!' if self.non_null else ''}"


@dataclass
class Field:
    name: str
    alias: str
    args: dict[str, Any]
    selections: list[Any]
    loc: tuple[int, int]
    arg_locs: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Fragment:
    type_condition: str | None
    selections: list[Any]
    spread: str | None = None  # a named spread before resolution
    loc: tuple[int, int] = (0, 0)


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: dict[str, tuple[TypeRef, Any, tuple[int, int]]]
    selections: list[Any]
    loc: tuple[int, int]


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks, self.i = _lex(text), 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def peek(self, value: str) -> bool:
        return self.tok.kind in ("punct", "name") and self.tok.value == value

    def skip(self, value: str) -> bool:
        if self.peek(value):
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> _Tok:
        if not self.peek(value):
            self.fail(f"Expected {value}, found {self._found()}")
        return self.next()

    def name(self) -> str:
        if self.tok.kind != "name":
            self.fail(f"Expected Name, found {self._found()}")
        return self.next().value

    def _found(self) -> str:
        t = self.tok
        return "<EOF>" if t.kind == "eof" else (t.value if t.kind == "punct" else f"{t.value}")

    def fail(self, message: str) -> None:
        raise GraphQLError(message, loc=self.tok.loc)

    # executable documents
    def document(self) -> tuple[list[Operation], dict[str, Fragment]]:
        ops, frags = [], {}
        while self.tok.kind != "eof":
            if self.peek("{"):
                ops.append(Operation("query", None, {}, self.selection_set(), self.tok.loc))
            elif self.peek("fragment"):
                self.next()
                name = self.name()
                self.expect("on")
                cond = self.name()
                frags[name] = Fragment(cond, self.selection_set())
            elif self.tok.kind == "name" and self.tok.value in _OPERATIONS:
                loc, kind = self.tok.loc, self.next().value
                name = self.name() if self.tok.kind == "name" else None
                variables = self.variable_defs()
                ops.append(Operation(kind, name, variables, self.selection_set(), loc))
            else:
                self.fail(f"Unexpected {self._found()}")
        return ops, frags

    def variable_defs(self) -> dict[str, tuple[TypeRef, Any, tuple[int, int]]]:
        out: dict[str, tuple[TypeRef, Any, tuple[int, int]]] = {}
        if self.skip("("):
            while not self.skip(")"):
                loc = self.expect("$").loc
                name = self.name()
                self.expect(":")
                ref = self.type_ref()
                default = self.value(const=True) if self.skip("=") else _ABSENT
                out[name] = (ref, default, loc)
        return out

    def type_ref(self) -> TypeRef:
        ref = TypeRef(of=self.type_ref()) if self.skip("[") else TypeRef(name=self.name())
        if ref.of is not None:
            self.expect("]")
        ref.non_null = self.skip("!")
        return ref

    def selection_set(self) -> list[Any]:
        self.expect("{")
        out: list[Any] = []
        while not self.skip("}"):
            loc = self.tok.loc
            if self.skip("..."):
                if self.skip("on"):
                    out.append(Fragment(self.name(), self.selection_set(), loc=loc))
                elif self.peek("{"):
                    out.append(Fragment(None, self.selection_set(), loc=loc))
                else:
                    out.append(Fragment(None, [], spread=self.name(), loc=loc))
                continue
            alias = name = self.name()
            if self.skip(":"):
                name = self.name()
            args, arg_locs = {}, {}
            if self.skip("("):
                while not self.skip(")"):
                    arg_locs[key := self.name()] = self.toks[self.i - 1].loc
                    self.expect(":")
                    args[key] = self.value(const=False)
            subs = self.selection_set() if self.peek("{") else []
            out.append(Field(name, alias, args, subs, loc, arg_locs))
        return out

    def value(self, *, const: bool) -> Any:
        t = self.tok
        if t.kind == "punct" and t.value == "$" and not const:
            self.next()
            return _Var(self.name(), t.loc)
        if self.skip("["):
            items = []
            while not self.skip("]"):
                items.append(self.value(const=const))
            return items
        if self.skip("{"):
            obj = {}
            while not self.skip("}"):
                key = self.name()
                self.expect(":")
                obj[key] = self.value(const=const)
            return obj
        self.next()
        if t.kind == "str":
            return t.value
        if t.kind == "num":
            return float(t.value) if re.search(r"[.eE]", t.value) else int(t.value)
        if t.kind == "name":
            return {"true": True, "false": False, "null": None}.get(t.value, _Enum(t.value))
        self.i -= 1
        self.fail(f"Unexpected {self._found()}")

    # SDL
    def sdl(self) -> dict[str, _TypeDef]:
        types: dict[str, _TypeDef] = {}
        while self.tok.kind != "eof":
            kind = self.name()
            name = self.name()
            if kind == "scalar":
                types[name] = _TypeDef("scalar", name)
            elif kind == "enum":
                self.expect("{")
                values = []
                while not self.skip("}"):
                    values.append(self.name())
                types[name] = _TypeDef("enum", name, values=values)
            else:
                td = _TypeDef("object" if kind == "type" else "input", name)
                self.expect("{")
                while not self.skip("}"):
                    fname = self.name()
                    args = self.variable_like_args()
                    self.expect(":")
                    td.fields[fname] = (self.type_ref(), args)
                types[name] = td
        return types

    def variable_like_args(self) -> dict[str, TypeRef]:
        args: dict[str, TypeRef] = {}
        if self.skip("("):
            while not self.skip(")"):
                key = self.name()
                self.expect(":")
                args[key] = self.type_ref()
                if self.skip("="):
                    self.value(const=True)  # SDL defaults live in the resolvers' signatures
        return args


@dataclass
class _Var:
    name: str
    loc: tuple[int, int]


@dataclass
class _Enum:
    value: str


_ABSENT: Any = object()
_OPERATIONS = ("query", "mutation", "subscription")


@dataclass
class _TypeDef:
    kind: str
    name: str
    fields: dict[str, tuple[TypeRef, dict[str, TypeRef]]] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)


Resolver = Callable[..., Any]


class Schema:
    """A schema built from SDL, able to execute documents with resolvers.

    ``resolvers`` maps ``"Query.field"``/``"Mutation.field"`` to ``fn(context, **args)``; nested
    values are dicts keyed by schema field name (a callable value is called with the field's
    arguments, which lets objects resolve lazily).
    """

    def __init__(self, sdl: str, resolvers: Mapping[str, Resolver]) -> None:
        self.types = _Parser(sdl).sdl()
        self.resolvers = dict(resolvers)

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        context: Any = None,
    ) -> tuple[int, dict[str, Any]]:
        """Run one request; returns ``(http_status, body)`` the way gqlgen answers it."""
        from krtlab.deploy.standin.gql_exec import execute

        return execute(self, query, dict(variables or {}), operation_name, context)

    def parse(self, query: str) -> tuple[list[Operation], dict[str, Fragment]]:
        """Parse an executable document (raises :class:`GraphQLError` with a location)."""
        return _Parser(query).document()
