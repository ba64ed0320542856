"""The stand-in's GraphQL over HTTP, as krtlab's client speaks it: KRE 7's schema executed by
graphql-core, every refusal in the shape and words of KRE's gqlgen server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from krtlab.deploy.kai import KaiServer
from krtlab.deploy.standin import LocalKai
from krtlab.errors import DeployError
from tests.deploy.test_standin_kai import _http

VALIDATION = {"code": "GRAPHQL_VALIDATION_FAILED"}
START = "mutation StartVersion($input: StartVersionInput!) { startVersion(input: $input) { name } }"


@pytest.fixture(scope="module")
def kai() -> Iterator[LocalKai]:
    with LocalKai(kube=False) as k:
        yield k


@pytest.fixture(scope="module")
def client(kai: LocalKai) -> KaiServer:
    return KaiServer(kai.url, api_token=kai.api_token)


@pytest.fixture(scope="module")
def post(kai: LocalKai, client: KaiServer) -> Any:
    """POST /graphql with the client's session, as KaiServer.graphql sends it."""
    headers = {"Authorization": f"Bearer {client.sign_in()}", "Content-Type": "application/json"}

    def post(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> tuple:
        body = json.dumps({"query": query, "variables": variables or {}, **extra}).encode()
        return _http(f"{kai.url}/graphql", body, headers)

    return post


def test_unknown_field_is_a_validation_error(post: Any) -> None:
    status, body = post('{\n  versions(runtimeId: "local") {\n    nam\n  }\n}')
    assert status == 422
    assert body == {
        "errors": [{
            "message": 'Cannot query field "nam" on type "Version". Did you mean "name"?',
            "locations": [{"line": 3, "column": 5}],
            "extensions": VALIDATION,
        }],
        "data": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ('{ version(name: ) { name } }', "Unexpected )", 17),
        ("{ runtimes { id ", "Expected Name, found <EOF>", 17),
        ("query Q(x: ID!) { runtimes { id } }", "Expected $, found Name", 9),
        ("{ runtimes { ...on } }", "Expected Name, found }", 20),
        ("fragment F Runtime { id }", 'Expected "on", found Name "Runtime"', 12),
        ("nope { runtimes { id } }", 'Unexpected Name "nope"', 1),
        ('{ runtime(id: %) { id } }', 'Cannot parse the unexpected character "%".', 15),
    ],
)  # fmt: skip
def test_syntax_error_is_a_parse_error_with_location(
    post: Any, query: str, message: str, column: int
) -> None:
    status, body = post(query)
    assert status == 422
    assert body == {
        "errors": [{"message": message, "locations": [{"line": 1, "column": column}],
                    "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}],
        "data": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('mutation { startVersion(input: {versionName: "v1", comment: "c"}) { name } }',
         'Field "StartVersionInput.runtimeId" of required type "ID!" was not provided.'),
        ('{ version(name: "v1") { name } }',
         'Field "version" argument "runtimeId" of type "ID!" is required, but it was not '
         "provided."),
        ("{ versions { name } }",
         'Field "versions" argument "runtimeId" of type "ID!" is required, but it was not '
         "provided."),
        ('{ runtime(id: "local", colour: 1) { id } }',
         'Unknown argument "colour" on field "Query.runtime".'),
        ('{ runtime(id: "local") }',
         'Field "runtime" of type "Runtime!" must have a selection of subfields.'),
        ('{ runtimes { id { x } } }',
         'Field "id" must not have a selection since type "ID!" has no subfields.'),
        ('mutation { generateApiToken(input: {nam: "t"}) }',
         'Field "nam" is not defined by type "GenerateApiTokenInput". Did you mean "name"?'),
        ('{ runtime(id: true) { id } }',
         "ID cannot represent a non-string and non-integer value: true"),
        ("{ runtime(id: $id) { id } }", 'Variable "$id" is not defined.'),
    ],
)  # fmt: skip
def test_refused_documents_in_gqlgens_words(post: Any, query: str, message: str) -> None:
    status, body = post(query)
    assert status == 422 and body["data"] is None
    assert message in [e["message"] for e in body["errors"]]
    assert all(e["extensions"] == VALIDATION and e["locations"] for e in body["errors"])


@pytest.mark.parametrize(
    ("variables", "path", "message"),
    [
        ({}, ["input"], "must be defined"),
        ({"input": None}, ["input"], "cannot be null"),
        ({"input": {"versionName": "v1", "comment": "c"}}, ["input", "runtimeId"],
         "must be defined"),
        ({"input": {"versionName": "v1", "comment": None, "runtimeId": "local"}},
         ["input", "comment"], "cannot be null"),
        ({"input": {"versionName": "v1", "comment": "c", "runtimeId": "local", "x": 1}},
         ["input", "x"], "unknown field"),
        ({"input": {"versionName": True, "comment": "c", "runtimeId": "local"}},
         ["input", "versionName"], "cannot use bool as String"),
        ({"input": "v1"}, ["input"], "must be a StartVersionInput"),
    ],
)  # fmt: skip
def test_variables_that_do_not_fit(post: Any, variables: dict, path: list, message: str) -> None:
    status, body = post(START, variables)
    error = {"message": message, "path": ["variable", *path], "extensions": VALIDATION}
    assert (status, body) == (422, {"errors": [error], "data": None})


def test_resolver_errors_name_their_path_and_null_the_data(post: Any) -> None:
    variables = {"input": {"versionName": "ghost", "comment": "c", "runtimeId": "local"}}
    assert post(START, variables) == (
        200, {"errors": [{"message": "error version not found", "path": ["startVersion"]}],
              "data": None},
    )  # fmt: skip


def test_operation_names_aliases_fragments_and_introspection(post: Any) -> None:
    two = "query A { me { email } } query B { rts: runtimes { __typename ...R } } " \
          "fragment R on Runtime { id }"  # fmt: skip
    assert post(two, operationName="B") == (
        200, {"data": {"rts": [{"__typename": "Runtime", "id": "local"}]}})  # fmt: skip
    assert post(two, operationName="C") == (
        200, {"errors": [{"message": "operation C not found"}], "data": None})  # fmt: skip
    fields = '{ __type(name: "StartVersionInput") { inputFields { name type { kind } } } }'
    kinds = {f["name"]: f["type"]["kind"]
             for f in post(fields)[1]["data"]["__type"]["inputFields"]}  # fmt: skip
    assert kinds == {"versionName": "NON_NULL", "comment": "NON_NULL", "runtimeId": "NON_NULL"}


def test_a_body_that_is_not_json_is_a_bad_request(kai: LocalKai, client: KaiServer) -> None:
    headers = {"Authorization": f"Bearer {client.sign_in()}", "Content-Type": "application/json"}
    status, body = _http(f"{kai.url}/graphql", b"{not json", headers)
    assert status == 400
    assert body["errors"][0]["message"].startswith("json body could not be decoded: ")


def test_the_client_reports_the_path_of_a_variable_kre_refuses(client: KaiServer) -> None:
    with pytest.raises(DeployError) as info:
        client.graphql(START, {"input": {"versionName": "v1", "comment": "c"}})
    err = info.value
    assert (err.message, err.code, err.status) == (
        "must be defined", "GRAPHQL_VALIDATION_FAILED", 422
    )  # fmt: skip
    assert err.details == "at variable.input.runtimeId"


def test_without_graphql_core_localkai_says_what_to_install() -> None:
    code = (
        "import sys\nsys.modules['graphql'] = None  # as if graphql-core were not installed\n"
        "from krtlab.deploy.standin import LocalKai\nfrom krtlab.errors import DeployError\n"
        "try:\n    LocalKai(kube=False).start()\nexcept DeployError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (
        "starting LocalKai: LocalKai needs graphql-core: pip install 'krtlab[deploy]'"
    ), out.stderr
