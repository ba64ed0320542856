"""The REAL kubernetes client against krtlab's Kubernetes API stand-in, and Cluster on top."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import krtlab
from krtlab.deploy.k8s import SERVICE_FORMS, entrypoint_service, version_objects
from krtlab.deploy.kube import Cluster
from krtlab.deploy.standin.kube_api import KubeApiServer
from krtlab.deploy.standin.kube_store import KubeApiError, KubeStore, parse_selector
from krtlab.errors import AuthError, DeployError

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s_client  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402


@pytest.fixture
def server():
    with KubeApiServer() as srv:
        yield srv


@pytest.fixture
def api(server, tmp_path):
    """An ApiClient of the official package, configured from the written kubeconfig."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = k8s_config.new_client_from_config(str(kubeconfig), persist_config=False)
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def greeter(examples):
    return krtlab.load(examples / "greeter").manifest()


def status_of(exc):
    return json.loads(exc.body)


def create_all(store, objects):
    return [store.create(o) for o in objects]


# -- the stand-in as the real client sees it ---------------------------------------------------


def test_real_client_creates_lists_and_reads_back(api, greeter):
    core, apps = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api)
    for obj in version_objects(greeter):
        if obj["kind"] == "ConfigMap":
            core.create_namespaced_config_map("kre", obj)
        elif obj["kind"] == "Deployment":
            apps.create_namespaced_deployment("kre", obj)
        else:
            svc = core.create_namespaced_service("kre", obj)
    assert svc.spec.cluster_ip.startswith("10.96.")
    assert svc.metadata.uid and svc.metadata.resource_version and svc.metadata.creation_timestamp
    maps = core.list_namespaced_config_map("kre", label_selector="version-name=greeter-v1")
    assert sorted(m.metadata.name for m in maps.items) == [
        "greeter-v1-conf-files", "greeter-v1-krt-conf"
    ]  # fmt: skip
    deps = apps.list_namespaced_deployment("kre", label_selector="type in (node, entrypoint)")
    assert len(deps.items) == 2
    nodes = apps.list_namespaced_deployment("kre", label_selector="type!=entrypoint,node-id")
    assert [d.metadata.labels["node-name"] for d in nodes.items] == ["py-greeter"]
    got = core.read_namespaced_service("greeter-v1", "kre")
    assert got.spec.selector == {"type": "entrypoint", "version-name": "greeter-v1-entrypoint"}
    assert [p.port for p in got.spec.ports] == [9000, 80]
    assert core.list_namespaced_service("other-ns").items == []
    assert len(core.list_service_for_all_namespaces().items) == 1


