"""The admin API's wire format in isolation (``krtlab.deploy.kai_wire``): the bodies the client
sends and what it makes of KRE's error answers, byte for byte and word for word."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest

from krtlab.deploy import kai_wire as wire
from krtlab.errors import AuthError, DeployError, DeployTimeout


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("query Versions($runtimeId: ID!) { versions { id } }", "Versions"),
        ("mutation StartVersion($input: StartVersionInput!) { x }", "StartVersion"),
        ("query Runtimes{ runtimes { id } }", "Runtimes"),
        ("mutation Go{x}", "Go"),
        ("query Versions", "Versions"),  # two words: still a named operation
        ("{ versions { id } }", "graphql"),
        ("query", "graphql"),
        ("subscription Watch { w }", "graphql"),
    ],
)
def test_the_operation_is_named_as_the_query_names_it(query, name):
    assert wire.operation_name(query) == name


def test_a_plain_call_is_one_json_body():
    body, ctype = wire.encode("query V { v }", {"name": "v1"}, None)
    assert ctype == "application/json"
    assert body == b'{"query": "query V { v }", "variables": {"name": "v1"}}'
    assert wire.encode("q", {}, {}) == (b'{"query": "q", "variables": {}}', "application/json")


def test_an_upload_is_a_graphql_multipart_request(monkeypatch):
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=0xABC))
    variables = {"input": {"runtimeId": "rt"}}
    body, ctype = wire.encode("mutation C { c }", variables, {"input.file": b"KRT\x00"})
    boundary = "krtlab-" + "0" * 29 + "abc"
    assert ctype == f"multipart/form-data; boundary={boundary}"
    assert variables == {"input": {"runtimeId": "rt"}}  # the caller's dict is not changed
    ops = (
        b'{"query": "mutation C { c }", "variables": {"input": {"runtimeId": "rt", "file": null}}}'
    )
    assert body == b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="operations"\r\n',
            b"Content-Type: application/json\r\n\r\n" + ops + b"\r\n",
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="map"\r\n',
            b'Content-Type: application/json\r\n\r\n{"0": ["variables.input.file"]}\r\n',
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="0"; filename="version.krt"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\nKRT\x00\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
    )


def test_each_uploaded_file_holds_null_at_its_place_and_has_its_part(monkeypatch):
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=1))
    body, _ = wire.encode("m", {}, {"a.b.file": b"1", "top": b"2"})
    parts = body.split(b"--krtlab-" + b"0" * 31 + b"1")
    ops = json.loads(parts[1].split(b"\r\n\r\n", 1)[1])
    assert ops["variables"] == {"a": {"b": {"file": None}}, "top": None}
    mapping = json.loads(parts[2].split(b"\r\n\r\n", 1)[1])
    assert mapping == {"0": ["variables.a.b.file"], "1": ["variables.top"]}
    assert parts[3].endswith(b"\r\n\r\n1\r\n") and b'name="0"' in parts[3]
    assert parts[4].endswith(b"\r\n\r\n2\r\n") and b'name="1"' in parts[4]
    assert parts[5] == b"--\r\n"


def test_an_http_error_with_kres_rest_answer():
    err = wire.http_error(400, b'{"code": "bad_request", "message": "no token"}', "http://k", "op")
    assert type(err) is DeployError
    assert (err.message, err.code, err.status, err.operation) == (
        "http://k answered 400: no token", "bad_request", 400, "op",
    )  # fmt: skip
    nested = b'{"message": {"code": "c", "message": "inner"}}'
    err = wire.http_error(500, nested, "http://k", "op")
    assert (err.message, err.code) == ("http://k answered 500: inner", "c")


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (404, b"", "http://k answered 404: Not Found"),
        (502, b"<html>bad gateway</html>", "http://k answered 502: Bad Gateway"),
        (599, b"not json", "http://k answered 599: HTTP 599"),
        (500, b'{"message": ""}', "http://k answered 500: Internal Server Error"),
        (500, b"[1, 2]", "http://k answered 500: Internal Server Error"),
    ],
)
def test_an_http_error_without_a_message_says_the_status(status, body, text):
    err = wire.http_error(status, body, "http://k", "op")
    assert type(err) is DeployError
    assert (err.message, err.code, err.status) == (text, "", status)


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(status):
    err = wire.http_error(status, b'{"message": "nope"}', "http://k", "op")
    assert type(err) is AuthError and err.status == status
    assert err.message == f"http://k answered {status}: nope"


def test_a_refused_api_token_says_so():
    err = wire.http_error(401, b'{"code": "unauthorized", "message": "bad"}', "http://k", "sign in")
    assert type(err) is AuthError
    assert err.message == "the KAI Server at http://k refused the API token: bad"
    assert err.code == "unauthorized"
    err = wire.http_error(403, b'{"message": "bad"}', "http://k", "sign in")
    assert err.message == "http://k answered 403: bad"


def test_graphql_errors_in_an_http_error_answer():
    body = json.dumps({"errors": [{"message": "boom", "extensions": {"code": "c"}}]}).encode()
    err = wire.http_error(422, body, "http://k", "Op")
    assert type(err) is DeployError
    assert (err.message, err.code, err.status, err.operation) == ("boom", "c", 422, "Op")
    for status in (401, 403):
        err = wire.http_error(status, body, "http://k", "Op")
        assert type(err) is AuthError and err.status == status
    err = wire.http_error(400, b'{"errors": [], "message": "m"}', "http://k", "Op")
    assert err.message == "http://k answered 400: m"


def test_a_graphql_error_keeps_kres_message_code_and_details():
    errors = [{"message": "the krt.yml file contains errors",
               "extensions": {"code": "krt_validation_error", "details": ["one", 2]}}]  # fmt: skip
    err = wire.graphql_error(errors, "CreateVersion")
    assert type(err) is DeployError
    assert (err.message, err.code, err.details, err.operation, err.status) == (
        "the krt.yml file contains errors", "krt_validation_error", "one\n2", "CreateVersion",
        None,
    )  # fmt: skip
    err = wire.graphql_error([{"message": "m", "extensions": {"details": "text"}}], "op")
    assert (err.code, err.details) == ("", "text")


def test_every_graphql_error_is_kept():
    err = wire.graphql_error([{"message": "first"}, {"message": "second"}, "third", {"x": 1}], "op")
    assert (err.message, err.details) == ("first", "second\nthird\n{'x': 1}")
    err = wire.graphql_error(["plain text"], "op")
    assert (err.message, err.details, err.code) == ("plain text", "", "")
    assert wire.graphql_error([{}], "op").message == "unknown error"
    err = wire.graphql_error([{"message": "m", "extensions": None, "path": None}], "op")
    assert (err.code, err.details) == ("", "")


def test_an_undefined_variable_is_located_by_its_path():
    errors = [{"message": "must be defined", "path": ["variable", "input", "runtimeId"],
               "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]  # fmt: skip
    err = wire.graphql_error(errors, "op")
    assert err.details == "at variable.input.runtimeId"
    errors[0]["extensions"]["details"] = "more"
    assert wire.graphql_error(errors, "op").details == "at variable.input.runtimeId\nmore"
    errors = [{"message": "m", "path": ["versions", 0, "name"]}]
    assert wire.graphql_error(errors, "op").details == ""


@pytest.mark.parametrize(
    ("error", "denied"),
    [
        ({"message": "You are not allowed to create versions"}, True),
        ({"message": "m", "extensions": {"code": "unauthorized"}}, True),
        ({"message": "m", "extensions": {"code": "forbidden"}}, True),
        ({"message": "m", "extensions": {"code": "invalid_session"}}, True),
        ({"message": "you are allowed", "extensions": {"code": "internal"}}, False),
    ],
)
def test_a_missing_permission_is_an_auth_error(error, denied):
    err = wire.graphql_error([error], "op")
    assert (type(err) is AuthError) is denied
    assert type(wire.graphql_error([error], "op", denied=True)) is AuthError


def test_an_explanation_is_added_to_kres_error():
    err = AuthError("m", code="c", details="", status=401, operation="op")
    out = wire.explained(err, "what to do")
    assert type(out) is AuthError
    assert (out.message, out.code, out.details, out.status, out.operation) == (
        "m", "c", "what to do", 401, "op",
    )  # fmt: skip
    out = wire.explained(DeployTimeout("late", last_status="X", operation="w"), "")
    assert type(out) is DeployError
    assert (out.message, out.details, out.operation) == ("late", "", "w")


def krt(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_the_version_a_krt_declares():
    assert wire.krt_version_name(krt({"krt.yml": b"version: v1\n"})) == "v1"
    assert wire.krt_version_name(krt({"krt.yaml": b"version: v2\n"}, "w")) == "v2"
    # the entry KRE reads: the first one matching (^|/)krt.ya?ml$, nested or not
    nested = {"src/n/krt.yml": b"version: inner\n", "krt.yml": b"version: root\n"}
    assert wire.krt_version_name(krt(nested)) == "inner"
    rooted = {"a.txt": b"", "krt.yml": b"version: root\n", "docs/krt.yml": b"version: d\n"}
    assert wire.krt_version_name(krt(rooted)) == "root"
    assert wire.krt_version_name(krt({"x/krt.yml": b"version: 12\n"})) == "12"
    assert wire.krt_version_name(krt({"a/b/krt.yml": b"version: deep\n"})) == "deep"
    assert wire.krt_version_name(krt({"a/b/x.yml": b"version: no\n"})) is None
    assert wire.krt_version_name(krt({"krt.yml.bak": b"version: v\n", "mykrt.yml": b""})) is None
    assert wire.krt_version_name(krt({"krt.yml": b"- version: v\n"})) is None
    assert wire.krt_version_name(krt({"krt.yml": b"description: d\n"})) is None
    assert wire.krt_version_name(krt({"krt.yml": b"version: ''\n"})) is None
    assert wire.krt_version_name(krt({"krt.yml": b"version: [\n"})) is None
    assert wire.krt_version_name(b"\x1f\x8b broken gzip") is None


def test_a_folder_named_krt_yml_is_not_the_manifest():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("krt.yml")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        data = b"version: deep\n"
        info = tarfile.TarInfo("krt.yml/krt.yml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert wire.krt_version_name(out.getvalue()) == "deep"


def test_undeclared_config_keys_are_named_with_a_hint():
    values = {"configurationVariables": [{"key": "RATEE"}, {"key": "RATE"}, {"key": "zzz"}]}
    text = wire.undeclared_keys("v1", values, {"RATE": "1", "NAME": ""})
    assert text == (
        "v1 does not declare 'RATEE' (did you mean 'RATE'?), 'zzz'; it declares: NAME, RATE"
    )
    assert wire.undeclared_keys("v1", {}, {}) == (
        "v1 does not declare some key sent; it declares: none"
    )


STOP = "the version must be started before stopping"
PUBLISH = "the version must be started before publishing"


@pytest.mark.parametrize(
    ("message", "status", "hint"),
    [
        (STOP, "PUBLISHED", "it is PUBLISHED: unpublish() first"),
        ("the version must be started before stopping", "CREATED", "it is CREATED"),
        ("the version must be started before publishing", "PUBLISHED", "it is already published"),
        (PUBLISH, "STOPPED", "it is STOPPED: start() it first"),
        ("the version must be stopped before starting", "STARTED", "it is already STARTED"),
        ("the version must be stopped before starting", "PUBLISHED", "it is already PUBLISHED"),
        ("the version must be stopped before starting", "STARTING", "it is STARTING"),
        ("the version must be published before unpublishing", "STARTED",
         "it is STARTED: only the PUBLISHED version can be unpublished"),
        ("the version must be something else", "STARTED", ""),
    ],
)  # fmt: skip
def test_a_refusal_in_the_wrong_status_says_what_to_do(message, status, hint):
    assert wire.wrong_status(message, status) == hint
