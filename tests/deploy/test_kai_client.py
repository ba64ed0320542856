"""KaiServer against the KAI Server stand-in: sign-in, uploads, KRE's refusals and wait().

No version here is started, so nothing spawns processes: the lifecycle with running versions is
in test_deployment.py.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile

import pytest

from krtlab.deploy.kai import KaiServer, VersionInfo
from krtlab.errors import AuthError, DeployError, DeployTimeout

PROTO = b"""syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
"""


def krt_yml(name: str, src: str = "src/py-greeter/main.py") -> bytes:
    return f"""version: {name}
description: hand-made for the client tests
entrypoint:
  proto: public_input.proto
  image: konstellation/kre-entrypoint:1.7.1
nodes:
  - name: py-greeter
    image: konstellation/kre-py:1.23.0
    src: {src}
workflows:
  - name: py-greeting
    entrypoint: PyGreet
    sequential: [py-greeter]
""".encode()


def make_krt(files: dict[str, bytes]) -> bytes:
    """A .krt written by hand (bypassing krtlab's checks), with directory entries as KRE needs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        dirs = sorted({p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


HANDLER = b"def handler(ctx, data):\n    return data\n"


@pytest.fixture(scope="module")
def kai():
    from krtlab.deploy.standin import LocalKai

    with LocalKai(kube=False) as server:
        yield server


@pytest.fixture(scope="module")
def client(kai) -> KaiServer:
    return KaiServer(kai.url, api_token=kai.api_token)


@pytest.fixture(scope="module")
def created(client) -> VersionInfo:
    """One CREATED version (never started)."""
    krt = make_krt({"krt.yml": krt_yml("hello-v1"), "public_input.proto": PROTO,
                    "src/py-greeter/main.py": HANDLER})  # fmt: skip
    info = client.create_version(krt)
    assert info.name == "hello-v1"
    assert info.status in ("CREATING", "CREATED")
    return client.wait("hello-v1", "CREATED", timeout=60)


def test_runtime_and_entrypoint(kai, client):
    assert client.runtime_id == "local"
    assert client.runtime()["id"] == "local"
    assert client.entrypoint_address() == kai.entrypoint_address


def test_url_and_token_from_environment(kai, monkeypatch):
    monkeypatch.setenv("KAI_SERVER_URL", kai.url)
    monkeypatch.setenv("KAI_API_TOKEN", kai.api_token)
    assert KaiServer().url == kai.url
    assert isinstance(KaiServer().versions(), list)
    monkeypatch.delenv("KAI_API_TOKEN")
    with pytest.raises(DeployError, match=r"KAI_API_TOKEN"):
        KaiServer()


def test_created_version(client, created):
    assert created.status == "CREATED"
    assert [w.name for w in created.workflows] == ["py-greeting"]
    assert [n.name for n in created.workflows[0].nodes] == ["py-greeter"]
    assert created.errors == ()
    text = str(created)
    assert "hello-v1 CREATED" in text and "\n" not in text
    assert "hello-v1" in [v.name for v in client.versions()]
    assert client.version("hello-v1") == created


def test_duplicate_version_refused_with_kres_message(client, created):
    krt = make_krt({"krt.yml": krt_yml("hello-v1"), "public_input.proto": PROTO,
                    "src/py-greeter/main.py": HANDLER})  # fmt: skip
    with pytest.raises(DeployError, match="error version duplicated") as info:
        client.create_version(krt)
    err = info.value
    assert err.operation == "CreateVersion" and err.message == "error version duplicated"
    assert err.details == (
        "a version named 'hello-v1' is already on the server (status CREATED): attach with "
        "Deployment('hello-v1', server) or change the version name"
    )


def test_krt_validation_error_carries_code_and_details(client):
    krt = make_krt({"krt.yml": krt_yml("Bad_Name"), "public_input.proto": PROTO,
                    "src/py-greeter/main.py": HANDLER})  # fmt: skip
    with pytest.raises(DeployError) as info:
        client.create_version(krt)
    err = info.value
    assert err.message == "the krt.yml file contains errors"
    assert err.code == "krt_validation_error"
    assert "The krt.yml file contains the following validation errors:" in err.details
    assert "Bad_Name" in err.details


def test_wait_raises_with_kres_errors_when_the_version_lands_in_error(client):
    # the node's src is missing: KRE accepts the upload, then fails it asynchronously
    krt = make_krt({"krt.yml": krt_yml("broken-v1", "src/missing/main.py"),
                    "public_input.proto": PROTO})  # fmt: skip
    client.create_version(krt)
    with pytest.raises(DeployError, match="broken-v1 is in ERROR") as info:
        client.wait("broken-v1", "CREATED", timeout=60)
    assert "src/missing/main.py" in info.value.details
    assert client.version("broken-v1").errors
    assert client.wait("broken-v1", "ERROR", timeout=5).status == "ERROR"


def test_wait_timeout_reports_last_status(client, created):
    with pytest.raises(DeployTimeout) as info:
        client.wait("hello-v1", "STARTED", timeout=0.3)
    assert info.value.last_status == "CREATED"
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(ValueError, match="unknown status"):
        client.wait("hello-v1", "RUNNING", timeout=1)


def test_unknown_config_key_refused_with_kres_message(client, created):
    with pytest.raises(DeployError, match="version config contains an unknown key") as info:
        client.update_config("hello-v1", {"NOT_DECLARED": "x"})
    assert info.value.details == "hello-v1 does not declare 'NOT_DECLARED'; it declares: none"


def test_stop_a_created_version_refused(client, created):
    with pytest.raises(DeployError, match="the version must be started before stopping") as info:
        client.stop("hello-v1", "no")
    assert info.value.details == "it is CREATED"
    with pytest.raises(DeployError, match="the version must be started before publishing") as info:
        client.publish("hello-v1", "no")
    assert info.value.details == "it is CREATED: start() it first"


def test_unknown_version(client, created):
    with pytest.raises(DeployError, match="error version not found") as info:
        client.version("hello-v2")
    assert "did you mean 'hello-v1'?" in info.value.details
    with pytest.raises(DeployError, match="error version not found") as info:
        client.start("no-such-version", "go")
    assert info.value.details.startswith(f"no version 'no-such-version' on {client.url}; it has:")
    assert "hello-v1" in info.value.details


def test_explanations_keep_kres_error_and_never_hide_it():
    from krtlab.deploy.kai_wire import explained, krt_version_name, wrong_status

    err = DeployError("error version duplicated", code="c", details="d", operation="op")
    out = explained(err, "more")
    assert (out.message, out.code, out.details, out.operation) == (
        "error version duplicated", "c", "d\nmore", "op"
    )  # fmt: skip
    assert wrong_status("the version must be started before stopping", "PUBLISHED") == (
        "it is PUBLISHED: unpublish() first"
    )
    assert wrong_status("the version must be started before publishing", "PUBLISHED") == (
        "it is already published"
    )
    assert krt_version_name(make_krt({"krt.yml": krt_yml("named-v1")})) == "named-v1"
    assert krt_version_name(b"not a tar") is None

    class Down(KaiServer):  # asking the server for context fails: KRE's error as it was
        def version(self, name):
            raise DeployError("cannot reach the KAI Server")

    kai = Down("http://down.invalid", api_token="t", runtime_id="r")
    refused = DeployError("the version must be started before stopping", operation="StopVersion")
    assert kai._explain(refused, "v1") is refused


def test_expired_session_signs_in_again(kai):
    client = KaiServer(kai.url, api_token=kai.api_token)
    client.sign_in()
    client._jwt = "not-a-valid-jwt"  # as after the session expired
    assert isinstance(client.versions(), list)
    assert client._jwt != "not-a-valid-jwt"


def test_wrong_api_token_is_an_auth_error(kai):
    with pytest.raises(AuthError) as info:
        KaiServer(kai.url, api_token="0" * 64).versions()
    assert info.value.status == 401
    assert kai.url in str(info.value)


def test_viewer_cannot_create_versions(kai):
    viewer = KaiServer(kai.url, api_token=kai.add_user("viewer@example.com", "VIEWER"))
    assert isinstance(viewer.versions(), list)  # viewing is allowed
    krt = make_krt({"krt.yml": krt_yml("viewer-v1"), "public_input.proto": PROTO,
                    "src/py-greeter/main.py": HANDLER})  # fmt: skip
    with pytest.raises(AuthError, match="you are not allowed to"):
        viewer.create_version(krt)


def test_server_down_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(DeployError, match=rf"cannot reach the KAI Server at {url}") as info:
        KaiServer(url, api_token="t", timeout=5).versions()
    assert not isinstance(info.value, AuthError)


class Recording(KaiServer):
    """KaiServer noting every operation it sends (uploads as ``"<bytes>"``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, dict]] = []

    def graphql(self, query, variables=None, *, files=None):
        shown = json.loads(json.dumps(variables or {}, default=lambda _: "<bytes>"))
        self.sent.append((query.split("(", 1)[0].split("{", 1)[0].strip(), shown))
        return super().graphql(query, variables, files=files)


def test_every_version_call_names_the_runtime_as_kre7_requires(kai):
    """KRE 7's schema makes ``runtimeId`` required in version/versions and in every version
    mutation's input: a client that leaves it out is refused (GRAPHQL_VALIDATION_FAILED)."""
    client = Recording(kai.url, api_token=kai.api_token)
    krt = make_krt({"krt.yml": krt_yml("runtime-v1"), "public_input.proto": PROTO,
                    "src/py-greeter/main.py": HANDLER})  # fmt: skip
    client.create_version(krt)
    client.wait("runtime-v1", "CREATED", timeout=60)
    client.update_config("runtime-v1", {})
    client.versions()
    for action in (client.start, client.stop, client.publish, client.unpublish):
        with pytest.raises(DeployError, match="error version not found"):  # got past validation
            action("no-such-version", "c")
    mutations = {op: v["input"] for op, v in client.sent if op.startswith("mutation")}
    assert set(mutations) == {
        f"mutation {m}" for m in ("CreateVersion", "UpdateVersionConfiguration", "StartVersion",
                                  "StopVersion", "PublishVersion", "UnpublishVersion")
    }  # fmt: skip
    assert {op: i.get("runtimeId") for op, i in mutations.items()} == dict.fromkeys(
        mutations, "local"
    )
    queries = [(op, v) for op, v in client.sent if op in ("query Version", "query Versions")]
    assert {op for op, _ in queries} == {"query Version", "query Versions"}
    assert all(v.get("runtimeId") == "local" for _, v in queries)


class Kre3(KaiServer):
    """A kre<=3 server as seen through graphql(): no ``runtimes`` field, no runtimeId args."""

    def __init__(self) -> None:
        super().__init__("http://kre3.invalid", api_token="t")
        self.sent: list[tuple[str, dict]] = []

    def graphql(self, query, variables=None, *, files=None):
        self.sent.append((query, dict(variables or {})))
        if "runtimes" in query:
            raise DeployError('Cannot query field "runtimes" on type "Query".',
                              code="GRAPHQL_VALIDATION_FAILED")  # fmt: skip
        version = {"name": "v1", "status": "STARTING", "config": {"vars": [], "completed": True}}
        field = query.split("{", 1)[1].split("(")[0].split("{")[0].strip()
        runtime = {"entrypointAddress": "entrypoint.kre.example.com"}  # KRE: a bare host
        return {field: runtime if field == "runtime" else version}


def test_kre3_servers_get_no_runtime_id():
    kai = Kre3()
    assert kai.runtime_id is None
    assert kai.version("v1").status == "STARTING"
    kai.start("v1", "go")
    assert kai.entrypoint_address() == "entrypoint.kre.example.com"  # as the server says it
    sent = kai.sent[1:]
    assert all("runtimeId" not in q and "runtimeId" not in json.dumps(v) for q, v in sent)
    assert sent[0] == (sent[0][0], {"name": "v1"})
    assert sent[1][1] == {"input": {"versionName": "v1", "comment": "go"}}
    assert sent[2][0].startswith("query Runtime { runtime {")
    assert len([q for q, _ in kai.sent if "runtimes" in q]) == 1  # asked once
