"""LocalKai's two KRE versions, ``kre="7"`` (runtimes, ``runtimeId: ID!`` everywhere) and
``kre="3"`` (no runtimes): each serves its KRE's schema and refuses what that KRE refuses, and
KaiServer sends each exactly what it requires, through the stand-in's HTTP endpoint.

Versions here are started, but their handler is a plain function: serving fails at once and
nothing is left running, while KRE (and the stand-in) still report STARTED.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from krtlab.deploy.kai import KaiServer, urllib_transport
from krtlab.deploy.standin import KRE_VERSIONS, LocalKai
from krtlab.deploy.standin.kre_schema import SCHEMA_PATH, SCHEMAS, SOURCES
from krtlab.errors import DeployError
from tests.deploy.record_fixtures import small_krt
from tests.deploy.test_standin_kai import _http

VALIDATION = {"code": "GRAPHQL_VALIDATION_FAILED"}


@pytest.fixture(scope="module", params=KRE_VERSIONS, ids=[f"kre{v}" for v in KRE_VERSIONS])
def kai(request: pytest.FixtureRequest) -> Iterator[LocalKai]:
    with LocalKai(kre=request.param, kube=False) as k:
        yield k


@pytest.fixture(scope="module")
def post(kai: LocalKai) -> Any:
    """POST /graphql with a signed-in session."""
    headers = {"Authorization": f"Bearer {KaiServer(kai.url, api_token=kai.api_token).sign_in()}",
               "Content-Type": "application/json"}  # fmt: skip

    def post(query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        return _http(f"{kai.url}/graphql", body, headers)

    return post


class Sent:
    """A transport (the default one) noting every GraphQL request: (query, variables)."""

    def __init__(self) -> None:
        self.graphql: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Any:
        if url.endswith("/graphql"):
            if headers["Content-Type"].startswith("multipart/"):
                part = body.split(b'name="operations"', 1)[1].split(b"\r\n\r\n", 1)[1]
                ops = json.loads(part.split(b"\r\n--", 1)[0])
            else:
                ops = json.loads(body)
            self.graphql.append((ops["query"], ops["variables"]))
        return urllib_transport(method, url, headers, body)


def test_the_client_runs_the_whole_lifecycle_sending_what_each_kre_requires(kai: LocalKai) -> None:
    sent = Sent()
    client = KaiServer(kai.url, api_token=kai.api_token, transport=sent)
    assert client.runtime_id == ("local" if kai.kre == "7" else None)
    assert client.runtime()["entrypointAddress"] == kai.entrypoint_address

    assert client.create_version(small_krt("modes-v1")).status in ("CREATING", "CREATED")
    assert client.wait("modes-v1", "CREATED", timeout=60).config == {"GREETING": ""}
    assert client.update_config("modes-v1", {"GREETING": "Hi"}).config_completed
    assert [v.name for v in client.versions()] == ["modes-v1"]
    assert client.version("modes-v1").config == {"GREETING": "Hi"}
    assert client.start("modes-v1", "go").status == "STARTING"
    client.wait("modes-v1", "STARTED", timeout=60)
    assert client.publish("modes-v1", "live").status == "PUBLISHED"
    assert client.unpublish("modes-v1", "back").status == "STARTED"
    assert client.stop("modes-v1", "done").status == "STOPPING"
    assert client.wait("modes-v1", "STOPPED", timeout=60).status == "STOPPED"

    operations = {q.split("(")[0].split("{")[0].strip() for q, _ in sent.graphql}
    assert operations == {
        "query Runtimes", "query Runtime", "mutation CreateVersion", "query Version",
        "mutation UpdateVersionConfiguration", "query Versions", "mutation StartVersion",
        "mutation PublishVersion", "mutation UnpublishVersion", "mutation StopVersion",
    }  # fmt: skip
    version_calls = [(q, v) for q, v in sent.graphql if "ersion" in q.split("{")[0]]
    assert len(version_calls) >= 11  # 8 calls, 3 waits that ask at least once
    for query, variables in version_calls:
        if kai.kre == "7":  # in the input of a mutation, as an argument of a query
            assert variables.get("input", variables)["runtimeId"] == "local", query
        else:
            assert "runtimeId" not in query + json.dumps(variables), query
    [runtime_query] = [
        q for q, _ in sent.graphql if q.startswith(("query Runtime(", "query Runtime "))
    ]
    if kai.kre == "7":
        assert runtime_query.startswith("query Runtime($id: ID!) { runtime(id: $id) {")
    else:
        assert runtime_query.startswith("query Runtime { runtime {")


def test_each_serves_its_kres_schema(kai: LocalKai, post: Any) -> None:
    fields = '{ __type(name: "StartVersionInput") { inputFields { name } } }'
    names = [f["name"] for f in post(fields)[1]["data"]["__type"]["inputFields"]]
    query = post('{ __type(name: "Query") { fields { name args { name } } } }')[1]["data"]
    args = {f["name"]: [a["name"] for a in f["args"]] for f in query["__type"]["fields"]}
    if kai.kre == "7":
        assert names == ["versionName", "comment", "runtimeId"]
        assert args == {"me": [], "runtime": ["id"], "runtimes": [],
                        "version": ["name", "runtimeId"], "versions": ["runtimeId"]}  # fmt: skip
    else:
        assert names == ["versionName", "comment"]
        assert args == {"me": [], "runtime": [], "version": ["name"], "versions": []}


REFUSALS = {  # what each KRE refuses, in its gqlparser's words
    "7": [
        ('{ version(name: "v1") { name } }',
         'Field "version" argument "runtimeId" of type "ID!" is required, but it was not '
         "provided."),
        ('mutation { stopVersion(input: {versionName: "v1", comment: "c"}) { name } }',
         'Field "StopVersionInput.runtimeId" of required type "ID!" was not provided.'),
        ("{ runtime { id } }",
         'Field "runtime" argument "id" of type "ID!" is required, but it was not provided.'),
    ],
    "3": [
        ('{ version(name: "v1", runtimeId: "local") { name } }',
         'Unknown argument "runtimeId" on field "version" of type "Query".'),
        ('mutation { stopVersion(input: {versionName: "v1", comment: "c", runtimeId: "local"}) '
         "{ name } }", 'Field "runtimeId" is not defined by type StopVersionInput.'),
        ("{ runtimes { id } }", 'Cannot query field "runtimes" on type "Query". Did you mean '
         '"runtime"?'),
        ('{ runtime(id: "local") { id } }',
         'Unknown argument "id" on field "runtime" of type "Query".'),
        ("{ version { name } }",
         'Field "version" argument "name" of type "String!" is required but not provided.'),
        ('mutation { stopVersion(input: {versionName: "v1"}) { name } }',
         "Field StopVersionInput.comment of required type String! was not provided."),
        ('mutation { stopVersion(input: {versionName: 1, comment: "c"}) { name } }',
         "Expected type String!, found 1."),
        ('mutation { generateApiToken(input: {nam: "t"}) }',
         'Field "nam" is not defined by type GenerateApiTokenInput. Did you mean name?'),
        ('{ runtime { publishedVersion { name } } }',
         'Cannot query field "publishedVersion" on type "Runtime".'),
    ],
}  # fmt: skip


def test_documents_each_kre_refuses(kai: LocalKai, post: Any) -> None:
    for query, message in REFUSALS[kai.kre]:
        status, body = post(query)
        assert status == 422 and body["data"] is None, query
        assert message in [e["message"] for e in body["errors"]], (query, body)
        assert all(e["extensions"] == VALIDATION for e in body["errors"])


CONFIG = (
    "mutation UpdateVersionConfiguration($input: UpdateConfigurationInput!) "
    "{ updateVersionConfiguration(input: $input) { name } }"
)


def test_variables_each_kre_refuses(kai: LocalKai, post: Any) -> None:
    runtime = {"runtimeId": "local"} if kai.kre == "7" else {}
    one = {"key": "GREETING", "value": "x"}
    # gqlparser v2.4.2 makes a list of a single value; v2.0.1 refuses it
    status, body = post(CONFIG, {"input": {"versionName": "ghost", **runtime,
                                           "configurationVariables": one}})  # fmt: skip
    if kai.kre == "7":
        assert (status, body["errors"][0]["message"]) == (200, "error version not found")
    else:
        error = {"message": "must be an array", "extensions": VALIDATION,
                 "path": ["variable", "input", "configurationVariables"]}  # fmt: skip
        assert (status, body) == (422, {"errors": [error], "data": None})
    # the runtime named where KRE 3 has none, or left out where KRE 7 requires it
    wrong = {} if kai.kre == "7" else {"runtimeId": "local"}
    status, body = post(CONFIG, {"input": {"versionName": "ghost", **wrong,
                                           "configurationVariables": [one]}})  # fmt: skip
    message = "must be defined" if kai.kre == "7" else "unknown field"
    error = {"message": message, "extensions": VALIDATION,
             "path": ["variable", "input", "runtimeId"]}  # fmt: skip
    assert (status, body) == (422, {"errors": [error], "data": None})


def test_a_kre7_client_call_is_refused_by_kre3_and_the_reverse(kai: LocalKai) -> None:
    """A client that sends (or leaves out) runtimeId against the wrong KRE gets KRE's refusal."""
    other = None if kai.kre == "7" else "local"
    client = KaiServer(kai.url, api_token=kai.api_token, runtime_id=other)
    client._detected = True  # as if it had not asked the server
    with pytest.raises(DeployError) as info:
        client.versions()
    assert (info.value.code, info.value.status) == ("GRAPHQL_VALIDATION_FAILED", 422)
    expected = (
        'Field "versions" argument "runtimeId" of type "ID!" is required, but it was not provided.'
        if kai.kre == "7"
        else 'Unknown argument "runtimeId" on field "versions" of type "Query".'
    )
    assert info.value.message == expected


