"""deploy() and Deployment against the KAI Server stand-in, with the greeter really running.

One version is served for the whole module (processes are expensive on 2 shared cores); the
tests walk its lifecycle in file order and put it back as they found it (PUBLISHED).
"""

from __future__ import annotations

import pytest

import krtlab
from krtlab.deploy.deployment import Comparison, Deployment, deploy
from krtlab.deploy.kai import KaiServer
from krtlab.errors import DeployError, ValidationError


@pytest.fixture(scope="module")
def kai():
    from krtlab.deploy.standin import LocalKai

    with LocalKai() as server:
        yield server


@pytest.fixture(scope="module")
def server(kai) -> KaiServer:
    return KaiServer(kai.url, api_token=kai.api_token)


@pytest.fixture(scope="module")
def steps() -> list[str]:
    return []


@pytest.fixture(scope="module")
def greeter(kai, server, examples, steps) -> Deployment:
    return deploy(examples / "greeter", server, publish=True, comment="from the tests",
                  timeout=120, progress=steps.append)  # fmt: skip


def test_deploy_starts_and_publishes(greeter, steps):
    assert greeter.name == "greeter-v1"
    assert greeter.status == "PUBLISHED"
    assert greeter.version.name == "greeter-v1"
    assert any(s.startswith("built greeter-v1.krt") for s in steps)
    assert any("is CREATED" in s for s in steps)
    assert steps[-1] == "greeter-v1 is PUBLISHED"
    # KRE 7's queries carry no node status (only watchNodeStatus does): "" is unknown
    assert greeter.info.nodes == {"py-greeting/py-greeter": ""}


def test_call_through_the_runtime_entrypoint(greeter):
    assert greeter.call("PyGreet", name="John") == {"greeting": "Hello John!"}
    assert greeter.call("PyGreet", {"name": "Ann"}) == {"greeting": "Hello Ann!"}


def test_compare_local_and_deployed(greeter):
    result = greeter.compare("PyGreet", name="John")
    assert isinstance(result, Comparison)
    assert result.same and not result.differences
    assert result.local == result.deployed == {"greeting": "Hello John!"}
    assert "same answer" in repr(result)
    html = result._repr_html_()
    assert "local" in html and "deployed" in html and "Hello John!" in html


def test_comparison_lists_differences():
    result = Comparison("PyGreet", {"greeting": "Hi", "n": [1, 2]}, {"greeting": "Yo", "n": [1, 3]})
    assert not result.same
    assert result.differences == [("greeting", "Hi", "Yo"), ("n[1]", 2, 3)]
    assert "greeting" in repr(result)
    # printed: the verdict, both answers and each difference
    assert str(result).splitlines() == [
        "PyGreet: different answers: 2 fields differ",
        '  local:    {"greeting": "Hi", "n": [1, 2]}',
        '  deployed: {"greeting": "Yo", "n": [1, 3]}',
        '  ≠ greeting: local "Hi", deployed "Yo"',
        "  ≠ n[1]: local 2, deployed 3",
    ]
    # the differing rows carry a red mark, their text the theme's colour (dark themes too)
    html = result._repr_html_()
    assert html.count("border-left:3px solid") == 2 and "different answers" in html


def test_status_card(kai, greeter):
    text = repr(greeter)
    assert text.startswith("<Deployment greeter-v1 PUBLISHED")
    assert kai.entrypoint_address in text
    assert "py-greeting (PyGreet)" in text
    # no cluster: the node's health cannot be known, and the card says why (never a blank)
    assert "node status" in text and "KRE's admin API does not report it" in text
    assert "pass cluster=Cluster(kubeconfig)" in text  # and what to do about it
    html = greeter._repr_html_()
    assert "greeter-v1" in html and "PUBLISHED" in html and kai.entrypoint_address in html
    # with a cluster: the pods say it
    on_cluster = repr(Deployment("greeter-v1", greeter.server, cluster=kai.kubeconfig))
    assert "py-greeter Running" in on_cluster and "not reported" not in on_cluster
    assert "entrypoint pod" in on_cluster


def test_stop_while_published_is_refused_with_kres_message(greeter):
    with pytest.raises(DeployError, match="the version must be started before stopping") as info:
        greeter.stop("should not stop")
    assert info.value.details == "it is PUBLISHED: unpublish() first"
    assert greeter.status == "PUBLISHED"
    with pytest.raises(DeployError, match="must be started before publishing") as info:
        greeter.publish("twice")
    assert info.value.details == "it is already published"


def test_start_twice_is_refused_with_kres_message(greeter):
    with pytest.raises(DeployError, match="the version must be stopped before starting") as info:
        greeter.start("again")
    assert info.value.details == "it is already PUBLISHED"


def test_unknown_config_key_is_refused_with_kres_message(greeter):
    with pytest.raises(DeployError, match="version config contains an unknown key") as info:
        greeter.update_config(NOT_DECLARED="x")
    assert "greeter-v1 does not declare 'NOT_DECLARED'" in info.value.details


