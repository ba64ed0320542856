"""KaiServer against the KAI Server stand-in: sign-in, uploads, KRE's refusals and wait().

No version here is started, so nothing spawns processes: the lifecycle with running versions is
in test_deployment.py.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import urllib.error
import urllib.request

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


# -- what the client sends and says, against a recording server and a clock of its own --------


class Recorder:
    """A KAI Server at HTTP level that records every request and answers from a script:
    ``answers[operation name]`` (``"sign in"`` for the sign-in) is the JSON to answer."""

    def __init__(self, answers):
        import http.server
        import threading

        self.answers, self.requests = answers, []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                op = "sign in" if self.path.endswith("/signin") else json.loads(body)["query"]
                op = op if op == "sign in" else op.split("(")[0].split()[1].split("{")[0]
                recorder.requests.append((self.path, dict(self.headers), body, op))
                data = json.dumps(recorder.answers[op]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


VERSION = {"id": "1", "name": "v1", "description": "d", "status": "STARTED",
           "creationDate": "2026-11-25", "publicationDate": None, "errors": [],
           "config": {"vars": [], "completed": True}, "workflows": []}  # fmt: skip


@pytest.fixture
def recorder():
    answers = {"sign in": {"access_token": "jwt-1"}}
    for op in ("StartVersion", "StopVersion", "PublishVersion", "UnpublishVersion",
               "UpdateVersionConfiguration"):  # fmt: skip
        field = op[0].lower() + op[1:]
        answers[op] = {"data": {field: VERSION}}
    rec = Recorder(answers)
    yield rec
    rec.close()


def test_the_api_token_is_exchanged_as_json_for_a_bearer_session(recorder):
    client = KaiServer(recorder.url + "/", api_token="tok-1", runtime_id="rt")
    assert client.url == recorder.url  # the trailing '/' dropped
    client.start("v1")
    (path, headers, body, _), (gpath, gheaders, _, op) = recorder.requests
    assert path == "/api/v1/auth/token/signin" and json.loads(body) == {"apiToken": "tok-1"}
    assert headers["Content-Type"] == "application/json"
    assert (gpath, op) == ("/graphql", "StartVersion")
    assert gheaders["Authorization"] == "Bearer jwt-1"


def test_a_sign_in_without_a_session_is_an_auth_error(recorder):
    recorder.answers["sign in"] = {"token": "not what KRE answers"}
    client = KaiServer(recorder.url, api_token="tok-1", runtime_id="rt")
    with pytest.raises(AuthError) as info:
        client.sign_in()
    assert str(info.value) == (
        f"sign in: {recorder.url}/api/v1/auth/token/signin gave no access_token"
    )  # the operation first, as every DeployError says it


@pytest.mark.parametrize("action", ["start", "stop", "publish", "unpublish"])
def test_lifecycle_calls_name_the_version_comment_and_runtime(recorder, action):
    client = KaiServer(recorder.url, api_token="tok-1", runtime_id="rt")
    assert getattr(client, action)("v1").status == "STARTED"
    getattr(client, action)("v1", "why")
    sent = [json.loads(body)["variables"]["input"] for _, _, body, op in recorder.requests[1:]]
    assert sent == [
        {"versionName": "v1", "comment": "", "runtimeId": "rt"},
        {"versionName": "v1", "comment": "why", "runtimeId": "rt"},
    ]


def test_config_values_are_sent_as_text(recorder):
    client = KaiServer(recorder.url, api_token="tok-1", runtime_id="rt")
    client.update_config("v1", {"RATE": 1.5, "ON": True, "NAME": "x"})
    body = json.loads(recorder.requests[-1][2])
    assert body["variables"]["input"] == {
        "versionName": "v1",
        "configurationVariables": [
            {"key": "RATE", "value": "1.5"}, {"key": "ON", "value": "True"},
            {"key": "NAME", "value": "x"},
        ],
        "runtimeId": "rt",
    }  # fmt: skip


def test_a_url_and_a_token_are_required(monkeypatch):
    monkeypatch.delenv("KAI_SERVER_URL", raising=False)
    monkeypatch.delenv("KAI_API_TOKEN", raising=False)
    with pytest.raises(DeployError) as info:
        KaiServer(api_token="t")
    assert str(info.value) == "no KAI Server URL: pass url= or set $KAI_SERVER_URL"
    with pytest.raises(DeployError) as info:
        KaiServer("http://kai.example.com")
    assert str(info.value) == (
        "no API token for http://kai.example.com: pass api_token= or set $KAI_API_TOKEN"
    )
    assert repr(KaiServer("http://k/", api_token="t")) == "KaiServer('http://k')"
    assert repr(KaiServer("http://k", api_token="t", runtime_id="r")) == (
        "KaiServer('http://k', runtime_id='r')"
    )


def test_an_unreadable_krt_is_named():
    client = KaiServer("http://k", api_token="t", runtime_id="r")
    with pytest.raises(DeployError) as info:
        client.create_version("/no/such/v1.krt")
    assert str(info.value) == "cannot read /no/such/v1.krt: No such file or directory"


class Scripted(KaiServer):
    """A server whose version goes through ``statuses`` one poll after another."""

    def __init__(self, statuses, errors=()):
        super().__init__("http://kai.example.com", api_token="t", runtime_id="r")
        self.statuses, self.errors = list(statuses), tuple(errors)

    def version(self, name):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return VersionInfo.from_graphql({**VERSION, "name": name, "status": status,
                                         "errors": list(self.errors)})  # fmt: skip


@pytest.fixture
def clock(monkeypatch):
    """time as wait() sees it: sleeping moves it on, and each sleep is recorded."""
    from krtlab.deploy import kai as kai_module

    now, sleeps = [100.0], []

    def sleep(seconds):
        sleeps.append(round(seconds, 4))
        now[0] += seconds

    monkeypatch.setattr(kai_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(kai_module.time, "sleep", sleep)
    return sleeps


def test_wait_polls_quickly_then_every_3_s_until_the_status_comes(clock):
    server = Scripted(["CREATING"] * 8 + ["CREATED"])
    assert server.wait("v1", "CREATED", timeout=600).status == "CREATED"
    assert clock == [0.5, 0.75, 1.125, 1.6875, 2.5312, 3.0, 3.0, 3.0]


def test_wait_gives_up_exactly_at_its_timeout(clock):
    server = Scripted(["CREATING"])
    with pytest.raises(DeployTimeout) as info:
        server.wait("v1", ["STARTED", "PUBLISHED"], timeout=2)
    assert clock == [0.5, 0.75, 0.75]  # the last sleep ends at the deadline
    assert str(info.value) == (
        "waiting for v1: v1 is still CREATING after 2 s (waiting for PUBLISHED or STARTED)"
    )
    assert (info.value.last_status, info.value.operation) == ("CREATING", "waiting for v1")


def test_wait_stops_at_error_with_what_kre_reported(clock):
    server = Scripted(["CREATING", "ERROR"], errors=["src missing", "bad proto"])
    with pytest.raises(DeployError) as info:
        server.wait("v1", "CREATED")
    err = info.value
    assert (err.message, err.code) == ("v1 is in ERROR", "version_error")
    assert err.details == "KRE reported:\n  src missing\n  bad proto"
    assert err.operation == "waiting for v1 to be CREATED"
    with pytest.raises(DeployError) as info:
        Scripted(["ERROR"]).wait("v1", "CREATED")
    assert info.value.details == "KRE reported:\n  (no errors given)"


def test_wait_refuses_a_status_kre_does_not_have():
    with pytest.raises(ValueError) as info:
        Scripted(["CREATED"]).wait("v1", ["CREATED", "RUNNING"])
    assert str(info.value) == (
        "unknown status ['RUNNING']; KRE has CREATING, CREATED, STARTING, STARTED, PUBLISHED, "
        "STOPPING, STOPPED, ERROR"
    )


class Listing(KaiServer):
    """A server with ``count`` versions and none named as asked."""

    def __init__(self, count):
        super().__init__("http://kai.example.com", api_token="t", runtime_id="r")
        self.names = [f"v{i}" for i in range(count)]

    def _query(self, field, params, values, *args, **kwargs):
        if field == "versions":
            return [{**VERSION, "name": n} for n in self.names]
        raise DeployError("error version not found")


@pytest.mark.parametrize(
    ("count", "listed"),
    [(0, "none"), (1, "v0"), (10, "v0, v1, v2, v3, v4, v5, v6, v7, v8, v9"),
     (11, "v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, ...")],
)  # fmt: skip
def test_an_unknown_version_lists_at_most_10_of_the_servers(count, listed):
    with pytest.raises(DeployError) as info:
        Listing(count).version("other")
    assert info.value.message == "error version not found"
    assert info.value.details == f"no version 'other' on http://kai.example.com; it has: {listed}"


def test_version_info_reads_like_the_server_said():
    data = {
        **VERSION, "status": "PUBLISHED", "publicationDate": "2026-11-26",
        "errors": ["e1", "e2"],
        "config": {"vars": [{"key": "RATE", "value": "1.5"}, {"key": "K"}], "completed": False},
        "workflows": [{"id": "w", "name": "wf", "nodes": [{"id": "n", "name": "a"},
                                                          {"id": "m", "name": "b",
                                                           "status": "STARTED"}]}],
    }  # fmt: skip
    info = VersionInfo.from_graphql(data)
    assert info.config == {"RATE": "1.5", "K": ""} and not info.config_completed
    assert info.nodes == {"wf/a": "", "wf/b": "STARTED"}
    assert not info.workflows[0].nodes[0].status_known
    assert info.workflows[0].nodes[1].status_known
    assert str(info) == (
        "v1 PUBLISHED (config incomplete, 1 workflow, published 2026-11-26) errors: e1; e2"
    )
    two = VersionInfo.from_graphql({**data, "workflows": data["workflows"] * 2, "errors": [],
                                    "config": {"vars": [{"key": "K", "value": "x"}],
                                               "completed": True}})  # fmt: skip
    assert str(two) == "v1 PUBLISHED (config complete, 2 workflows, published 2026-11-26)"
    bare = VersionInfo.from_graphql({"name": "v2", "status": "CREATED"})
    assert str(bare) == "v2 CREATED (0 workflows)"
    assert (bare.description, bare.publication_date, bare.errors) == ("", None, ())


# -- through an injected transport: what KaiServer sends and how it reads each answer ----------


class Transport:
    """A transport answering from a list of ``(status, body)`` and recording each request."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def __call__(self, method, url, headers, body):
        self.requests.append((method, url, dict(headers), body))
        status, answer = self.answers.pop(0)
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return status, {"Content-Type": "application/json"}, raw


