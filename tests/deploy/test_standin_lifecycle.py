"""The stand-in's version lifecycle with a fake ``serve`` (fast): synchronous config restarts,
stale background work, the Pods that show node health, Services, LocalKai shutdown, loopback."""

from __future__ import annotations

import errno
import gc
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import krtlab.runtime.serve as serve_module
from krtlab.deploy.standin import LocalKai
from krtlab.deploy.standin import serving as serving_module
from krtlab.deploy.standin.kube_store import KubeStore
from krtlab.deploy.standin.lifecycle import Runtime
from krtlab.deploy.standin.objects import VersionObjects
from krtlab.runtime.procs import ServeError
from tests.deploy.test_standin_kai import Api, _http, good_krt, refused

CFG = "config:\n  variables:\n    - K\n"


class Fake:
    """A served version: who it was served for, and whether it was stopped."""

    def __init__(self, host: str, config: dict[str, str]) -> None:
        self.host, self.config, self.stopped = host, config, False

    def stop(self) -> None:
        self.stopped = True


class FakeServe:
    """Stands in for :func:`krtlab.runtime.serve.serve`; ``plan`` says what each call does."""

    def __init__(self) -> None:
        self.made: list[Fake] = []
        self.plan: list[Callable[[], None]] = []  # per call: sleep, raise, wait on an event...

    def __call__(self, path: Any, *, host: str, port: int, web_port: int, config: Any,
                 quiet: bool) -> Fake:  # fmt: skip
        assert host != "127.0.0.1" and port == 9000
        if self.plan:
            self.plan.pop(0)()
        svc = Fake(host, dict(config))
        self.made.append(svc)
        return svc

    @property
    def live(self) -> list[Fake]:
        return [s for s in self.made if not s.stopped]


def _raise(msg: str) -> Callable[[], None]:
    def go() -> None:
        raise ServeError(msg)

    return go


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeServe:
    f = FakeServe()
    monkeypatch.setattr(serve_module, "serve", f)
    return f


@pytest.fixture
def store() -> KubeStore:
    return KubeStore()


@pytest.fixture
def rt(tmp_path: Path, store: KubeStore) -> Iterator[Runtime]:
    objects = VersionObjects(store, namespace="kre", form="spec")
    runtime = Runtime("local", tmp_path, objects=objects, status_timeout=10)
    yield runtime
    runtime.close()


def until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def started(rt: Runtime, name: str = "v1", value: str = "a") -> Any:
    rt.create("u", good_krt(name, config=CFG))
    until(lambda: rt.get(name).status == "CREATED")
    rt.update_config(name, [{"key": "K", "value": value}])
    rt.start(name)
    until(lambda: rt.get(name).status == "STARTED")
    return rt.get(name)


def pods(store: KubeStore) -> dict[str, dict[str, Any]]:
    """Pods by their ``node-name`` label."""
    return {p["metadata"]["labels"]["node-name"]: p for p in store.list("Pod", "kre")}


# -- 1. updateVersionConfiguration restarts before answering --------------------------------


def test_update_config_restarts_synchronously(rt: Runtime, fake: FakeServe) -> None:
    rec = started(rt)
    first = rec.service
    fake.plan = [lambda: time.sleep(0.3)]
    answer = rt.update_config("v1", [{"key": "K", "value": "b"}])
    assert answer.config == {"K": "b"} and rec.config == {"K": "b"}
    assert first.stopped and rec.service is fake.made[-1] and fake.live == [rec.service]
    assert rec.service.config == {"K": "b"} and rec.service.host == rec.ip


def test_update_config_failure_keeps_the_old_config(rt: Runtime, fake: FakeServe,
                                                     store: KubeStore) -> None:  # fmt: skip
    rec = started(rt)
    fake.plan = [_raise("py-greeter (w1, x) exited (exit code 1) while starting; its log:\nboom")]
    with pytest.raises(ValueError) as info:
        rt.update_config("v1", [{"key": "K", "value": "bad"}])
    assert str(info.value) == (
        "rpc error: code = Unknown desc = error restarting pods: ServeError: py-greeter (w1, x) "
        "exited (exit code 1) while starting; its log:"
    )
    assert rec.config == {"K": "a"} and rec.status == "STARTED" and rec.service is None
    assert "exited" in rec.start_error
    # KRE's k8s-manager already replaced the ConfigMap; only the database keeps the old values
    conf = store.get("ConfigMap", "kre", "v1-krt-conf")
    assert conf["data"] == {"K": "bad"}


def test_update_config_timeout(rt: Runtime, fake: FakeServe) -> None:
    rec = started(rt)
    rt.update_timeout = 0.2
    fake.plan = [lambda: time.sleep(0.6)]
    with pytest.raises(ValueError) as info:
        rt.update_config("v1", [{"key": "K", "value": "slow"}])
    assert str(info.value) == "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    assert rec.config == {"K": "a"}
    until(lambda: len(fake.made) == 2)
    until(lambda: fake.live == [])  # the late serve is stopped at once