def test_started_unpublished_version_needs_an_address(kai, greeter):
    assert greeter.unpublish("look at it alone").status == "STARTED"
    try:
        with pytest.raises(DeployError) as info:
            greeter.call("PyGreet", name="John")
        text = str(info.value)
        assert "kubectl port-forward -n kre svc/greeter-v1 9000:9000" in text
        assert "address=" in text
        # the version's own Service, found in the cluster (its clusterIP is where it runs)
        on_cluster = Deployment("greeter-v1", greeter.server, cluster=kai.kubeconfig)
        assert on_cluster.call("PyGreet", name="Kim") == {"greeting": "Hello Kim!"}
        address = on_cluster.address()
        assert greeter.call("PyGreet", name="Lee", address=address) == {"greeting": "Hello Lee!"}
    finally:
        greeter.publish("back")
    assert greeter.status == "PUBLISHED"


def test_attach_to_a_deployed_version(server, greeter):
    attached = Deployment("greeter-v1", server)
    assert attached.info.status == "PUBLISHED"
    assert attached.call("PyGreet", name="Bo") == {"greeting": "Hello Bo!"}
    with pytest.raises(DeployError, match="no local version"):
        attached.compare("PyGreet", name="Bo")


def test_invalid_version_is_refused_before_upload(server, greeter):
    v = krtlab.Version("bad-v1")
    v.proto('syntax = "proto3"; package entrypoint; message R { string a = 1; }'
            "service Entrypoint { rpc Go (R) returns (R) {}; }")  # fmt: skip
    v.workflow("flow", entrypoint="Go", sequential=["nowhere"])
    before = [i.name for i in server.versions()]
    with pytest.raises(ValidationError):
        deploy(v, server)
    assert [i.name for i in server.versions()] == before


def test_deploy_sets_config_without_starting(server, examples):
    v = krtlab.load(examples / "price-estimator")
    v.config(OUTPUT_PRICE_CURRENCY="EUR")
    dep = deploy(v, server, start=False, timeout=120)
    assert dep.info.status == "CREATED"
    assert dep.info.config == {"OUTPUT_PRICE_CURRENCY": "EUR"}
    assert dep.info.config_completed
    # explicit config= wins over the notebook's value
    assert dep.update_config({"OUTPUT_PRICE_CURRENCY": "USD"}).config == {
        "OUTPUT_PRICE_CURRENCY": "USD"
    }
    with pytest.raises(DeployError, match="unknown key") as info:
        dep.update_config(OUTPUT_PRICE_CURENCY="GBP")
    assert info.value.details == (
        f"{dep.name} does not declare 'OUTPUT_PRICE_CURENCY' (did you mean "
        "'OUTPUT_PRICE_CURRENCY'?); it declares: OUTPUT_PRICE_CURRENCY"
    )


def test_environment_values_are_not_sent(server, examples, monkeypatch):
    # a key declared without a notebook value: the environment's value is a local secret
    monkeypatch.setenv("GREETING_PREFIX", "local secret")
    v = krtlab.load(examples / "greeter")
    v.name = "greeter-config-v1"
    v.config("GREETING_PREFIX")
    with pytest.raises(DeployError, match="version config is incomplete") as info:
        deploy(v, server, timeout=120)
    assert "GREETING_PREFIX" in info.value.details
    assert server.version("greeter-config-v1").config == {"GREETING_PREFIX": ""}


def test_publish_needs_start(examples, server):
    with pytest.raises(ValueError, match="publish=True needs start=True"):
        deploy(examples / "greeter", server, start=False, publish=True)


def test_status_card_of_an_unreachable_server_does_not_raise():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    dep = Deployment("greeter-v1", KaiServer(url, api_token="t", timeout=5))
    text = repr(dep)
    assert text.startswith("<Deployment greeter-v1 UNKNOWN")
    assert f"cannot reach the KAI Server at {url}" in text
    assert "UNKNOWN" in dep._repr_html_()
    with pytest.raises(DeployError, match=f"cannot reach the KAI Server at {url}"):
        deploy(examples_greeter(), dep.server)


def examples_greeter():
    from tests.support import EXAMPLES

    return EXAMPLES / "greeter"


def test_nodes_in_error_fail_the_deploy_although_kre_says_started(kai, server, examples, tmp_path):
    # KRE sets STARTED even when the pods crash; with a cluster deploy() looks at the pods
    import shutil

    project = tmp_path / "broken"
    shutil.copytree(examples / "greeter", project)
    (project / "krt.yml").write_text(
        (project / "krt.yml").read_text().replace("greeter-v1", "broken-v1")
    )
    main = project / "src" / "py-greeter" / "main.py"
    main.write_text(
        main.read_text().replace(
            "def init(ctx):", "def init(ctx):\n    raise RuntimeError('no model')\n"
        )
    )
    with pytest.raises(DeployError, match=r"node\(s\) py-greeter are failing") as info:
        deploy(project, server, timeout=120, cluster=kai.kubeconfig)
    assert "py-greeter: CrashLoopBackOff:" in info.value.details
    # the pod's waiting message (the stand-in: the error's first line); the logs have the rest
    assert "kubectl logs -n kre" in info.value.details
    assert server.version("broken-v1").status == "STARTED"
    Deployment("broken-v1", server).stop()