SIGNED_IN = (200, {"access_token": "jwt-1"})


def test_a_server_has_a_60_s_timeout_per_request_unless_told(monkeypatch):
    from krtlab.deploy import kai as kai_module

    seen = []

    def transport(method, url, headers, body, *, timeout):
        seen.append((method, url, timeout))
        return 200, {}, b'{"access_token": "j"}'

    monkeypatch.setattr(kai_module, "urllib_transport", transport)
    assert KaiServer("http://k", api_token="t").timeout == 60.0
    KaiServer("http://k", api_token="t").sign_in()
    KaiServer("http://k", api_token="t", timeout=5).sign_in()
    assert seen == [
        ("POST", "http://k/api/v1/auth/token/signin", 60.0),
        ("POST", "http://k/api/v1/auth/token/signin", 5),
    ]


@pytest.mark.parametrize("answer", [[{"access_token": "j"}], "j", None, {"access_token": ""}])
def test_a_sign_in_answer_without_a_session_is_refused(answer):
    client = KaiServer("http://k", api_token="t", transport=Transport((200, answer)))
    with pytest.raises(AuthError) as info:
        client.sign_in()
    assert (info.value.message, info.value.operation) == (
        "http://k/api/v1/auth/token/signin gave no access_token", "sign in",
    )  # fmt: skip


