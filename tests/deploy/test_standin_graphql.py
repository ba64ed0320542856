"""The stand-in's GraphQL parser and executor: gqlgen's answers for the schema subset KRE needs."""

from __future__ import annotations

from typing import Any

import pytest

from krtlab.deploy.standin.graphql import GraphQLError, Schema

SDL = """
type Query {
  thing(name: String!, kind: Kind = BIG): Thing!
  maybe(name: String): Thing
  things(names: [String!]): [Thing!]!
}
type Mutation { make(input: MakeInput!): Thing! }
input MakeInput { name: String! tags: [String!] kind: Kind }
enum Kind { BIG SMALL }
type Thing { name: String! kind: Kind! tags: [String!]! child: Thing size: Int }
"""


def _thing(name: str, kind: str = "BIG", tags: list[str] | None = None) -> dict[str, Any]:
    if name == "boom":
        raise ValueError("error thing not found")
    return {"name": name, "kind": kind, "tags": tags or [], "size": None,
            "child": lambda: {"name": name + "-child", "kind": "SMALL", "tags": [],
                              "child": None, "size": 1}}  # fmt: skip


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema(
        SDL,
        {
            "Query.thing": lambda ctx, name, kind="BIG": _thing(name, kind),
            "Query.maybe": lambda ctx, name=None: _thing(name or "boom"),
            "Query.things": lambda ctx, names=None: [_thing(n) for n in names or []],
            "Mutation.make": lambda ctx, input: _thing(
                input["name"], input.get("kind") or "BIG", input.get("tags")
            ),
        },
    )


def test_returns_only_selected_fields_with_aliases_and_typename(schema: Schema) -> None:
    status, body = schema.execute(
        '{ a: thing(name: "x") { name __typename child { n: name } } b: thing(name: "y") { kind } }'
    )
    assert status == 200
    assert body == {
        "data": {
            "a": {"name": "x", "__typename": "Thing", "child": {"n": "x-child"}},
            "b": {"kind": "BIG"},
        }
    }


def test_named_operation_variables_defaults_enums_and_input_objects(schema: Schema) -> None:
    query = """
    query Q($n: String!, $k: Kind = SMALL) { thing(name: $n, kind: $k) { name kind } }
    mutation M($input: MakeInput!) { make(input: $input) { name kind tags } }
    """
    status, body = schema.execute(query, {"n": "v"}, "Q")
    assert (status, body) == (200, {"data": {"thing": {"name": "v", "kind": "SMALL"}}})
    variables = {"input": {"name": "m", "tags": ["a", "b"], "kind": "SMALL"}}
    status, body = schema.execute(query, variables, "M")
    assert body == {"data": {"make": {"name": "m", "kind": "SMALL", "tags": ["a", "b"]}}}
    # literal input objects, lists and enums
    status, body = schema.execute(
        'mutation { make(input: {name: "l", tags: ["t"], kind: BIG}) { tags kind } }'
    )
    assert body == {"data": {"make": {"tags": ["t"], "kind": "BIG"}}}


def test_fragments_and_lists(schema: Schema) -> None:
    status, body = schema.execute(
        'query { things(names: ["a", "b"]) { ...F ... on Thing { kind } } } '
        "fragment F on Thing { name }"
    )
    assert body == {
        "data": {"things": [{"name": "a", "kind": "BIG"}, {"name": "b", "kind": "BIG"}]}
    }


def test_unknown_field_is_a_validation_error_with_location(schema: Schema) -> None:
    status, body = schema.execute('{\n  thing(name: "x") {\n    nam\n  }\n}')
    assert status == 422
    assert body == {
        "errors": [
            {
                "message": 'Cannot query field "nam" on type "Thing".',
                "locations": [{"line": 3, "column": 5}],
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
        ],
        "data": None,
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ thing(name: "x", colour: "red") { name } }',
         'Unknown argument "colour" on field "Query.thing".'),
        ("{ thing { name } }",
         'Field "thing" argument "name" of type "String!" is required, but it was not provided.'),
        ('{ thing(name: "x") }',
         'Field "thing" of type "Thing!" must have a selection of subfields. Did you mean '
         '"thing { ... }"?'),
        ('{ thing(name: "x") { name { x } } }',
         'Field "name" must not have a selection since type "String!" has no subfields.'),
        ('{ thing(name: "x", kind: HUGE) { name } }', "Expected type Kind, found HUGE."),
        ("{ thing(name: $n) { name } }", 'Variable "$n" is not defined.'),
        ('mutation { make(input: {nam: "x"}) { name } }',
         'Field "nam" is not defined by type "MakeInput".'),
    ],
)  # fmt: skip
def test_validation_messages(schema: Schema, query: str, message: str) -> None:
    status, body = schema.execute(query)
    assert status == 422
    assert message in [e["message"] for e in body["errors"]]
    assert body["data"] is None


def test_parse_error(schema: Schema) -> None:
    status, body = schema.execute("{ thing(name: ) }")
    assert status == 422
    assert body["errors"][0]["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 15}]


def test_variable_coercion_errors(schema: Schema) -> None:
    q = "mutation M($input: MakeInput!) { make(input: $input) { name } }"
    assert schema.execute(q, {})[1]["errors"][0] == {
        "message": "must be defined",
        "path": ["variable", "input"],
        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
    }
    body = schema.execute(q, {"input": {"name": "x", "colour": 1}})[1]
    assert body["errors"][0]["message"] == "unknown field"
    assert body["errors"][0]["path"] == ["variable", "input", "colour"]
    body = schema.execute(q, {"input": {}})[1]
    assert body["errors"][0]["path"] == ["variable", "input", "name"]


def test_resolver_error_non_null_root_nulls_data(schema: Schema) -> None:
    status, body = schema.execute('{ thing(name: "boom") { name } }')
    assert status == 200
    assert body == {"errors": [{"message": "error thing not found", "path": ["thing"]}],
                    "data": None}  # fmt: skip


def test_resolver_error_in_nullable_field_keeps_the_rest(schema: Schema) -> None:
    status, body = schema.execute('{ maybe { name } thing(name: "ok") { name size } }')
    assert body["data"] == {"maybe": None, "thing": {"name": "ok", "size": None}}
    assert body["errors"] == [{"message": "error thing not found", "path": ["maybe"]}]


def test_graphql_error_extensions_pass_through() -> None:
    def fail(ctx: Any, name: str, kind: str = "BIG") -> None:
        raise GraphQLError("bad", extensions={"code": "krt_validation_error", "details": "d"})

    s = Schema(SDL, {"Query.thing": fail})
    body = s.execute('{ thing(name: "x") { name } }')[1]
    assert body["errors"] == [
        {"message": "bad", "path": ["thing"],
         "extensions": {"code": "krt_validation_error", "details": "d"}}
    ]  # fmt: skip
