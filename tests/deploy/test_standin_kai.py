"""LocalKai spoken to like KRE 7's admin API (urllib, GraphQL text, multipart); the end-to-end
tests really serve the greeter (three serves in all: the machine is small)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import krtlab
from krtlab.deploy.standin import LocalKai
from krtlab.runtime.client import CallError, call

GREETER = Path("/work/shared/examples/greeter")
VERSION_FIELDS = (
    "id name description status creationDate publicationDate hasDoc errors "
    "workflows { id name nodes { id name status } edges { id fromNode toNode } } "
    "config { completed vars { key value type } }"
)


def _http(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Api:
    """A bare admin API client: token sign-in, then GraphQL over JSON or multipart."""

    def __init__(self, url: str, api_token: str, runtime_id: str = "local") -> None:
        self.url, self.rt = url, runtime_id
        token = json.dumps({"apiToken": api_token}).encode()
        status, body = _http(f"{url}/api/v1/auth/token/signin", token, {})
        assert status == 200, body
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps({"query": query, "variables": variables or {}}).encode()
        return _http(
            f"{self.url}/graphql", data, {**self.headers, "Content-Type": "application/json"}
        )

    def upload(self, krt: bytes) -> Any:
        ops = {
            "query": "mutation ($input: CreateVersionInput!) "
            f"{{ createVersion(input: $input) {{ {VERSION_FIELDS} }} }}",
            "variables": {"input": {"file": None, "runtimeId": self.rt}},
        }
        b, disp = uuid.uuid4().hex, "\r\nContent-Disposition: form-data; name="
        head = (
            f'--{b}{disp}"operations"\r\n\r\n{json.dumps(ops)}\r\n--{b}{disp}"map"\r\n\r\n'
            f'{{"0": ["variables.input.file"]}}\r\n--{b}{disp}"0"; filename="v.krt"\r\n\r\n'
        )
        body = head.encode() + krt + f"\r\n--{b}--\r\n".encode()  # fmt: skip
        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={b}"}
        status, answer = _http(f"{self.url}/graphql", body, headers)
        assert status == 200, answer
        return answer

    def version(self, name: str) -> dict[str, Any]:
        status, body = self.gql(
            f'{{ version(name: "{name}", runtimeId: "{self.rt}") {{ {VERSION_FIELDS} }} }}'
        )
        assert status == 200 and "errors" not in body, body
        return body["data"]["version"]

    def act(self, mutation: str, name: str) -> Any:
        return self.gql(
            f'mutation {{ {mutation}(input: {{versionName: "{name}", comment: "c", '
            f'runtimeId: "{self.rt}"}}) {{ name status }} }}'
        )[1]

    def wait(self, name: str, *statuses: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (v := self.version(name))["status"] not in statuses and time.monotonic() < deadline:
            time.sleep(0.2)
        assert v["status"] in statuses, v
        return v


def refused(body: Any, mutation: str, message: str) -> bool:
    return body == {"errors": [{"message": message, "path": [mutation]}], "data": None}


def krt_bytes(files: dict[str, str], dirs: tuple[str, ...] = ()) -> bytes:
    """A hand-made .krt (directory entries first, as KRE's extractor needs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in [*((d, None) for d in dirs), *files.items()]:
            info, data = tarfile.TarInfo(name), (text or "").encode()
            info.type, info.size = (
                (tarfile.DIRTYPE, 0) if text is None else (tarfile.REGTYPE, len(data))
            )
            tar.addfile(info, io.BytesIO(data) if text is not None else None)
    return gzip.compress(buf.getvalue())


def manifest(version: str = "v1", *, config: str = "", seq: str = "n1") -> str:
    nodes = "  - name: n1\n    image: konstellation/kre-py:1.23.0\n    src: src/n1/main.py\n"
    return (
        f"version: {version}\ndescription: d\nentrypoint:\n  proto: public_input.proto\n"
        f"  image: konstellation/kre-entrypoint:1.7.1\n{config}nodes:\n{nodes}"
        f"workflows:\n  - name: w1\n    entrypoint: Go\n    sequential:\n      - {seq}\n"
    )


def good_krt(version: str, *, config: str = "", docs: bool = False) -> bytes:
    files = {"krt.yml": manifest(version, config=config), "public_input.proto": "",
             "src/n1/main.py": "def handler(ctx, data):\n    pass\n"}  # fmt: skip
    dirs: tuple[str, ...] = ("src", "src/n1")
    if docs:
        files["docs/README.md"] = "# hi\n"
        dirs += ("docs",)
    return krt_bytes(files, dirs)


@pytest.fixture(scope="module")
def kai() -> Iterator[LocalKai]:
    with LocalKai() as k:
        yield k


@pytest.fixture(scope="module")
def api(kai: LocalKai) -> Api:
    return Api(kai.url, kai.api_token)


def test_queries_runtime_and_me(kai: LocalKai, api: Api) -> None:
    status, body = api.gql(
        "{ me { email accessLevel } runtimes { id } "
        'runtime(id: "local") { id name entrypointAddress publishedVersion { name } } }'
    )
    assert body["data"] == {
        "me": {"email": "admin@krtlab.local", "accessLevel": "MANAGER"},
        "runtimes": [{"id": "local"}],
        "runtime": {"id": "local", "name": "local", "entrypointAddress": kai.entrypoint_address,
                    "publishedVersion": None},
    }  # fmt: skip
    assert refused(api.gql('{ version(name: "ghost", runtimeId: "local") { name } }')[1],
                   "version", "error version not found")  # fmt: skip
    status, body = api.gql('{ versions(runtimeId: "local") { nam } }')
    assert status == 422
    assert body["errors"][0]["message"] == (
        'Cannot query field "nam" on type "Version". Did you mean "name"?'
    )


def test_viewer_can_query_but_not_edit(kai: LocalKai, api: Api) -> None:
    api.upload(good_krt("viewer-sees", config="config:\n  variables:\n    - KEY\n"))
    viewer = Api(kai.url, kai.add_user("viewer@x.io", "VIEWER"))
    v = viewer.version("viewer-sees")
    assert v["config"] == {"completed": False, "vars": []}  # filterConfigVars
    msg = "you are not allowed to edit versions"
    assert refused(viewer.act("startVersion", "viewer-sees"), "startVersion", msg)
    assert refused(viewer.upload(good_krt("viewer-made")), "createVersion", msg)


def _details(*lines: str) -> str:
    head = "The krt.yml file contains the following validation errors:"
    return head + "".join(f"\n  - {x}" for x in lines)


@pytest.mark.parametrize(
    ("krt", "error"),
    [
        (krt_bytes({"README.md": "x"}),
         {"message": "error on KRT Yaml extraction: error krt.yml file missing"}),
        (krt_bytes({"krt.yml": "version: [x\n"}),
         {"message": "error on KRT Yaml parsing: error Unmarshal yaml file: yaml: line 2: "
                     "expected ',' or ']', but got '<stream end>'"}),
        (krt_bytes({"krt.yml": manifest(seq="ghost")}),
         {"message": "error on KRT Workflow validation: node in sequential not found: ghost"}),
        (krt_bytes({"krt.yml": "version: Bad_Name\nnodes:\n  - name: n\n    src: x\n"
                               "workflows:\n  - name: w\n    entrypoint: E\n"}),
         {"message": "the krt.yml file contains errors",
          "extensions": {"code": "krt_validation_error", "details": _details(
              'Invalid resource name "Bad_Name" at "Version"',
              'The field "Description" is required',
              'The field "Entrypoint.Proto" is required',
              'The field "Entrypoint.Image" is required',
              'The field "Nodes[0].Image" is required',
              'The field "Workflows[0].Sequential" is required',
          ) + "\nThe resource names must contain only lowercase alphanumeric characters or '-', "
              "e.g. my-resource-name."}}),
        (krt_bytes({"krt.yml": manifest("a-very-long-version-name")}),
         {"message": "the krt.yml file contains errors",
          "extensions": {"code": "krt_validation_error", "details": _details(
              'Invalid length "a-very-long-version-name" at "Version" must be lower than 20')}}),
    ],
)  # fmt: skip
def test_create_refusals(api: Api, krt: bytes, error: dict[str, Any]) -> None:
    body = api.upload(krt)
    assert body == {"errors": [{**error, "path": ["createVersion"]}], "data": None}


def test_create_then_created_with_docs_and_duplicate_refused(api: Api) -> None:
    v = api.upload(good_krt("doc-v1", docs=True))["data"]["createVersion"]
    assert v["status"] == "CREATING"
    assert [n["name"] for n in v["workflows"][0]["nodes"]] == ["n1"]
    assert len(v["workflows"][0]["nodes"][0]["id"]) == 5
    v = api.wait("doc-v1", "CREATED")
    assert v["hasDoc"] is True and v["errors"] == []
    assert refused(api.upload(good_krt("doc-v1")), "createVersion", "error version duplicated")


def test_async_src_check_sets_error(api: Api) -> None:
    api.upload(krt_bytes({"krt.yml": manifest("no-src")}))
    v = api.wait("no-src", "ERROR")
    assert v["errors"] == ["error processing krt", "error on KRT Src validation",
                           "error src File src/n1/main.py for node n1 not exists "]  # fmt: skip


def test_refused_transitions(api: Api) -> None:
    api.upload(good_krt("idle-v1"))
    api.wait("idle-v1", "CREATED")
    for mutation, message in [
        ("stopVersion", "the version must be started before stopping"),
        ("publishVersion", "the version must be started before publishing"),
        ("unpublishVersion", "the version must be published before unpublishing"),
    ]:
        assert refused(api.act(mutation, "idle-v1"), mutation, message)
    assert refused(api.act("startVersion", "ghost"), "startVersion", "error version not found")


def test_config_incomplete_unknown_key_and_inherited(api: Api) -> None:
    cfg = "config:\n  variables:\n    - TOKEN\n  files:\n    - MODEL\n"
    api.upload(good_krt("cfg-v1", config=cfg))
    v = api.wait("cfg-v1", "CREATED")
    assert v["config"] == {"completed": False, "vars": [
        {"key": "MODEL", "value": "", "type": "FILE"},
        {"key": "TOKEN", "value": "", "type": "VARIABLE"}]}  # fmt: skip
    assert refused(
        api.act("startVersion", "cfg-v1"), "startVersion", "version config is incomplete"
    )
    update = (
        "mutation ($vars: [ConfigurationVariablesInput!]!) { updateVersionConfiguration("
        'input: {versionName: "cfg-v1", runtimeId: "local", configurationVariables: $vars}) '
        "{ config { completed vars { key value } } } }"
    )
    body = api.gql(update, {"vars": [{"key": "NOPE", "value": "1"}]})[1]
    msg = "version config contains an unknown key"
    assert refused(body, "updateVersionConfiguration", msg)
    body = api.gql(
        update, {"vars": [{"key": "TOKEN", "value": "t"}, {"key": "MODEL", "value": "m"}]}
    )
    assert body[1]["data"]["updateVersionConfiguration"]["config"]["completed"] is True
    api.upload(good_krt("cfg-v2", config="config:\n  variables:\n    - TOKEN\n    - OTHER\n"))
    assert api.wait("cfg-v2", "CREATED")["config"] == {"completed": False, "vars": [
        {"key": "TOKEN", "value": "t", "type": "VARIABLE"},
        {"key": "OTHER", "value": "", "type": "VARIABLE"}]}  # fmt: skip


def _pods(kai: LocalKai, version: str) -> list[dict[str, Any]]:
    """The version's node pods (the entrypoint's ``version-name`` is ``<v>-entrypoint``)."""
    return kai.kube.store.list("Pod", "kre", f"type=node,version-name={version}")


def test_started_version_whose_serve_fails_and_started_config_rules(
    kai: LocalKai, api: Api
) -> None:
    # KRE's quirk: the version is STARTED after the k8s-manager's attempt, even a failed one
    api.upload(good_krt("fail-v1", config="config:\n  variables:\n    - TOKEN\n"))
    api.wait("fail-v1", "CREATED")
    update = (
        'mutation ($v: String!) { updateVersionConfiguration(input: {versionName: "fail-v1", '
        'runtimeId: "local", configurationVariables: [{key: "TOKEN", value: $v}]}) { status } }'
    )
    api.gql(update, {"v": "t"})
    assert api.act("startVersion", "fail-v1")["data"]["startVersion"]["status"] == "STARTING"
    msg = "the version must be stopped before starting"
    assert refused(api.act("startVersion", "fail-v1"), "startVersion", msg)
    v = api.wait("fail-v1", "STARTED")
    assert [n["status"] for n in v["workflows"][0]["nodes"]] == [""]  # KRE 7 stores none
    (pod,) = _pods(kai, "fail-v1")  # the health shows in the pods, like in a cluster
    assert pod["status"]["phase"] == "Running"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    msg = "config can't be incomplete for started version"
    assert refused(api.gql(update, {"v": ""})[1], "updateVersionConfiguration", msg)
    # the restart runs inside the mutation; it fails again, so the old value stays
    body = api.gql(update, {"v": "t2"})[1]
    assert body["errors"][0]["message"].startswith("rpc error: code = Unknown desc = error rest")
    assert api.version("fail-v1")["config"]["vars"][0]["value"] == "t"
    assert api.act("stopVersion", "fail-v1")["data"]["stopVersion"]["status"] == "STOPPING"
    api.wait("fail-v1", "STOPPED")
    assert _pods(kai, "fail-v1") == []


@pytest.fixture(scope="module")
def greeters(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    tmp = tmp_path_factory.mktemp("greeters")
    g1 = krtlab.load(GREETER).build(tmp / "g1.krt")
    src = shutil.copytree(GREETER, tmp / "greeter-v2")
    for f, old, new in [(src / "krt.yml", "n: greeter-v1", "n: greeter-v2"),
                        (src / "src/py-greeter/main.py", '"Hello"', '"Hi"')]:  # fmt: skip
        f.write_text(f.read_text().replace(old, new))
    g2 = krtlab.load(src).build(tmp / "g2.krt")
    return Path(g1).read_bytes(), Path(g2).read_bytes()


def _services(kai: LocalKai) -> dict[str, dict[str, Any]]:
    return {s["metadata"]["name"]: s for s in kai.kube.store.list("Service", "kre")}


def test_publish_switches_the_entrypoint(kai: LocalKai, api: Api, greeters: tuple) -> None:
    for krt in greeters:
        api.upload(krt)
    for name in ("greeter-v1", "greeter-v2"):
        api.wait(name, "CREATED")
        assert api.act("startVersion", name)["data"]["startVersion"]["status"] == "STARTING"
    with pytest.raises(CallError, match="no version is published in runtime 'local'"):
        call(kai.entrypoint_address, "PyGreet", {"name": "John"}, timeout=10)
    for name in ("greeter-v1", "greeter-v2"):
        v = api.wait(name, "STARTED")
        assert [n["status"] for n in v["workflows"][0]["nodes"]] == [""]
        (pod,) = _pods(kai, name)
        assert pod["status"]["phase"] == "Running"
        assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    svcs = _services(kai)
    assert svcs["greeter-v1"]["spec"]["selector"] == {
        "type": "entrypoint", "version-name": "greeter-v1-entrypoint"}  # fmt: skip
    ip1, ip2 = (svcs[n]["spec"]["clusterIP"] for n in ("greeter-v1", "greeter-v2"))
    assert ip1 != ip2 and ip1.startswith("127.0.0.")
    assert call(f"{ip2}:9000", "PyGreet", {"name": "John"}) == {"greeting": "Hi John!"}

    v = api.act("publishVersion", "greeter-v1")["data"]["publishVersion"]
    assert v["status"] == "PUBLISHED" and api.version("greeter-v1")["publicationDate"]
    assert call(kai.entrypoint_address, "PyGreet", {"name": "John"}) == {
        "greeting": "Hello John!"}  # fmt: skip
    svcs = _services(kai)
    assert "greeter-v1" not in svcs
    active = svcs["active-entrypoint"]["spec"]
    assert active["selector"]["version-name"] == "greeter-v1-entrypoint"
    assert active["clusterIP"] == ip1
    msg = "the version must be started before stopping"
    assert refused(api.act("stopVersion", "greeter-v1"), "stopVersion", msg)

    api.act("publishVersion", "greeter-v2")
    assert api.version("greeter-v1")["status"] == "STARTED"
    assert api.version("greeter-v1")["publicationDate"] is None
    assert call(kai.entrypoint_address, "PyGreet", {"name": "John"}) == {"greeting": "Hi John!"}
    svcs = _services(kai)
    assert set(svcs) >= {"greeter-v1", "active-entrypoint"} and "greeter-v2" not in svcs
    assert svcs["greeter-v1"]["spec"]["clusterIP"] == ip1
    assert svcs["active-entrypoint"]["spec"]["clusterIP"] == ip2
    body = api.gql('{ runtime(id: "local") { publishedVersion { name status } } }')[1]
    assert body["data"]["runtime"]["publishedVersion"] == {
        "name": "greeter-v2", "status": "PUBLISHED"}  # fmt: skip

    v = api.act("unpublishVersion", "greeter-v2")["data"]["unpublishVersion"]
    assert v["status"] == "STARTED"
    assert "active-entrypoint" not in _services(kai) and "greeter-v2" in _services(kai)
    for name in ("greeter-v1", "greeter-v2"):
        api.act("stopVersion", name)
        api.wait(name, "STOPPED")
    left = [
        o
        for kind in ("Service", "Deployment", "ConfigMap", "Pod")
        for o in kai.kube.store.list(kind, "kre")
        if "greeter" in o["metadata"]["name"]
    ]
    assert left == []  # fmt: skip
    with pytest.raises(CallError):
        call(f"{ip1}:9000", "PyGreet", {"name": "John"}, timeout=5)


def test_kre3_service_form_and_stop_leaves_nothing_running(greeters: tuple) -> None:
    with LocalKai(service_form="kre3", runtime_id="rt") as kai:
        api = Api(kai.url, kai.api_token, "rt")
        api.upload(greeters[0])
        api.wait("greeter-v1", "CREATED")
        api.act("startVersion", "greeter-v1")
        api.wait("greeter-v1", "STARTED")
        svc = _services(kai)["greeter-v1-entrypoint"]
        labels = {"type": "entrypoint", "version-name": "greeter-v1"}
        assert svc["metadata"]["labels"] == labels and svc["spec"]["selector"] == labels
        api.act("publishVersion", "greeter-v1")
        active = _services(kai)["active-entrypoint"]
        assert active["spec"]["selector"] == labels
        address = f"{active['spec']['clusterIP']}:9000"
        assert call(address, "PyGreet", {"name": "John"}) == {"greeting": "Hello John!"}
        record = kai.runtime.versions["greeter-v1"]
    assert record.service is None  # stop() stopped the published version's processes
    with pytest.raises(CallError):
        call(address, "PyGreet", {"name": "John"}, timeout=5)