def test_trailing_slashes_are_dropped_from_the_url_and_nothing_else():
    assert KaiServer("http://KAI-BOX//", api_token="t").url == "http://KAI-BOX"
    assert KaiServer("http://kai.example.com/admin/", api_token="t").url == (
        "http://kai.example.com/admin"
    )


def test_wait_gives_up_after_600_s_unless_told(clock):
    with pytest.raises(DeployTimeout) as info:
        Scripted(["CREATING"]).wait("v1", "CREATED")
    assert str(info.value) == (
        "waiting for v1: v1 is still CREATING after 600 s (waiting for CREATED)"
    )
    assert sum(clock) == pytest.approx(600)


def test_a_missing_permission_is_never_explained_away():
    class Asked(KaiServer):
        def versions(self):
            raise AssertionError("an AuthError needs no context from the server")

    kai = Asked("http://k", api_token="t", runtime_id="r")
    denied = AuthError("error version not found", operation="StartVersion")
    assert kai._explain(denied, "v1") is denied


def test_ids_and_names_a_server_leaves_out_are_empty():
    info = VersionInfo.from_graphql(
        {"name": "v1", "status": "CREATED", "workflows": [{"nodes": [{}]}]}
    )
    assert info.workflows[0].id == info.workflows[0].name == ""
    node = info.workflows[0].nodes[0]
    assert (node.id, node.name, node.status) == ("", "", "")
    assert info.id == "" and info.creation_date == ""
    empty = VersionInfo.from_graphql({})
    assert (empty.id, empty.name, empty.status, empty.description) == ("", "", "", "")