def test_panel_calls_the_deployed_version(greeter):
    panel = greeter.version.panel(target=greeter)
    assert panel._call_btn.description == "Call deployed"
    panel.set_request({"name": "Grace"})
    response = panel.submit(served=True)
    assert response.greeting == "Hello Grace!"
    assert "answered by deployed greeter-v1" in repr(panel)
    panel.close()


def test_compare_runs_locally_with_the_deployed_config(kai, server, examples):
    v = krtlab.load(examples / "price-estimator")
    v.name = "price-compare-v1"
    v.config(OUTPUT_PRICE_CURRENCY="EUR")  # the notebook's value ...
    dep = deploy(v, server, config={"OUTPUT_PRICE_CURRENCY": "GBP"}, cluster=kai.kubeconfig,
                 timeout=120)  # ... and the deployed one  # fmt: skip
    try:
        request = {"neighbourhood": "Brooklyn", "room_type": "Private room", "accommodates": 2}
        result = dep.compare("MakePrediction", request)
        assert result.same, result
        assert result.deployed["currency"] == "GBP"
        assert v.run("MakePrediction", request).response.currency == "EUR"  # left as it was
    finally:
        dep.stop()


# -- where calls go (no server needed) -----------------------------------------------------------


class OneVersion(KaiServer):
    """A server whose one version has the given status and whose runtime's entrypoint is
    ``entrypoint`` (KRE 7: ``entrypoint.<baseDomain>``)."""

    def __init__(self, status: str, entrypoint: str = "entrypoint.kre.example.com") -> None:
        super().__init__("http://kai.invalid", api_token="t", runtime_id="r")
        self._status, self._entrypoint = status, entrypoint

    def version(self, name):
        from krtlab.deploy.kai import VersionInfo

        return VersionInfo("id", name, "", self._status, "", None, {}, True, ())

    def entrypoint_address(self):
        return self._entrypoint


class FarCluster:
    """A cluster whose Services have cluster IPs this machine cannot reach."""

    namespace = "kre"

    def __init__(self, address: str) -> None:
        self.address = address

    def entrypoint_address(self, version):
        return self.address

    def entrypoint_service(self, version):
        return {"metadata": {"name": version}}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_published_bare_host_entrypoint_is_called_over_tls_on_443(monkeypatch):
    import krtlab.runtime.client as client

    dep = Deployment("v1", OneVersion("PUBLISHED"))
    assert dep.address() == "entrypoint.kre.example.com:443"
    seen = {}

    def fake_call(address, rpc, request=None, /, *, timeout, tls, root_certificates, **fields):
        seen.update(address=address, tls=client.resolve_address(address, tls)[1],
                    timeout=timeout, roots=root_certificates)  # fmt: skip
        return {"greeting": "hi"}

    monkeypatch.setattr(client, "call", fake_call)
    dep.root_certificates = "/etc/ssl/private-ca.pem"
    assert dep.call("PyGreet", name="x") == {"greeting": "hi"}
    assert seen == {"address": "entrypoint.kre.example.com:443", "tls": True, "timeout": 30.0,
                    "roots": "/etc/ssl/private-ca.pem"}  # fmt: skip
    dep.call("PyGreet", timeout=None)
    assert seen["timeout"] == 30.0
    dep.call("PyGreet", timeout=2.5)
    assert seen["timeout"] == 2.5
    # the stand-in's entrypoint: an explicit port other than 443, plaintext
    Deployment("v1", OneVersion("PUBLISHED", "127.0.0.1:9001")).call("PyGreet")
    assert seen["address"] == "127.0.0.1:9001" and seen["tls"] is False


def test_cluster_ip_unreachable_from_outside_says_how_to_port_forward():
    address = f"127.0.0.1:{free_port()}"  # nothing listens: as a cluster IP seen from outside
    dep = Deployment("v1", OneVersion("STARTED"), cluster=FarCluster(address))
    with pytest.raises(DeployError) as info:
        dep.call("PyGreet", name="x", timeout=5)
    err = info.value
    assert err.code == "cluster_ip_unreachable"
    assert f"cannot reach v1 at {address}" in err.message
    assert "cluster IP of its Service 'v1', only reachable from inside the cluster" in err.message
    assert "kubectl port-forward -n kre svc/v1 9000:9000" in err.details
    assert 'address="127.0.0.1:9000"' in err.details
    # an explicit address is the caller's: its failure is the plain gRPC one
    from krtlab.runtime.client import CallError

    with pytest.raises(CallError, match="UNAVAILABLE"):
        dep.call("PyGreet", address=address, timeout=5)
