"""Validation and execution for :mod:`krtlab.deploy.standin.graphql` (gqlgen's semantics)."""

from __future__ import annotations

from typing import Any

from krtlab.deploy.standin.graphql import (
    _ABSENT,
    Field,
    Fragment,
    GraphQLError,
    Operation,
    Schema,
    TypeRef,
    _Enum,
    _Var,
)

__all__ = ["execute"]

_BUILTIN = {"String", "ID", "Int", "Float", "Boolean"}
_VALIDATION = {"code": "GRAPHQL_VALIDATION_FAILED"}


def _fail(status_errors: list[GraphQLError], code: str = "GRAPHQL_VALIDATION_FAILED") -> tuple:
    for e in status_errors:
        e.extensions.setdefault("code", code)
    return 422, {"errors": [e.to_dict() for e in status_errors], "data": None}


def execute(
    schema: Schema, query: str, variables: dict[str, Any], op_name: str | None, context: Any
) -> tuple[int, dict[str, Any]]:
    try:
        ops, frags = schema.parse(query)
    except GraphQLError as exc:
        return _fail([exc], "GRAPHQL_PARSE_FAILED")
    if op_name:
        chosen = [o for o in ops if o.name == op_name]
        if not chosen:
            return _fail([GraphQLError(f'Unknown operation named "{op_name}".')])
    elif len(ops) != 1:
        return _fail([GraphQLError("operation name is required" if ops else "no operation")])
    else:
        chosen = ops
    op = chosen[0]
    errors = _Validator(schema, frags, op).run()
    if errors:
        return _fail(errors)
    values, errors = _coerce_variables(schema, op, variables)
    if errors:
        return _fail(errors)
    return 200, _Executor(schema, frags, values, context).run(op)


def _named(ref: TypeRef) -> str:
    while ref.of is not None:
        ref = ref.of
    return ref.name or ""


def _show(value: Any) -> str:
    if isinstance(value, _Enum):
        return value.value
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class _Validator:
    def __init__(self, schema: Schema, frags: dict[str, Fragment], op: Operation) -> None:
        self.schema, self.frags, self.op = schema, frags, op
        self.errors: list[GraphQLError] = []

    def run(self) -> list[GraphQLError]:
        root = {"query": "Query", "mutation": "Mutation"}.get(self.op.kind)
        if root is None:
            return [GraphQLError(f"{self.op.kind}s are not supported over HTTP POST")]
        self.selections(self.op.selections, root)
        return self.errors

    def err(self, message: str, loc: tuple[int, int] | None) -> None:
        self.errors.append(GraphQLError(message, loc=loc))

    def selections(self, sels: list[Any], parent: str) -> None:
        for sel in sels:
            if isinstance(sel, Fragment):
                frag = self.frags.get(sel.spread) if sel.spread else sel
                if frag is None:
                    self.err(f'Unknown fragment "{sel.spread}".', sel.loc)
                elif frag.type_condition not in (None, parent):
                    self.err(
                        f'Fragment cannot be spread here as objects of type "{parent}" can '
                        f'never be of type "{frag.type_condition}".',
                        sel.loc,
                    )
                else:
                    self.selections(frag.selections, parent)
            else:
                self.field(sel, parent)

    def field(self, f: Field, parent: str) -> None:
        if f.name == "__typename":
            return
        fdef = self.schema.types[parent].fields.get(f.name)
        if fdef is None:
            self.err(f'Cannot query field "{f.name}" on type "{parent}".', f.loc)
            return
        ref, args = fdef
        for key, value in f.args.items():
            if key not in args:
                self.err(f'Unknown argument "{key}" on field "{parent}.{f.name}".', f.arg_locs[key])
            else:
                self.literal(value, args[key], f.arg_locs[key])
        for key, aref in args.items():
            if aref.non_null and key not in f.args:
                self.err(
                    f'Field "{f.name}" argument "{key}" of type "{aref}" is required, but it '
                    "was not provided.",
                    f.loc,
                )
        tdef = self.schema.types.get(_named(ref))
        composite = tdef is not None and tdef.kind == "object"
        if composite and not f.selections:
            self.err(
                f'Field "{f.name}" of type "{ref}" must have a selection of subfields. Did you '
                f'mean "{f.name} {{ ... }}"?',
                f.loc,
            )
        elif not composite and f.selections:
            self.err(
                f'Field "{f.name}" must not have a selection since type "{ref}" has no subfields.',
                f.loc,
            )
        elif composite:
            self.selections(f.selections, _named(ref))

    def literal(self, value: Any, ref: TypeRef, loc: tuple[int, int]) -> None:
        if isinstance(value, _Var):
            if value.name not in self.op.variables:
                self.err(f'Variable "${value.name}" is not defined.', value.loc)
            return
        if value is None:
            if ref.non_null:
                self.err(f"Expected type {ref}, found null.", loc)
            return
        if ref.of is not None:
            for item in value if isinstance(value, list) else [value]:
                self.literal(item, ref.of, loc)
            return
        tdef = self.schema.types.get(ref.name or "")
        ok = _literal_ok(value, ref.name or "", tdef)
        if not ok:
            self.err(f"Expected type {ref}, found {_show(value)}.", loc)
        elif tdef is not None and tdef.kind == "input":
            for key, item in value.items():
                if key not in tdef.fields:
                    self.err(f'Field "{key}" is not defined by type "{tdef.name}".', loc)
                else:
                    self.literal(item, tdef.fields[key][0], loc)
            for key, (fref, _) in tdef.fields.items():
                if fref.non_null and key not in value:
                    self.err(
                        f'Field "{tdef.name}.{key}" of required type "{fref}" was not provided.',
                        loc,
                    )