# -- the default transport (urllib): every HTTP answer returned, no answer an OSError -----------


@pytest.fixture
def http_server():
    """A server answering every method with 404 and a JSON body; records (method, body)."""
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.rfile.read(length)))
            data = b'{"code": "missing", "message": "no such path"}'
            self.send_response(404)
            self.send_header("X-Kai", "yes")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_the_default_transport_returns_error_answers_with_their_body(http_server):
    from krtlab.deploy.kai import urllib_transport

    url, seen = http_server
    status, headers, body = urllib_transport("PUT", url + "/x", {"A": "b"}, b"data")
    assert (status, headers["X-Kai"], body) == (
        404,
        "yes",
        b'{"code": "missing", "message": "no such path"}',
    )
    assert seen == [("PUT", b"data")]
    err = KaiServer(url, api_token="t").sign_in
    with pytest.raises(DeployError) as info:
        err()
    assert (info.value.message, info.value.code, info.value.status) == (
        f"{url}/api/v1/auth/token/signin answered 404: no such path", "missing", 404
    )  # fmt: skip


def test_the_default_transport_waits_60_s_when_not_told(monkeypatch):
    from krtlab.deploy.kai import urllib_transport

    waits = []

    def urlopen(request, timeout):
        waits.append(timeout)
        raise urllib.error.URLError(ConnectionRefusedError(111, "refused"))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    for kwargs in ({}, {"timeout": 2.5}):
        with pytest.raises(ConnectionRefusedError):
            urllib_transport("POST", "http://k", {}, b"", **kwargs)
    assert waits == [60.0, 2.5]