# -- 2. stale background work stops what it started -----------------------------------------


def test_stop_and_start_during_a_restart_leave_one_served_version(
    rt: Runtime, fake: FakeServe
) -> None:
    rec = started(rt)
    go = threading.Event()
    fake.plan = [go.wait]  # the restart hangs until we say
    errors: list[Exception] = []

    def update() -> None:
        try:
            rt.update_config("v1", [{"key": "K", "value": "b"}])
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=update)
    t.start()
    until(lambda: not fake.plan)  # the restart is serving
    restart_ip = rec.ip
    rt.stop("v1")
    until(lambda: rec.status == "STOPPED")
    rt.start("v1")  # its IP must not be the one the pending restart is binding
    until(lambda: rec.status == "STARTED")
    assert rec.ip != restart_ip
    go.set()
    t.join(10)
    assert fake.live == [rec.service] and rec.service.host == rec.ip
    rt.close()
    assert fake.live == [] and errors  # the superseded restart answered an error
    assert all(s.host not in ("127.0.0.1", "") for s in fake.made)


# -- 3. node status lives in the Pods ---------------------------------------------------------


def test_pods_pending_running_and_deleted(rt: Runtime, fake: FakeServe, store: KubeStore) -> None:
    go = threading.Event()
    fake.plan = [go.wait]
    rt.create("u", good_krt("v1", config=CFG))
    until(lambda: rt.get("v1").status == "CREATED")
    rt.update_config("v1", [{"key": "K", "value": "a"}])
    rt.start("v1")
    until(lambda: len(pods(store)) == 2)
    deps = {d["metadata"]["name"]: d for d in store.list("Deployment", "kre")}
    for p in pods(store).values():
        assert p["status"]["phase"] == "Pending"
        dep = next(d for d in deps.values() if p["metadata"]["name"][:-6] == d["metadata"]["name"])
        assert p["metadata"]["name"][-6] == "-" and p["metadata"]["name"][-5:].isalnum()
        assert p["metadata"]["labels"] == dep["spec"]["template"]["metadata"]["labels"]
        names = [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]]
        assert [c["name"] for c in p["spec"]["containers"]] == names
    assert pods(store)["entrypoint"]["metadata"]["labels"]["version-name"] == "v1-entrypoint"
    go.set()
    until(lambda: rt.get("v1").status == "STARTED")
    for p in pods(store).values():
        assert p["status"]["phase"] == "Running"
        assert all(c["ready"] and "running" in c["state"] for c in p["status"]["containerStatuses"])
    rt.stop("v1")
    until(lambda: rt.get("v1").status == "STOPPED")
    assert store.list("Pod", "kre") == []


def test_failed_serve_makes_the_named_node_crash_loop(rt: Runtime, fake: FakeServe,
                                                      store: KubeStore) -> None:  # fmt: skip
    fake.plan = [_raise("n1 (w1, abcde) exited (exit code 1) while starting; its log:\nTrace")]
    rec = started(rt)
    assert rec.service is None and rec.start_error.startswith("ServeError: n1 (w1, abcde)")
    node, entry = pods(store)["n1"], pods(store)["entrypoint"]
    assert node["status"]["phase"] == "Running"
    runner, sidecar = node["status"]["containerStatuses"]
    assert runner["ready"] is False and runner["restartCount"] > 0
    assert runner["state"] == {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": "ServeError: n1 (w1, abcde) exited (exit code 1) while starting; its log:",
        }
    }
    assert sidecar["ready"] is True
    assert all(c["ready"] for c in entry["status"]["containerStatuses"])
    # an error naming no node: every pod crash-loops
    rt.update_config("v1", [{"key": "K", "value": "a"}])  # a good restart first
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in pods(store).values())
    fake.plan = [_raise("the protos do not compile")]
    with pytest.raises(ValueError, match="error restarting pods: ServeError: the protos"):
        rt.update_config("v1", [{"key": "K", "value": "b"}])
    for p in pods(store).values():
        assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == (
            "CrashLoopBackOff"
        )


# -- 4./5. GraphQL answers KRE reads from its database ------------------------------------------


@pytest.fixture(scope="module")
def kai() -> Iterator[LocalKai]:
    with LocalKai(kube=False) as k:
        yield k


@pytest.fixture(scope="module")
def api(kai: LocalKai) -> Api:
    return Api(kai.url, kai.api_token)


def test_graphql_needs_a_bearer_token(kai: LocalKai) -> None:
    data = json.dumps({"query": "{ me { email } }"}).encode()
    status, body = _http(f"{kai.url}/graphql", data, {"Content-Type": "application/json"})
    bad = _http(f"{kai.url}/api/v1/auth/token/signin", b'{"apiToken": "nope"}', {})
    assert (status, body) == bad == (401, {"code": "unauthorized", "message": "Unauthorized"})


