"""KaiServer's wire format, pinned: the recorded exchanges in ``fixtures/kai_wire/`` replayed
through ``KaiServer(transport=...)``.

Each fixture was recorded from LocalKai in KRE 7 mode by ``python -m tests.deploy.record_fixtures``
(see its docstring for when to re-record). The replay fails if the client sends any request that
differs from the recorded one (path, headers, the JSON body byte for byte, the multipart parts),
sends more or fewer of them, or makes something else of KRE's answers (``returns``/``raises``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import krtlab.deploy.kai as kai
import krtlab.deploy.kai_wire as wire
from tests.deploy.record_fixtures import FIXTURES, Replay, decode_args, run

PATHS = sorted(FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def replay(fixture: dict[str, Any]) -> None:
    transport = Replay(fixture)
    got = run(fixture, transport)
    assert transport.used == len(fixture["exchanges"]), "fewer requests than recorded"
    assert got == {k: fixture[k] for k in ("returns", "raises") if k in fixture}


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_the_client_speaks_as_recorded(path: Path) -> None:
    replay(json.loads(path.read_text()))


def test_every_operation_and_refusal_is_pinned() -> None:
    fixtures = [json.loads(p.read_text()) for p in PATHS]
    methods = {f["call"]["method"] for f in fixtures}
    assert methods >= {
        "sign_in", "runtime", "create_version", "versions", "version", "update_config", "start",
        "stop", "publish", "unpublish", "graphql",
    }  # fmt: skip
    answers = [e["response"] for f in fixtures for e in f["exchanges"]]
    errors = [e for a in answers for e in (a["json"] or {}).get("errors") or ()]
    # gqlgen's error payloads: a resolver's (message, path), a validation's (extensions.code,
    # locations or a variable's path), a resolver's own extensions (code, details)
    assert any(e.get("path") and "extensions" not in e for e in errors)
    assert any(e.get("extensions", {}).get("code") == "GRAPHQL_VALIDATION_FAILED"
               and e.get("locations") for e in errors)  # fmt: skip
    assert any((e.get("path") or [None])[0] == "variable" for e in errors)
    assert any("details" in e.get("extensions", {}) for e in errors)
    assert {a["status"] for a in answers} >= {200, 401, 422}


def test_the_upload_is_a_graphql_multipart_request() -> None:
    fixture = load("create_version")
    request = fixture["exchanges"][1]["request"]
    assert request["headers"]["Content-Type"] == "multipart/form-data; boundary=BOUNDARY"
    lines = request["multipart"]
    names = [line for line in lines if line.startswith("Content-Disposition")]
    assert names == [
        'Content-Disposition: form-data; name="operations"',
        'Content-Disposition: form-data; name="map"',
        'Content-Disposition: form-data; name="0"; filename="version.krt"',
    ]
    operations = json.loads(lines[lines.index(names[0]) + 3])
    assert operations["variables"] == {"input": {"runtimeId": "local", "file": None}}
    assert json.loads(lines[lines.index(names[1]) + 3]) == {"0": ["variables.input.file"]}
    [krt] = decode_args(fixture["call"]["args"])
    assert krt[:2] == b"\x1f\x8b"  # the .krt (gzip) travels as the file part, byte for byte


def _fields_without_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kai, "_VERSION_FIELDS", kai._VERSION_FIELDS.replace(" errors", ""))


def _other_signin_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kai, "_SIGNIN", "/api/v1/auth/signin")


def _compact_json(monkeypatch: pytest.MonkeyPatch) -> None:
    def encode(query, variables, files):
        body, ctype = original(query, variables, files)
        return (body.replace(b'", "', b'","') if not files else body), ctype

    original = wire.encode
    monkeypatch.setattr(wire, "encode", encode)


def _other_file_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def encode(query, variables, files):
        body, ctype = original(query, variables, files)
        return body.replace(b'filename="version.krt"', b'filename="v.krt"'), ctype

    original = wire.encode
    monkeypatch.setattr(wire, "encode", encode)


def _runtime_variable_renamed(monkeypatch: pytest.MonkeyPatch) -> None:
    original = kai.KaiServer._query

    def query(self, field, params, values, fields=kai._VERSION_FIELDS, runtime_arg="runtimeId"):
        return original(self, field, params, values, fields, "runtime")

    monkeypatch.setattr(kai.KaiServer, "_query", query)


def _code_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    original = wire.graphql_error

    def graphql_error(errors, operation, *, denied=False):
        plain = [{k: v for k, v in e.items() if k != "extensions"} for e in errors]
        return original(plain, operation, denied=denied)

    monkeypatch.setattr(wire, "graphql_error", graphql_error)


@pytest.mark.parametrize(
    ("change", "fixture", "says"),
    [
        (_fields_without_errors, "start", "differs from the recorded one"),
        (_other_signin_path, "sign_in", "differs from the recorded one"),
        (_compact_json, "versions", "other bytes"),
        (_other_file_name, "create_version", "differs from the recorded one"),
        (_runtime_variable_renamed, "versions", "differs from the recorded one"),
    ],
)  # fmt: skip
def test_a_one_line_change_of_what_the_client_sends_fails(
    monkeypatch: pytest.MonkeyPatch, change: Any, fixture: str, says: str
) -> None:
    replay(load(fixture))  # as recorded
    change(monkeypatch)
    with pytest.raises(AssertionError, match=says):
        replay(load(fixture))


def test_a_change_of_how_the_client_reads_answers_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _code_not_read(monkeypatch)
    with pytest.raises(AssertionError):
        replay(load("error_krt_validation"))  # extensions.code and details no longer read