def test_not_found_and_already_exists_are_kubernetes_statuses(api):
    core = k8s_client.CoreV1Api(api)
    with pytest.raises(k8s_client.ApiException) as err:
        core.read_namespaced_service("x", "kre")
    assert err.value.status == 404
    assert status_of(err.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'services "x" not found', "reason": "NotFound",
        "details": {"name": "x", "kind": "services"}, "code": 404,
    }  # fmt: skip
    core.create_namespaced_config_map("kre", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    with pytest.raises(k8s_client.ApiException) as err:
        core.create_namespaced_config_map("kre", {"metadata": {"name": "c"}})
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'configmaps "c" already exists'
    with pytest.raises(k8s_client.ApiException) as err:
        k8s_client.AppsV1Api(api).delete_namespaced_deployment("gone", "kre")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'deployments.apps "gone" not found'
    with pytest.raises(k8s_client.ApiException) as err:
        core.create_namespaced_config_map("kre", {"metadata": {}})
    assert err.value.status == 422 and status_of(err.value)["reason"] == "Invalid"


def test_replace_conflicts_on_stale_resource_version_and_404s_when_missing(api):
    core = k8s_client.CoreV1Api(api)
    first = core.create_namespaced_config_map("kre", {"metadata": {"name": "c"}, "data": {}})
    body = {"metadata": {"name": "c", "resourceVersion": first.metadata.resource_version},
            "data": {"k": "v"}}  # fmt: skip
    second = core.replace_namespaced_config_map("c", "kre", body)
    assert second.data == {"k": "v"} and second.metadata.uid == first.metadata.uid
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    with pytest.raises(k8s_client.ApiException) as err:  # body still has the old version
        core.replace_namespaced_config_map("c", "kre", body)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"
    with pytest.raises(k8s_client.ApiException) as err:
        core.replace_namespaced_config_map("nope", "kre", {"metadata": {"name": "nope"}})
    assert err.value.status == 404


def test_delete_removes_and_pods_are_served(api):
    core = k8s_client.CoreV1Api(api)
    pod = {"metadata": {"name": "p", "labels": {"version-name": "v"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    core.create_namespaced_pod("kre", pod)
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("kre", label_selector="version-name=v").items
    ] == ["p"]
    core.delete_namespaced_pod("p", "kre")
    assert core.list_namespaced_pod("kre").items == []


def test_requests_without_the_token_get_401(server, tmp_path):
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    data = json.loads(kubeconfig.read_text())
    data["users"][0]["user"]["token"] = "wrong"
    kubeconfig.write_text(json.dumps(data))
    api = k8s_config.new_client_from_config(str(kubeconfig), persist_config=False)
    with pytest.raises(k8s_client.ApiException) as err:
        k8s_client.CoreV1Api(api).list_namespaced_service("kre")
    assert err.value.status == 401 and status_of(err.value)["reason"] == "Unauthorized"
    with pytest.raises(AuthError) as auth:
        Cluster(kubeconfig).services()
    assert auth.value.status == 401


def test_discovery_and_version(api):
    assert k8s_client.VersionApi(api).get_code().major == "1"
    groups = k8s_client.ApisApi(api).get_api_versions()
    assert [g.name for g in groups.groups] == ["apps"]
    assert k8s_client.CoreApi(api).get_api_versions().versions == ["v1"]
    names = [r.name for r in k8s_client.CoreV1Api(api).get_api_resources().resources]
    assert {"services", "configmaps", "pods"} <= set(names)


def test_store_semantics_and_selectors():
    store = KubeStore()
    a = store.create(entrypoint_service("a"))
    b = store.create({**entrypoint_service("b"), "spec": {"clusterIP": "127.0.0.7"}})
    assert a["spec"]["clusterIP"] != b["spec"]["clusterIP"] == "127.0.0.7"
    assert a["spec"]["clusterIP"].startswith("10.96.")
    with pytest.raises(KubeApiError) as err:  # a Service's IP never changes
        store.replace({**b, "spec": {**b["spec"], "clusterIP": "127.0.0.8"}})
    assert err.value.status == 422
    kept = store.replace({**b, "spec": {"ports": []}, "metadata": {**b["metadata"]}})
    assert kept["spec"]["clusterIP"] == "127.0.0.7"
    assert store.get("Service", "kre", "a")["metadata"]["uid"] == a["metadata"]["uid"]
    assert [
        s["metadata"]["name"]
        for s in store.list("services", "kre", "version-name notin (a-entrypoint)")
    ] == ["b"]
    assert store.list("services", None, "!type") == []
    with pytest.raises(KubeApiError) as err:
        parse_selector("a in b")
    assert err.value.status == 400
    store.delete("services", "kre", "a")
    with pytest.raises(KubeApiError) as err:
        store.delete("services", "kre", "a")
    assert err.value.payload["message"] == 'services "a" not found'


# -- Cluster ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", SERVICE_FORMS)
@pytest.mark.parametrize("runtime_id", [None, "rt"])
def test_cluster_finds_the_entrypoint_in_either_form(server, tmp_path, greeter, form, runtime_id):
    objects = version_objects(greeter, form=form, runtime_id=runtime_id)
    created = create_all(server.store, objects)
    cluster = Cluster(server.write_kubeconfig(tmp_path / "kubeconfig"))
    ip = created[-1]["spec"]["clusterIP"]
    svc = cluster.entrypoint_service("greeter-v1")
    assert svc["metadata"]["name"] == objects[-1]["metadata"]["name"]
    assert svc["kind"] == "Service" and svc["spec"]["clusterIP"] == ip
    assert cluster.entrypoint_address("greeter-v1") == f"{ip}:9000"
    found = cluster.version_objects("greeter-v1")
    assert sorted((o["kind"], o["metadata"]["name"]) for o in found) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects
    )
    assert cluster.entrypoint_service("greeter-v1", published=True) is None


def test_cluster_follows_publication(server, tmp_path, greeter):
    store = server.store
    create_all(store, version_objects(greeter, form="kre3"))
    store.delete("services", "kre", "greeter-v1-entrypoint")  # what KRE's Publish does
    active = store.create(entrypoint_service("greeter-v1", form="kre3", published=True))
    store.create(entrypoint_service("other-v1", form="kre3"))
    cluster = Cluster(server.write_kubeconfig(tmp_path / "kc"))
    assert cluster.entrypoint_address("greeter-v1") == f"{active['spec']['clusterIP']}:9000"
    assert cluster.entrypoint_service("greeter-v1", published=False) is None
    names = [o["metadata"]["name"] for o in cluster.version_objects("greeter-v1")]
    assert "active-entrypoint" in names and "other-v1-entrypoint" not in names


def test_no_matching_service_names_what_was_seen(server, tmp_path):
    server.store.create(entrypoint_service("other-v1"))
    cluster = Cluster(server.write_kubeconfig(tmp_path / "kc"))
    with pytest.raises(DeployError) as err:
        cluster.entrypoint_address("greeter-v1")
    text = str(err.value)
    assert "other-v1 (version-name=other-v1-entrypoint)" in text
    assert "'greeter-v1-entrypoint'" in text and "spec form" in text and "KRE 3.0 form" in text


def test_cluster_uses_namespace_and_kubeconfig_env(server, tmp_path, monkeypatch):
    server.store.create(entrypoint_service("v", namespace="elsewhere"))
    monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kc")))
    assert Cluster().services() == []
    assert [s["metadata"]["name"] for s in Cluster(namespace="elsewhere").services()] == ["v"]


def test_cluster_configuration_errors(tmp_path, monkeypatch):
    with pytest.raises(DeployError, match="does not exist"):
        Cluster(tmp_path / "missing")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(DeployError, match="no kubeconfig found"):
        Cluster()


def test_unreachable_api_is_a_deploy_error(tmp_path):
    with KubeApiServer() as srv:
        kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
    cluster = Cluster(kubeconfig)
    cluster._client.configuration.retries = 0  # do not wait for urllib3's retries
    with pytest.raises(DeployError, match="cannot reach the Kubernetes API"):
        cluster.services()


def test_importing_krtlab_does_not_import_kubernetes():
    code = "import sys, krtlab, krtlab.deploy.kube, krtlab.deploy.k8s; print('kubernetes' in sys.modules)"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_kubernetes_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # makes `import kubernetes` fail
    with pytest.raises(DeployError, match=r"pip install 'krtlab\[deploy\]'"):
        Cluster()


def test_raw_http_edges(server):
    """What any HTTP client sees: Status bodies for unknown paths, methods, watches, no token."""
    import urllib.error
    import urllib.request

    def call(path, method="GET", token=server.token):
        req = urllib.request.Request(server.url + path, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    code, body = call("/api/v1/namespaces/kre/services", token=None)
    assert (code, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    code, body = call("/api/v1/namespaces/kre/secrets")
    assert (code, body["reason"]) == (404, "NotFound")
    assert call("/api/v1/namespaces/kre/services?watch=true")[0] == 400
    assert call("/api/v1/namespaces/kre/services/x", method="PATCH")[0] == 405
    server.store.create({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "kre"}})
    server.store.create({"kind": "ConfigMap", "metadata": {"name": "b", "namespace": "kre"}})
    code, body = call("/api/v1/namespaces/kre/configmaps?fieldSelector=metadata.name%3Db")
    assert code == 200 and [i["metadata"]["name"] for i in body["items"]] == ["b"]
    assert body["kind"] == "ConfigMapList" and "kind" not in body["items"][0]
    code, body = call("/api/v1/namespaces/kre/configmaps/a", method="DELETE")
    assert (code, body["kind"], body["status"]) == (200, "Status", "Success")


# -- pods and node health -------------------------------------------------------------------------


def make_pod(deployment, phase="Running", ready=True, waiting=None, name_suffix="abc12"):
    """A Pod of ``deployment`` as the kubelet reports it (its template's labels)."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    state = {"waiting": waiting} if waiting else {"running": {}}
    container = {"name": "node", "ready": ready, "restartCount": 3 if waiting else 0,
                 "state": state}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{deployment['metadata']['name']}-{name_suffix}",
                     "namespace": "kre", "labels": dict(labels)},
        "spec": {"containers": [{"name": "node", "image": "x"}]},
        "status": {"phase": phase, "containerStatuses": [container]},
    }  # fmt: skip


CRASH = {"reason": "CrashLoopBackOff",
         "message": "back-off 40s restarting failed container: RuntimeError: no model"}  # fmt: skip


@pytest.mark.parametrize("form", SERVICE_FORMS)
def test_cluster_reads_node_health_from_the_pods(server, tmp_path, greeter, form):
    objects = create_all(server.store, version_objects(greeter, form=form))
    deps = {o["metadata"]["labels"]["type"]: o for o in objects if o["kind"] == "Deployment"}
    server.store.create(make_pod(deps["node"], phase="Pending", ready=False))
    server.store.create(make_pod(deps["entrypoint"]))
    stranger = make_pod(deps["node"], name_suffix="zzz99")
    stranger["metadata"]["labels"]["version-name"] = "other-v1"
    server.store.create(stranger)
    cluster = Cluster(server.write_kubeconfig(tmp_path / "kc"))
    pods = cluster.pods("greeter-v1")
    assert len(pods) == 2 and all(p["kind"] == "Pod" for p in pods)
    assert cluster.node_health("greeter-v1") == {"py-greeter": "Pending", "entrypoint": "Running"}
    node = next(p for p in pods if p["metadata"]["labels"]["type"] == "node")
    node = server.store.get("Pod", "kre", node["metadata"]["name"])
    node["status"] = make_pod(deps["node"], phase="Running", ready=False, waiting=CRASH)["status"]
    server.store.replace(node)
    health = cluster.node_health("greeter-v1")
    assert health["py-greeter"] == (
        "CrashLoopBackOff: back-off 40s restarting failed container: RuntimeError: no model"
    )


def test_pod_health_lines():
    from krtlab.deploy.health import is_failing, node_health, pod_health

    labels = {"type": "node", "version-name": "v", "node-name": "n", "node-id": "1"}
    dep = {"metadata": {"name": "v-n-1"}, "spec": {"template": {"metadata": {"labels": labels}}}}
    assert pod_health(make_pod(dep)) == "Running"
    assert pod_health(make_pod(dep, ready=False)) == "Running (not ready)"
    assert pod_health(make_pod(dep, phase="Pending", ready=False)) == "Pending"
    pull = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}
    assert pod_health(make_pod(dep, phase="Pending", waiting=pull)).startswith("ImagePullBackOff")
    creating = {"reason": "ContainerCreating"}
    assert pod_health(make_pod(dep, phase="Pending", ready=False, waiting=creating)) == "Pending"
    assert is_failing("CrashLoopBackOff: boom") and not is_failing("Pending")
    # two pods of one node (replicas, a rollout): the worse one is shown; terminating ones not
    crashing = make_pod(dep, waiting=CRASH, name_suffix="b")
    leaving = make_pod(dep, phase="Failed", name_suffix="c")
    leaving["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert node_health([make_pod(dep), crashing, leaving])["n"].startswith("CrashLoopBackOff")
    assert node_health([make_pod(dep), leaving]) == {"n": "Running"}


def test_wait_healthy_waits_fails_and_times_out():
    from krtlab.deploy.health import wait_healthy
    from krtlab.errors import DeployTimeout

    answers = iter([{}, {"n": "Pending"}, {"n": "Running", "entrypoint": "Running"}])
    health = wait_healthy(lambda: next(answers), "v", ["n"], interval=0.01, timeout=5)
    assert health == {"n": "Running", "entrypoint": "Running"}
    crash = {"n": "CrashLoopBackOff: RuntimeError: no model", "entrypoint": "Running"}
    with pytest.raises(DeployError, match=r"node\(s\) n are failing") as err:
        wait_healthy(lambda: crash, "v", ["n"], namespace="ns", interval=0.01, timeout=5)
    assert "RuntimeError: no model" in err.value.details
    assert "kubectl logs -n ns --all-containers -l version-name=v,node-name=n" in err.value.details
    with pytest.raises(DeployTimeout, match="n no pod yet"):
        wait_healthy(lambda: {}, "v", ["n"], interval=0.01, timeout=0.05)
