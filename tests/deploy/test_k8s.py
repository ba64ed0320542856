"""The Kubernetes objects krtlab says KRE creates for a started/published version."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

import krtlab
from krtlab.deploy.k8s import (
    SERVICE_FORMS,
    entrypoint_service,
    find_entrypoint_service,
    to_yaml,
    version_objects,
)
from krtlab.errors import SpecError


@pytest.fixture(scope="module")
def greeter(examples):
    return krtlab.load(examples / "greeter").manifest()


@pytest.fixture(scope="module")
def price(examples):
    return krtlab.load(examples / "price-estimator").manifest()


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def named(objects, name, kind=None):
    found = [o for o in objects if o["metadata"]["name"] == name]
    (found,) = [o for o in found if kind in (None, o["kind"])]
    return found


def env_of(container):
    return {e["name"]: e["value"] for e in container["env"]}


def test_greeter_objects_are_the_documented_ones(greeter):
    objects = version_objects(greeter)
    kinds = [o["kind"] for o in objects]
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "Service"]
    names = [o["metadata"]["name"] for o in objects]
    assert names[:2] == ["greeter-v1-krt-conf", "greeter-v1-conf-files"]
    assert names[2].startswith("greeter-v1-py-greeter-")
    assert names[3:] == ["greeter-v1-entrypoint", "greeter-v1"]
    assert {o["metadata"]["namespace"] for o in objects} == {"kre"}
    for cm in by_kind(objects, "ConfigMap"):
        assert cm["metadata"]["labels"] == {"type": "version", "version-name": "greeter-v1"}


def test_nats_subject_json_maps_each_rpc_to_its_first_node(price):
    files = named(version_objects(price), "price-estimator-v1-conf-files")["data"]
    assert set(files) == {"default.conf", "nats_subject.json", "parsers.conf", "fluent-bit.conf"}
    assert json.loads(files["nats_subject.json"]) == {
        "MakePrediction": "price-estimator-v1-MakePrediction-entrypoint",
        "SavePredictionMetric": "price-estimator-v1-SavePredictionMetric-entrypoint",
    }
    assert "listen 8080" in files["default.conf"]
    assert "/var/log/app/*.log" in files["fluent-bit.conf"]


def test_node_deployments_chain_subjects_and_carry_kre_env(price):
    objects = version_objects(price, config={"OUTPUT_PRICE_CURRENCY": "EUR"})
    nodes = [d for d in by_kind(objects, "Deployment") if d["metadata"]["labels"]["type"] == "node"]
    assert [d["metadata"]["labels"]["node-name"] for d in nodes] == [
        "etl", "model", "output", "save-metric"
    ]  # fmt: skip
    envs = []
    for d in nodes:
        labels = d["metadata"]["labels"]
        node_id = labels["node-id"]
        assert len(node_id) == 5 and node_id.isalpha() and node_id.islower()
        assert d["metadata"]["name"] == f"price-estimator-v1-{labels['node-name']}-{node_id}"
        assert d["spec"]["selector"]["matchLabels"] == labels
        assert d["spec"]["template"]["metadata"]["labels"] == labels
        pod = d["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["initContainers"]] == ["krt-files-downloader"]
        runner, sidecar = pod["containers"]
        assert runner["name"] == d["metadata"]["name"]
        assert runner["image"] == "konstellation/kre-py:1.23.0"
        assert sidecar["name"] == "fluent-bit"
        assert runner["envFrom"] == [{"configMapRef": {"name": "price-estimator-v1-krt-conf"}}]
        assert {v["name"] for v in pod["volumes"]} == {
            "krt-base-path", "version-conf-files", "app-log-volume"
        }  # fmt: skip
        assert "nodeSelector" not in pod and "tolerations" not in pod
        envs.append(env_of(runner))
    etl, model, output, save = envs
    assert etl["KRT_NATS_INPUT"] == "price-estimator-v1-MakePrediction-entrypoint"
    assert etl["KRT_NATS_OUTPUT"] == model["KRT_NATS_INPUT"] != ""
    assert model["KRT_NATS_OUTPUT"] == output["KRT_NATS_INPUT"] != ""
    assert output["KRT_NATS_OUTPUT"] == ""  # the last node answers the reply inbox
    assert save["KRT_NATS_INPUT"] == "price-estimator-v1-SavePredictionMetric-entrypoint"
    assert save["KRT_NATS_OUTPUT"] == ""
    assert (
        etl["KRT_WORKFLOW_NAME"] == "ny-room-price" and save["KRT_WORKFLOW_NAME"] == "save-metrics"
    )
    assert etl["KRT_WORKFLOW_ID"] == output["KRT_WORKFLOW_ID"] != save["KRT_WORKFLOW_ID"]
    assert etl["KRT_HANDLER_PATH"] == "src/etl/main.py"
    assert etl["KRT_VERSION"] == "price-estimator-v1"
    assert etl["KRT_BASE_PATH"] == "/krt-files"
    assert etl["KRT_NATS_SERVER"] == "kre-nats:4222"
    assert etl["KRT_NATS_MONGO_WRITER"] == "mongo_writer"
    assert named(objects, "price-estimator-v1-krt-conf")["data"] == {"OUTPUT_PRICE_CURRENCY": "EUR"}


def test_entrypoint_deployment(greeter):
    objects = version_objects(greeter, request_timeout=45, version_id="abc123")
    ep = named(objects, "greeter-v1-entrypoint")
    assert ep["metadata"]["labels"] == {
        "type": "entrypoint", "version-name": "greeter-v1",
        "node-name": "entrypoint", "node-id": "entrypoint",
    }  # fmt: skip
    pod = ep["spec"]["template"]["spec"]
    main, fluent, web = pod["containers"]
    assert (main["name"], main["image"]) == ("greeter-v1", "konstellation/kre-entrypoint:1.7.1")
    assert main["ports"] == [{"containerPort": 9000, "protocol": "TCP"}]
    assert "envFrom" not in main  # KRE gives the entrypoint no config values
    env = env_of(main)
    assert env["KRT_NATS_SUBJECTS_FILE"] == "/src/conf/nats_subject.json"
    assert env["KRT_REQUEST_TIMEOUT"] == "45"
    assert env["KRT_VERSION_ID"] == "abc123"
    for key in ("KRT_WORKFLOW_NAME", "KRT_WORKFLOW_ID", "KRT_NODE_NAME", "KRT_NODE_ID"):
        assert env[key] == "entrypoint"
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/src/conf/nats_subject.json"]["subPath"] == "nats_subject.json"
    assert fluent["name"] == "fluent-bit"
    assert (web["name"], web["ports"][0]["containerPort"]) == ("greeter-v1-web", 8080)
    web_mounts = {m["mountPath"]: m for m in web["volumeMounts"]}
    assert web_mounts["/proto/public_input.proto"]["subPath"] == "greeter-v1/public_input.proto"


@pytest.mark.parametrize("form", SERVICE_FORMS)
def test_the_service_selects_the_entrypoint_pods(greeter, form):
    objects = version_objects(greeter, form=form)
    (svc,) = by_kind(objects, "Service")
    pods = named(objects, "greeter-v1-entrypoint", "Deployment")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert svc["spec"]["selector"].items() <= pods.items()
    for d in by_kind(objects, "Deployment"):
        if d["metadata"]["labels"]["type"] == "node":  # ...and nothing else
            assert (
                not svc["spec"]["selector"].items()
                <= d["spec"]["template"]["metadata"]["labels"].items()
            )


def test_service_forms_match_spec_and_kre3():
    spec = entrypoint_service("greeter-v1")
    assert spec["metadata"] == {
        "name": "greeter-v1",
        "namespace": "kre",
        "labels": {"type": "entrypoint", "version-name": "greeter-v1-entrypoint"},
    }
    assert spec["spec"] == {
        "type": "ClusterIP",
        "ports": [
            {"name": "grpc", "port": 9000, "protocol": "TCP", "targetPort": 9000},
            {"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080},
        ],
        "selector": {"type": "entrypoint", "version-name": "greeter-v1-entrypoint"},
        "sessionAffinity": "None",
    }
    kre3 = entrypoint_service("greeter-v1", form="kre3", namespace="ns1")
    assert kre3["metadata"]["name"] == "greeter-v1-entrypoint"
    assert kre3["metadata"]["namespace"] == "ns1"
    assert kre3["spec"]["selector"] == {"type": "entrypoint", "version-name": "greeter-v1"}
    assert kre3["metadata"]["labels"] == kre3["spec"]["selector"]
    for form in SERVICE_FORMS:
        published = entrypoint_service("greeter-v1", form=form, published=True)
        assert published["metadata"]["name"] == "active-entrypoint"
        prefixed = entrypoint_service("greeter-v1", form=form, published=True, runtime_id="rt")
        assert prefixed["metadata"]["name"] == "rt-active-entrypoint"
        assert prefixed["spec"]["selector"]["runtime-id"] == "rt"
    assert entrypoint_service("v", runtime_id="rt")["metadata"]["name"] == "rt-v"
    with pytest.raises(SpecError, match="kre3"):
        entrypoint_service("v", form="kre5")


def test_published_version_objects_use_active_entrypoint(greeter):
    for form in SERVICE_FORMS:
        (svc,) = by_kind(version_objects(greeter, form=form, published=True), "Service")
        assert svc["metadata"]["name"] == "active-entrypoint"


def test_runtime_id_gives_kre5_names_labels_and_subjects(price):
    objects = version_objects(price, runtime_id="rt1")
    assert all(o["metadata"]["name"].startswith("rt1-price-estimator-v1") for o in objects[:-1])
    assert objects[-1]["metadata"]["name"] == "rt1-price-estimator-v1"
    assert all(o["metadata"]["labels"]["runtime-id"] == "rt1" for o in objects)
    files = named(objects, "rt1-price-estimator-v1-conf-files")["data"]
    assert json.loads(files["nats_subject.json"])["MakePrediction"] == (
        "rt1-price-estimator-v1-MakePrediction-entrypoint"
    )
    etl = next(d for d in objects if d["metadata"]["labels"].get("node-name") == "etl")
    env = env_of(etl["spec"]["template"]["spec"]["containers"][0])
    assert env["KRT_RUNTIME_ID"] == "rt1"
    assert env["KRT_NATS_OUTPUT"].startswith("rt1-")
    assert env["KRT_NATS_MONGO_WRITER"] == "mongo_writer_data.rt1"


def test_gpu_nodes_get_limits_node_selector_and_tolerations(greeter):
    gpu = replace(greeter, nodes=tuple(replace(n, gpu=True) for n in greeter.nodes))
    (node,) = [d for d in version_objects(gpu) if d["metadata"]["labels"]["type"] == "node"]
    pod = node["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources == {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
    assert pod["nodeSelector"] == {"konstellation.io/gpu": "true"}
    assert pod["tolerations"] == [
        {"key": "konstellation.io/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]


def test_ids_are_stable_and_config_keys_are_checked(price):
    assert version_objects(price) == version_objects(price)
    assert named(version_objects(price), "price-estimator-v1-krt-conf")["data"] == {
        "OUTPUT_PRICE_CURRENCY": ""
    }
    with pytest.raises(SpecError, match="NOPE"):
        version_objects(price, config={"NOPE": "1"})


def test_to_yaml_round_trips_and_is_readable(price):
    objects = version_objects(price)
    text = to_yaml(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert text.startswith("---\napiVersion: v1\nkind: ConfigMap\n")
    assert "  fluent-bit.conf: |\n" in text  # conf files as blocks, not escaped strings
    assert "&id" not in text and "*id" not in text  # no YAML anchors


# -- finding the entrypoint Service ------------------------------------------------------------


def _svc(**kw):
    svc = entrypoint_service("greeter-v1", **kw)
    svc["spec"]["clusterIP"] = "10.96.0.20"
    return svc


@pytest.mark.parametrize("form", SERVICE_FORMS)
@pytest.mark.parametrize("runtime_id", [None, "rt"])
def test_find_recognises_both_forms_with_and_without_prefix(form, runtime_id):
    started = _svc(form=form, runtime_id=runtime_id)
    active = _svc(form=form, runtime_id=runtime_id, published=True)
    other = entrypoint_service("other-v1", form=form, runtime_id=runtime_id)
    assert find_entrypoint_service([other, started], "greeter-v1") == started
    assert find_entrypoint_service([other, active], "greeter-v1") == active
    assert find_entrypoint_service([active, started], "greeter-v1") == started
    assert find_entrypoint_service([active, started], "greeter-v1", published=True) == active
    assert find_entrypoint_service([active], "greeter-v1", published=False) is None
    assert find_entrypoint_service([other], "greeter-v1") is None


def test_find_accepts_a_prefix_without_runtime_label_and_ignores_other_services():
    svc = _svc(form="kre3")
    svc["metadata"]["name"] = "prod-greeter-v1-entrypoint"
    assert find_entrypoint_service([svc], "greeter-v1") == svc
    plain = {"metadata": {"name": "greeter-v1"}, "spec": {"selector": {"app": "web"}}}
    assert find_entrypoint_service([plain], "greeter-v1") is None
    # the active-entrypoint of another version is not ours
    theirs = entrypoint_service("other-v1", published=True)
    assert find_entrypoint_service([theirs], "greeter-v1") is None


def test_invalid_workflow_node_is_a_spec_error(greeter):
    wf = replace(greeter.workflows[0], sequential=("ghost",))
    with pytest.raises(SpecError, match="ghost"):
        version_objects(replace(greeter, workflows=(wf,)))