def test_upload_limit(kai: LocalKai, api: Api) -> None:
    headers = {**api.headers, "Content-Type": "multipart/form-data; boundary=x",
               "Content-Length": str(500 * 2**20 + 1)}  # fmt: skip
    req = urllib.request.Request(f"{kai.url}/graphql", data=b"", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 422
    assert json.loads(info.value.read())["errors"][0]["message"] == (
        "failed to parse multipart form, request body too large"
    )


def test_unknown_runtime_and_viewer_asking_for_a_missing_version(kai: LocalKai, api: Api) -> None:
    status, body = api.gql('{ versions(runtimeId: "ghost") { name } }')
    assert (status, body) == (200, {"data": {"versions": []}})
    body = api.gql('{ version(name: "x", runtimeId: "ghost") { name } }')[1]
    assert refused(body, "version", "error version not found")
    api.upload(good_krt("v1", config=CFG))
    viewer = Api(kai.url, kai.add_user("viewer@x.io", "VIEWER"))
    update = (
        "mutation ($n: String!) { updateVersionConfiguration(input: {versionName: $n, "
        'runtimeId: "local", configurationVariables: [{key: "K", value: "v"}]}) { name } }'
    )
    # KRE's resolver looks the version up (GetByName) before checking the permission
    body = viewer.gql(update, {"n": "ghost"})[1]
    assert refused(body, "updateVersionConfiguration", "error version not found")
    body = viewer.gql(update, {"n": "v1"})[1]
    assert refused(body, "updateVersionConfiguration", "you are not allowed to edit versions")


# -- 6. Services never make publish fail ------------------------------------------------------


def test_publish_and_unpublish_replace_existing_services(rt: Runtime, fake: FakeServe,
                                                         store: KubeStore) -> None:  # fmt: skip
    a, b = started(rt, "va"), started(rt, "vb")
    rt.publish("u", "va")
    objects = rt.objects
    assert objects is not None
    store.create(objects._service("va", a.ip, published=False))  # a leftover own Service
    rt.publish("u", "vb")  # va gets its own Service back: it exists already
    names = {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in store.list("Service", "kre")}
    assert names == {"va": a.ip, "active-entrypoint": b.ip}
    store.create(objects._service("vb", b.ip, published=False))
    rt.unpublish("vb")
    names = {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in store.list("Service", "kre")}
    assert names == {"va": a.ip, "vb": b.ip}


# -- 7. LocalKai shutdown ---------------------------------------------------------------------


def test_local_kai_stop_is_idempotent_and_lost_kai_is_stopped() -> None:
    kai = LocalKai().start()
    tmp, url = kai._parts.tmp, kai.url
    assert tmp is not None and tmp.is_dir() and kai._finalizer is not None
    assert kai._finalizer.atexit
    kai.stop()
    kai.stop()
    assert kai.kube is None and not tmp.exists()
    kai = LocalKai().start()
    tmp, url = kai._parts.tmp, kai.url
    del kai
    gc.collect()
    assert tmp is not None and not tmp.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/graphql", timeout=2)


def test_local_kai_left_running_is_stopped_at_exit() -> None:
    code = (
        "from krtlab.deploy.standin import LocalKai\n"
        "kai = LocalKai().start()\n"
        "print(kai._parts.tmp, flush=True)\n"
        "raise SystemExit(0)  # like a notebook kernel going away without kai.stop()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    tmp = Path(out.stdout.strip())
    assert tmp.name.startswith("krtlab-kai-") and not tmp.exists()


# -- 8. loopback addresses ----------------------------------------------------------------------


def test_missing_loopback_alias_says_how_to_add_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoAlias(socket.socket):
        def bind(self, address: Any) -> None:
            raise OSError(errno.EADDRNOTAVAIL, "Can't assign requested address")

    monkeypatch.setattr(serving_module.socket, "socket", NoAlias)
    with pytest.raises(RuntimeError) as info:
        serving_module.free_loopback_ip(set())
    assert "sudo ifconfig lo0 alias 127.0.0.2 up" in str(info.value)
    assert "no free loopback address" not in str(info.value)


def test_graphql_ids_are_the_ids_in_the_objects_labels(
    rt: Runtime, fake: FakeServe, store: KubeStore
) -> None:
    # KRE's k8s-manager labels each Deployment with the node id the admin API shows
    rec = started(rt)
    [wf] = rec.workflows
    deps = [d for d in store.list("Deployment", "kre") if d["metadata"]["labels"]["type"] == "node"]
    labels = {
        (d["metadata"]["labels"]["node-name"], d["metadata"]["labels"]["node-id"]) for d in deps
    }
    assert labels == {(n["name"], n["id"]) for n in wf["nodes"]}
    env = {
        e["name"]: e["value"] for e in deps[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KRT_WORKFLOW_ID"] == wf["id"]