def _literal_ok(value: Any, name: str, tdef: Any) -> bool:
    if tdef is not None and tdef.kind == "enum":
        return isinstance(value, _Enum) and value.value in tdef.values
    if tdef is not None and tdef.kind == "input":
        return isinstance(value, dict)
    if isinstance(value, (_Enum, dict, list)):
        return False
    if name in ("String", "ID"):
        return isinstance(value, str) or (name == "ID" and type(value) is int)
    if name == "Int":
        return type(value) is int
    if name == "Float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "Boolean":
        return isinstance(value, bool)
    return True  # custom scalars (Upload) accept any literal


def _coerce_variables(
    schema: Schema, op: Operation, given: dict[str, Any]
) -> tuple[dict[str, Any], list[GraphQLError]]:
    values: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    for name, (ref, default, _loc) in op.variables.items():
        if name in given:
            value = given[name]
        elif default is not _ABSENT:
            value = _plain(default)
        elif ref.non_null:
            errors.append(GraphQLError("must be defined", path=["variable", name]))
            continue
        else:
            continue
        problem = _coerce(schema, value, ref, ["variable", name])
        if problem:
            errors.append(problem)
        values[name] = value
    return values, errors


def _coerce(schema: Schema, value: Any, ref: TypeRef, path: list[str | int]) -> GraphQLError | None:
    if value is None:
        return GraphQLError("must not be null", path=path) if ref.non_null else None
    if ref.of is not None:
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            problem = _coerce(schema, item, ref.of, [*path, i])
            if problem:
                return problem
        return None
    tdef = schema.types.get(ref.name or "")
    if tdef is not None and tdef.kind == "input":
        if not isinstance(value, dict):
            return GraphQLError(f"must be a {tdef.name}", path=path)
        for key in value:
            if key not in tdef.fields:
                return GraphQLError("unknown field", path=[*path, key])
        for key, (fref, _) in tdef.fields.items():
            if key not in value:
                if fref.non_null:
                    return GraphQLError("must be defined", path=[*path, key])
                continue
            problem = _coerce(schema, value[key], fref, [*path, key])
            if problem:
                return problem
        return None
    if tdef is not None and tdef.kind == "enum":
        ok = value in tdef.values
    elif ref.name in _BUILTIN:
        ok = _literal_ok(value, ref.name, None) or (ref.name == "Float" and type(value) is int)
    else:
        ok = True
    kind = type(value).__name__
    return None if ok else GraphQLError(f"cannot use {kind} as {ref.name}", path=path)


def _plain(value: Any) -> Any:
    if isinstance(value, _Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Null(Exception):
    """A non-null field resolved to null; propagates to the nearest nullable parent."""


class _Executor:
    def __init__(
        self, schema: Schema, frags: dict[str, Fragment], values: dict[str, Any], context: Any
    ) -> None:
        self.schema, self.frags, self.values, self.context = schema, frags, values, context
        self.errors: list[GraphQLError] = []

    def run(self, op: Operation) -> dict[str, Any]:
        root = "Query" if op.kind == "query" else "Mutation"
        try:
            data: Any = self.object(None, root, op.selections, [], top=True)
        except _Null:
            data = None
        body: dict[str, Any] = {}
        if self.errors:
            body["errors"] = [e.to_dict() for e in self.errors]
        body["data"] = data
        return body

    def args(self, f: Field) -> dict[str, Any]:
        def sub(v: Any) -> Any:
            if isinstance(v, _Var):
                return self.values.get(v.name)
            if isinstance(v, list):
                return [sub(x) for x in v]
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            return v.value if isinstance(v, _Enum) else v

        return {k: sub(v) for k, v in f.args.items()}

    def fields(self, sels: list[Any]) -> list[Field]:
        out: list[Field] = []
        for sel in sels:
            if isinstance(sel, Fragment):
                frag = self.frags[sel.spread] if sel.spread else sel
                out += self.fields(frag.selections)
            else:
                out.append(sel)
        return out

    def object(
        self, obj: Any, tname: str, sels: list[Any], path: list[Any], top: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields(sels):
            if f.alias in out:
                continue  # merged duplicate selections
            if f.name == "__typename":
                out[f.alias] = tname
                continue
            ref = self.schema.types[tname].fields[f.name][0]
            fpath = [*path, f.alias]
            try:
                if top:
                    value = self.schema.resolvers[f"{tname}.{f.name}"](self.context, **self.args(f))
                else:
                    value = obj.get(f.name) if isinstance(obj, dict) else getattr(obj, f.name)
                    if callable(value):
                        value = value(**self.args(f))
            except Exception as exc:  # a resolver error becomes a GraphQL error, like gqlgen
                err = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc))
                err.path, err.loc = fpath, None
                self.errors.append(err)
                if ref.non_null:
                    raise _Null from None
                out[f.alias] = None
                continue
            try:
                out[f.alias] = self.complete(value, ref, f, fpath)
            except _Null:
                if ref.non_null:
                    raise
                out[f.alias] = None
        return out

    def complete(self, value: Any, ref: TypeRef, f: Field, path: list[Any]) -> Any:
        if value is None:
            if ref.non_null:
                self.errors.append(GraphQLError("must not be null", path=path))
                raise _Null
            return None
        if ref.of is not None:
            out = []
            for i, item in enumerate(value):
                try:
                    out.append(self.complete(item, ref.of, f, [*path, i]))
                except _Null:
                    if ref.non_null:
                        raise
                    return None
            return out
        tdef = self.schema.types.get(ref.name or "")
        if tdef is not None and tdef.kind == "object":
            return self.object(value, tdef.name, f.selections, path)
        return value