def test_the_default_transport_gives_up_at_its_timeout():
    import time

    from krtlab.deploy.kai import urllib_transport

    with socket.socket() as quiet:  # accepts connections (the backlog) but never answers
        quiet.bind(("127.0.0.1", 0))
        quiet.listen()
        started = time.monotonic()
        with pytest.raises(OSError):
            urllib_transport(
                "POST", f"http://127.0.0.1:{quiet.getsockname()[1]}", {}, b"", timeout=0.3
            )
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (
            lambda: urllib.error.HTTPError("u", 500, "m", None, io.BytesIO(b"x")),
            (500, {}, b"x"),
        ),
        (
            lambda: urllib.error.HTTPError("u", 502, "m", None, None),
            (502, {}, b""),
        ),
    ],
)
def test_the_default_transport_reads_error_answers_without_headers_or_body(
    monkeypatch, error, answer
):
    from krtlab.deploy.kai import urllib_transport

    def urlopen(request, timeout):
        raise error()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert urllib_transport("POST", "http://k", {}, b"") == answer


def test_an_error_answer_whose_body_cannot_be_read_has_an_empty_body(monkeypatch):
    from krtlab.deploy.kai import urllib_transport

    closed = io.BytesIO(b"gone")
    closed.close()

    def urlopen(request, timeout):
        raise urllib.error.HTTPError("u", 500, "m", None, closed)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert urllib_transport("POST", "http://k", {}, b"") == (500, {}, b"")


def test_no_answer_at_all_is_an_oserror_with_the_reason(monkeypatch):
    from krtlab.deploy.kai import urllib_transport

    reasons = [ConnectionRefusedError(111, "refused"), "unknown url type: kai"]

    def urlopen(request, timeout):
        raise urllib.error.URLError(reasons.pop(0))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(ConnectionRefusedError):
        urllib_transport("POST", "http://k", {}, b"")
    with pytest.raises(OSError) as info:
        urllib_transport("POST", "http://k", {}, b"")
    assert type(info.value) is OSError and str(info.value) == "unknown url type: kai"


# -- how KaiServer reads each kind of answer ---------------------------------------------------


def failing(*args):
    raise ConnectionResetError("reset by peer")


def test_no_answer_names_the_url_and_the_operation():
    with pytest.raises(DeployError) as info:
        KaiServer("http://k", api_token="t", transport=failing).sign_in()
    assert (info.value.message, info.value.operation) == (
        "cannot reach the KAI Server at http://k/api/v1/auth/token/signin: reset by peer",
        "sign in",
    )


def test_a_400_answer_is_an_error_and_a_399_is_not():
    client = KaiServer("http://k", api_token="t", transport=Transport((400, {"message": "bad"})))
    with pytest.raises(DeployError) as info:
        client.sign_in()
    assert (info.value.message, info.value.status) == (
        "http://k/api/v1/auth/token/signin answered 400: bad",
        400,
    )
    client = KaiServer("http://k", api_token="t", transport=Transport((399, {"access_token": "j"})))
    assert client.sign_in() == "j"


def test_an_empty_answer_reads_as_null():
    client = KaiServer("http://k", api_token="t", transport=Transport((200, b"")))
    with pytest.raises(AuthError, match="gave no access_token"):
        client.sign_in()


def test_an_answer_that_is_not_json_is_quoted_up_to_200_bytes():
    raw = b"<html>" + b"x" * 300
    client = KaiServer("http://k", api_token="t", transport=Transport((200, raw)))
    with pytest.raises(DeployError) as info:
        client.sign_in()
    assert type(info.value) is DeployError
    assert info.value.message == f"http://k/api/v1/auth/token/signin answered {raw[:200]!r}"
    assert info.value.operation == "sign in"


def test_a_graphql_answer_that_is_no_object_is_an_error():
    client = KaiServer(
        "http://k", api_token="t", runtime_id="r", transport=Transport(SIGNED_IN, (200, [1]))
    )
    with pytest.raises(DeployError) as info:
        client.versions()
    assert (info.value.message, info.value.operation) == (
        "http://k/graphql answered [1]",
        "Versions",
    )


def test_a_config_kre_does_not_say_is_complete_is_not():
    assert VersionInfo.from_graphql({"config": {"vars": []}}).config_completed is False
    assert VersionInfo.from_graphql({"config": {"completed": True}}).config_completed is True