@pytest.mark.parametrize(
    ("gqlgen", "message"),
    [("0.17.4", "the requested element is null which the schema does not allow"),  # KRE 7
     ("0.11.3", "must not be null")],  # KRE 3
)  # fmt: skip
def test_a_null_the_schema_forbids_in_each_gqlgens_words(gqlgen: str, message: str) -> None:
    from krtlab.deploy.standin.gql import GraphQLApi

    api = GraphQLApi("type Query { name: String! }", {"Query.name": lambda ctx: None},
                     gqlgen=gqlgen)  # fmt: skip
    error = {"message": message, "path": ["name"]}
    assert api.execute("{ name }") == (200, {"errors": [error], "data": None})


def test_an_unknown_kre_version_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of 3, 7"):
        LocalKai(kre="5")
    assert LocalKai(kre="3").service_form == "kre3"  # KRE 3.0's entrypoint Service naming
    assert LocalKai().service_form == "spec"


@pytest.mark.skipif(not os.environ.get("KRE_REPO"), reason="set KRE_REPO to a kre git checkout")
@pytest.mark.parametrize("kre", KRE_VERSIONS)
def test_each_sdl_is_kres_text(kre: str) -> None:
    """Every block served is KRE's, unchanged and in KRE's order (whole fields left out of
    Query and Mutation). Needs ``KRE_REPO``: a clone of konstellation-io/kre (or its git dir)."""
    tag, commit = SOURCES[kre]
    text = subprocess.run(["git", "-C", os.environ["KRE_REPO"], "show", f"{commit}:{SCHEMA_PATH}"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip

    def blocks(sdl: str) -> dict[str, list[str]]:
        return {b.split("\n")[0]: b.split("\n") for b in sdl.strip("\n").split("\n\n")}

    theirs, ours = blocks(text), blocks(SCHEMAS[kre])
    assert list(ours) == [head for head in theirs if head in ours], tag
    for head, lines in ours.items():
        if head in ("type Query {", "type Mutation {"):
            rest = iter(theirs[head])
            assert all(line in rest for line in lines), (tag, head)  # a subsequence
        else:
            assert lines == theirs[head], (tag, head)
