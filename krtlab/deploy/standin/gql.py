"""The admin API's GraphQL: graphql-core parses, validates and executes; the answers are framed
the way KRE's server frames them: gqlgen v0.17.4 on gqlparser v2.4.2 in KRE 7, v0.11.3 on
gqlparser v2.0.1 in KRE 3 (``GraphQLApi(..., gqlgen=)``, :data:`GQLGEN_VERSIONS`).

- A syntax error: HTTP 422, ``extensions.code`` ``GRAPHQL_PARSE_FAILED``, gqlparser's text
  (``Unexpected )``, ``Expected Name, found <EOF>``) and ``locations``.
- A document the schema refuses: 422, ``GRAPHQL_VALIDATION_FAILED``, every error in gqlparser's
  words (``Cannot query field "x" on type "Query".``) with ``locations``.
- Variables that do not fit: 422, ``GRAPHQL_VALIDATION_FAILED``, the first problem only, in
  gqlparser's terse words with a ``path`` such as ``["variable", "input", "runtimeId"]``
  (``must be defined``, ``cannot be null``, ``unknown field``, ``cannot use bool as String``).
- ``operationName`` naming no operation: 200, ``operation X not found`` (gqlgen sets no code).
- A resolver error: 200, ``message`` and ``path`` (and the resolver's ``extensions``), no
  ``locations``; a non-null field's error nulls its parent, up to ``data: null``.
- Enum values are written as the resolvers give them, unchecked, as gqlgen writes Go strings:
  KRE 7 answers ``""`` for a node's status in queries.

gqlparser v2.0.1 (KRE 3) words several refusals differently (``Unknown argument "runtimeId" on
field "version" of type "Query".``, ``is required but not provided.``, ``Expected type ID!, found
true.``) and does not make a list of a single value given for a list variable (``must be an
array``); gqlgen v0.11.3 says ``must not be null`` for a null in a non-null place. Locations
follow graphql-core in both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    Visitor,
    build_schema,
    execute_sync,
    get_named_type,
    get_nullable_type,
    is_non_null_type,
    parse,
    print_ast,
    type_from_ast,
    validate,
    visit,
)
from graphql.language import ast as gast
from graphql.utilities import coerce_input_value

__all__ = ["GQLGEN_VERSIONS", "GraphQLApi", "GraphQLError"]

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
NULL_NOT_ALLOWED = "the requested element is null which the schema does not allow"
GQLGEN_VERSIONS = {"0.17.4": "2.4.2", "0.11.3": "2.0.1"}  # gqlgen -> its gqlparser in KRE 7, 3

Resolver = Callable[..., Any]
Answer = tuple[int, dict[str, Any]]


class GraphQLApi:
    """A schema from SDL with its root resolvers, executing requests as gqlgen answers them.

    ``resolvers`` maps every ``"Query.<field>"``/``"Mutation.<field>"`` of the SDL to
    ``fn(context, **arguments)``. Below the root, values are dicts keyed by field name; a callable
    value is called with the field's arguments (a field resolved only when selected).
    ``gqlgen`` is the server version whose answers it gives (a key of :data:`GQLGEN_VERSIONS`).
    """

    def __init__(
        self, sdl: str, resolvers: Mapping[str, Resolver], *, gqlgen: str = "0.17.4"
    ) -> None:
        if gqlgen not in GQLGEN_VERSIONS:
            raise ValueError(f"gqlgen {gqlgen!r}: use one of {', '.join(GQLGEN_VERSIONS)}")
        self.gqlgen, self.gqlparser = gqlgen, GQLGEN_VERSIONS[gqlgen]
        self.schema = schema = build_schema(sdl)
        roots = {"Query": schema.query_type, "Mutation": schema.mutation_type}
        missing = {f"{t}.{f}" for t, obj in roots.items() if obj for f in obj.fields}
        for key, fn in resolvers.items():
            type_name, field = key.split(".")
            obj = roots.get(type_name)
            if obj is None or field not in obj.fields:
                raise ValueError(f"{key} is not a root field of the schema")
            obj.fields[field].resolve = _root(fn)
            missing.discard(key)
        if missing:
            raise ValueError(f"no resolver for {', '.join(sorted(missing))}")
        for named in schema.type_map.values():
            if isinstance(named, GraphQLEnumType) and not named.name.startswith("__"):
                named.serialize = _as_written  # type: ignore[assignment]  # answer as written

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        context: Any = None,
    ) -> Answer:
        """Run one request; returns ``(http_status, body)`` as KRE's server would."""
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            return _refused([_located(_parse_text(exc.message), exc, PARSE_FAILED)])
        errors = validate(self.schema, document)
        if errors:
            texts = [_validation_text(e.message) for e in errors]
            if self.gqlparser == "2.0.1":
                types = _input_types(self.schema, document)
                texts = [_gqlparser_2_0_text(*te, types) for te in zip(texts, errors, strict=True)]
            return _refused([_located(t, e) for t, e in zip(texts, errors, strict=True)])
        operation = _operation(document, operation_name or "")
        if operation is None:
            return 200, {"errors": [{"message": f"operation {operation_name or ''} not found"}],
                         "data": None}  # fmt: skip
        values = dict(variables or {})
        problem = self._variable_problem(operation, values)
        if problem is not None:
            return _refused([problem])
        name = operation.name.value if operation.name else None
        result = execute_sync(
            self.schema, document, context_value=context, variable_values=values,
            operation_name=name, field_resolver=_field,
        )  # fmt: skip
        body: dict[str, Any] = {}
        if result.errors:
            null = NULL_NOT_ALLOWED if self.gqlgen == "0.17.4" else "must not be null"
            body["errors"] = [_resolver_error(e, null) for e in result.errors]
        body["data"] = result.data
        return 200, body

    def _variable_problem(
        self, operation: OperationDefinitionNode, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """gqlparser's ``VariableValues``: the first variable that does not fit, or None."""
        for definition in operation.variable_definitions:
            name = definition.variable.name.value
            path: list[str | int] = ["variable", name]
            type_ = type_from_ast(self.schema, definition.type)
            if name not in values:
                if definition.default_value is None and is_non_null_type(type_):
                    return _at(path, "must be defined")
                continue
            if values[name] is None:
                if is_non_null_type(type_):
                    return _at(path, "cannot be null")
                continue
            if self.gqlparser == "2.0.1":  # no single value made a list: "must be an array"
                not_list = _not_an_array(values[name], type_, path)  # type: ignore[arg-type]
                if not_list is not None:
                    return _at(not_list, "must be an array")
            found = _coercion_errors(values[name], type_)  # type: ignore[arg-type]
            if found:
                return _variable_error(path, type_, found)  # type: ignore[arg-type]
        return None


# -- execution ----------------------------------------------------------------------------------


def _root(fn: Resolver) -> Resolver:
    return lambda _root, info, **args: fn(info.context, **args)


def _field(source: Any, info: Any, **args: Any) -> Any:
    value = (
        source.get(info.field_name)
        if isinstance(source, Mapping)
        else getattr(source, info.field_name, None)
    )
    return value(**args) if callable(value) else value


def _as_written(value: Any) -> Any:
    return value if isinstance(value, str) else str(value)


def _operation(document: DocumentNode, name: str) -> OperationDefinitionNode | None:
    """gqlparser's ``OperationList.ForName``: the only operation, or the one with that name."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not name and len(ops) == 1:
        return ops[0]
    return next((op for op in ops if (op.name.value if op.name else "") == name), None)


def _resolver_error(error: GraphQLError, null_message: str) -> dict[str, Any]:
    message = error.message
    if message.startswith("Cannot return null for non-nullable field"):
        message = null_message
    out: dict[str, Any] = {"message": message}
    if error.path is not None:
        out["path"] = list(error.path)
    if error.extensions:
        out["extensions"] = dict(error.extensions)
    return out


# -- refusals before execution ------------------------------------------------------------------


def _refused(errors: list[dict[str, Any]]) -> Answer:
    return 422, {"errors": errors, "data": None}


def _located(message: str, error: GraphQLError, code: str = VALIDATION_FAILED) -> dict[str, Any]:
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    out["extensions"] = {"code": code}
    return out


def _at(path: list[str | int], message: str) -> dict[str, Any]:
    return {"message": message, "path": path, "extensions": {"code": VALIDATION_FAILED}}


Found = list[tuple[list[str | int], Any, GraphQLError]]


def _coercion_errors(value: Any, type_: GraphQLInputType) -> Found:
    """What graphql-core finds wrong with a variable's value: (where, the value there, error)."""
    found: Found = []
    coerce_input_value(value, type_, lambda where, bad, error: found.append((where, bad, error)))
    return found


_REQUIRED = re.compile(r"Field '(\w+)' of required type '[^']*' was not provided\.")
_UNKNOWN = re.compile(r"Field '(\w+)' is not defined by type '\w+'\.")


def _variable_error(path: list[str | int], type_: GraphQLInputType, found: Found) -> dict[str, Any]:
    """One of graphql-core's coercion errors in gqlparser's words (it checks an object's unknown
    fields before its own fields, and stops at the first problem)."""
    unknown = [f for f in found if _UNKNOWN.match(f[2].message)]
    where, value, error = min(unknown, key=lambda f: len(f[0])) if unknown else found[0]
    at = [*path, *where]
    for pattern, text in ((_REQUIRED, "must be defined"), (_UNKNOWN, "unknown field")):
        m = pattern.match(error.message)
        if m:
            return _at([*at, m[1]], text)
    expected: Any = type_
    for key in where:  # the type at ``where``
        expected = get_nullable_type(expected)
        if isinstance(expected, GraphQLList):
            expected = expected.of_type
        if isinstance(key, str) and isinstance(expected, GraphQLInputObjectType):
            expected = expected.fields[key].type
    named = get_named_type(expected)
    if value is None:
        return _at(at, "cannot be null")
    if isinstance(named, GraphQLInputObjectType):
        return _at(at, f"must be a {named.name}")
    if isinstance(named, GraphQLEnumType):
        text = f"{value} is not a valid {named.name}"
        return _at(at, text if isinstance(value, str) else "enums must be ints or strings")
    return _at(at, f"cannot use {_go_kind(value)} as {named.name}")


def _go_kind(value: Any) -> str:
    """The reflect kind Go's JSON decoding gives ``value``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    go: dict[type, str] = {str: "string", dict: "map", list: "slice"}
    return go.get(type(value), type(value).__name__)


# graphql-core 3.2 quotes names with ', gqlparser with "; its few other differences are below
_QUOTED = re.compile(r"'([^'\s]+)'")
_TOKEN = re.compile(r"(\w+) '(.*)'")


def _validation_text(message: str) -> str:
    text = re.sub(r" Did you mean '[^']* \{ \.\.\. \}'\?$", "", message)  # ScalarLeafs
    text = re.sub(r" Did you mean the enum value '[^']*'\?$", "", text)  # ValuesOfCorrectType
    return _QUOTED.sub(r'"\1"', text)


# gqlparser v2.0.1 (KRE 3): the same refusals in its older words
_V2_0_TEXTS = [
    (r'^Unknown argument "(\w+)" on field "(\w+)\.(\w+)"\.',
     r'Unknown argument "\1" on field "\3" of type "\2".'),
    (r" is required, but it was not provided\.$", " is required but not provided."),
    (r'^Field "(\w+)\.(\w+)" of required type "([^"]+)" was not provided\.$',
     r"Field \1.\2 of required type \3 was not provided."),
    (r'^(Unknown directive |Directive |The directive )"@(\w+)"', r'\1"\2"'),
    (r'^(There can be only one variable named )"\$(\w+)"', r'\1"\2"'),
    (r'"(\w+)" and "(\w+)" are different fields', r"\1 and \2 are different fields"),
    (r'they return conflicting types "([^"]+)" and "([^"]+)"',
     r"they return conflicting types \1 and \2"),
]  # fmt: skip
_NOT_DEFINED = re.compile(
    r'^(Field "\w+" is not defined by type )"(\w+)"\.(?: Did you mean (.+)\?)?$'
)
_CYCLE = re.compile(r'^(Cannot spread fragment "\w+" within itself) via (.+)\.$')


def _gqlparser_2_0_text(text: str, error: GraphQLError, types: dict[int, Any]) -> str:
    """A refusal (in gqlparser v2.4.2's words) in gqlparser v2.0.1's words."""
    node = error.nodes[0] if error.nodes else None
    if (
        isinstance(node, ValueNode)
        and not isinstance(node, gast.VariableNode)
        and id(node) in types
        and not text.startswith("Field ")
    ):  # ValuesOfCorrectType: one message for every value that does not fit its place
        return f"Expected type {types[id(node)]}, found {_go_value(node)}."
    for pattern, replacement in _V2_0_TEXTS:
        text = re.sub(pattern, replacement, text)
    m = _NOT_DEFINED.match(text)
    if m:  # the type and the suggestions unquoted
        hint = " Did you mean " + m[3].replace('"', "") + "?" if m[3] else ""
        return f"{m[1]}{m[2]}.{hint}"
    m = _CYCLE.match(text)
    return m[1] + " via " + m[2].replace('"', "") + "." if m else text


def _input_types(schema: GraphQLSchema, document: DocumentNode) -> dict[int, Any]:
    """The input type expected at every value of ``document`` (by ``id`` of the value node)."""
    info, types = TypeInfo(schema), {}

    class Expected(Visitor):
        def enter(self, node: Any, *_: Any) -> None:
            if not isinstance(node, ValueNode):
                return
            if isinstance(node, gast.ListValueNode):  # its item type is already entered
                expected = info.get_parent_input_type()
            else:
                expected = info.get_input_type()
            if expected is not None:
                types[id(node)] = expected

    visit(document, TypeInfoVisitor(info, Expected()))
    return types


def _go_value(node: ValueNode) -> str:
    """gqlparser's ``Value.String()``: ``"text"``, ``[1,2]``, ``{key:"a"}``, ``$name``."""
    if isinstance(node, gast.VariableNode):
        return "$" + node.name.value
    if isinstance(node, gast.StringValueNode):
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, gast.ListValueNode):
        return "[" + ",".join(_go_value(v) for v in node.values) + "]"
    if isinstance(node, gast.ObjectValueNode):
        return "{" + ",".join(f"{f.name.value}:{_go_value(f.value)}" for f in node.fields) + "}"
    return print_ast(node)


_OTHER = "another problem"


def _not_an_array(value: Any, type_: GraphQLInputType, path: list[str | int]) -> Any:
    """gqlparser v2.0.1's ``validateVarType`` walk up to the first problem it meets: the path of
    a list type given something else than a list, else None (no such problem comes first)."""
    found = _walk_v2_0(value, type_, path)
    return None if found is _OTHER else found


def _walk_v2_0(value: Any, type_: GraphQLInputType, path: list[str | int]) -> Any:
    if value is None:
        return _OTHER if is_non_null_type(type_) else None
    nullable = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(nullable, GraphQLList):
        if not isinstance(value, list):
            return path
        for i, item in enumerate(value):
            found = _walk_v2_0(item, nullable.of_type, [*path, i])
            if found is not None:
                return found
        return None
    if isinstance(nullable, GraphQLInputObjectType):
        if not isinstance(value, dict) or any(k not in nullable.fields for k in value):
            return _OTHER  # "must be a X" or "unknown field", checked before the fields
        for name, field in nullable.fields.items():
            if name not in value:
                if is_non_null_type(field.type):
                    return _OTHER  # "must be defined"
                continue
            found = _walk_v2_0(value[name], field.type, [*path, name])
            if found is not None:
                return found
        return None
    return _OTHER if _coercion_errors(value, type_) else None


def _parse_text(message: str) -> str:
    """A graphql-core syntax error in gqlparser's words: ``Syntax Error: Unexpected ')'.`` is
    ``Unexpected )``, ``Expected Name, found Int '2'.`` is ``Expected Name, found Int``."""
    text = message.removeprefix("Syntax Error: ")
    m = re.fullmatch(r"Unexpected character: '(.+)'\.", text)
    if m:
        return f'Cannot parse the unexpected character "{m[1]}".'
    m = re.fullmatch(r"(Expected|Unexpected) (.+?)(?:, found (.+))?\.", text)
    if m is None:
        return text
    word, what, found = m.groups()
    if word == "Unexpected" or found is None:
        return f"{word} {_token(what)}"
    keyword = re.fullmatch(r"'(\w+)'", what)
    if keyword:  # gqlparser's expectKeyword names the token found; expect(kind) only its kind
        return f'Expected "{keyword[1]}", found {_token(found)}'
    return f"Expected {_token(what)}, found {_token(found).split(' ', 1)[0]}"


def _token(description: str) -> str:
    m = _TOKEN.fullmatch(description)
    if m:  # Name 'x', Int '2'
        return f'{m[1]} "{m[2]}"'
    m = re.fullmatch(r"'(.*)'", description)  # a punctuator
    return m[1] if m else description
