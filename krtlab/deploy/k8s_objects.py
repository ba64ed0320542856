"""Builders for the ConfigMaps and Deployments KRE's k8s-manager creates for a started version.

Used by :func:`krtlab.deploy.k8s.version_objects`; the facts come from
``kre@kre-3.0.0:engine/k8s-manager/kubernetes/version/`` (see ``krt-v1.md`` §6). With a
``runtime_id`` the kre-5 variant is produced: every name gains a ``<runtimeId>-`` prefix,
objects a ``runtime-id`` label, NATS subjects the runtime prefix and the pods ``KRT_RUNTIME_ID``.

Everything here returns plain API-JSON dicts (camelCase keys) in a readable key order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BASE_PATH",
    "NATS_SUBJECTS_FILE",
    "Naming",
    "NodeOccurrence",
    "config_maps",
    "entrypoint_deployment",
    "node_deployment",
]

BASE_PATH = "/krt-files"  # KRT_BASE_PATH: where the init container unpacks the .krt
NATS_SUBJECTS_FILE = "/src/conf/nats_subject.json"
NATS_SERVER = "kre-nats:4222"
CONF_VOLUME = "version-conf-files"
KRT_VOLUME = "krt-base-path"
LOG_VOLUME = "app-log-volume"
LOG_DIR = "/var/log/app"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "konstellation.io/gpu"

# Endpoints the admin API passes to the k8s-manager in a default `kre` Helm release. The Mongo
# URI really carries the admin user and password: krtlab leaves credentials out.
DEFAULT_ENDPOINTS = {
    "KRT_INFLUX_URI": "http://kre-influxdb:8086",
    "KRT_MONGO_URI": "mongodb://kre-mongo-0:27017/admin?replicaSet=rs0",
    "KRT_MONGO_DB_NAME": "data",
    "KRT_MONGO_BUCKET": "krt",
}

# The conf-files ConfigMap also holds the nginx and fluent-bit configuration. These texts are
# krtlab's own, equivalent in effect: nginx lists /proto on 8080; fluent-bit tails the app logs,
# tags each record with the version/node/workflow and ships it to NATS.
NGINX_CONF = """\
server {
    listen 8080;
    server_name localhost;
    location / {
        root /proto;
        autoindex on;
    }
}
"""

PARSERS_CONF = """\
[PARSER]
    Name   multiline_pattern
    Format regex
    Regex  ^(?<logtime>\\d{4}-\\d{2}-\\d{2}T\\d{1,2}:\\d{1,2}:\\d{1,2}(\\.\\d+Z|\\+0000)) \
(?<level>(ERROR|WARN|INFO|DEBUG)) (?<capture>.*)
"""

FLUENT_BIT_CONF = """\
[SERVICE]
    Flush        1
    Daemon       Off
    Log_Level    info
    Parsers_File parsers.conf

[INPUT]
    Name             tail
    Tag              mongo_writer_logs
    Path             /var/log/app/*.log
    Multiline        On
    Parser_Firstline multiline_pattern

[FILTER]
    Name   record_modifier
    Match  *
    Record versionId ${KRT_VERSION_ID}
    Record versionName ${KRT_VERSION}
    Record nodeName ${KRT_NODE_NAME}
    Record nodeId ${KRT_NODE_ID}
    Record workflowName ${KRT_WORKFLOW_NAME}
    Record workflowId ${KRT_WORKFLOW_ID}

[OUTPUT]
    Name  nats
    Match *
    Host  kre-nats
    Port  4222
"""


@dataclass(frozen=True)
class Naming:
    """How one started version names things (kre-3, or kre-5 with a runtime id)."""

    version: str
    namespace: str = "kre"
    runtime_id: str | None = None
    version_id: str = ""

    def name(self, suffix: str) -> str:
        """``<version>-<suffix>``, runtime-prefixed on kre-5."""
        return self.prefixed(f"{self.version}-{suffix}")

    def prefixed(self, name: str) -> str:
        return f"{self.runtime_id}-{name}" if self.runtime_id else name

    def labels(self, kind: str, **extra: str) -> dict[str, str]:
        out = {"type": kind, "version-name": self.version, **extra}
        if self.runtime_id:
            out["runtime-id"] = self.runtime_id
        return out

    def metadata(self, name: str, labels: Mapping[str, str]) -> dict[str, object]:
        return {"name": name, "namespace": self.namespace, "labels": dict(labels)}

    @property
    def mongo_writer(self) -> str:
        return f"mongo_writer_data.{self.runtime_id}" if self.runtime_id else "mongo_writer"


@dataclass(frozen=True)
class NodeOccurrence:
    """A node as it occurs in one workflow (KRE deploys each occurrence separately)."""

    workflow: str
    workflow_id: str
    node: str
    node_id: str
    image: str
    src: str
    gpu: bool
    nats_input: str
    nats_output: str  # "" for the last node: it answers the entrypoint's reply inbox


def _env(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def common_env(naming: Naming, endpoints: Mapping[str, str] | None = None) -> dict[str, str]:
    """``getCommonEnvVars``: what every container of the version gets."""
    ends = {**DEFAULT_ENDPOINTS, **(endpoints or {})}
    env = {
        "KRT_INFLUX_URI": ends["KRT_INFLUX_URI"],
        "KRT_VERSION_ID": naming.version_id,
        "KRT_VERSION": naming.version,
        "KRT_MONGO_URI": ends["KRT_MONGO_URI"],
        "KRT_MONGO_DB_NAME": ends["KRT_MONGO_DB_NAME"],
        "KRT_MONGO_BUCKET": ends["KRT_MONGO_BUCKET"],
        "KRT_BASE_PATH": BASE_PATH,
        "KRT_NATS_SERVER": NATS_SERVER,
    }
    if naming.runtime_id:
        env["KRT_RUNTIME_ID"] = naming.runtime_id
    return env


def config_maps(
    naming: Naming, config: Mapping[str, str], subjects: Mapping[str, str]
) -> list[dict[str, object]]:
    """``<v>-krt-conf`` (config values, read as env vars) and ``<v>-conf-files``."""
    labels = naming.labels("version")
    # Go's json.Marshal of a map: sorted keys, no spaces
    nats_json = json.dumps(dict(subjects), sort_keys=True, separators=(",", ":"))
    files = {
        "default.conf": NGINX_CONF,
        "nats_subject.json": nats_json,
        "parsers.conf": PARSERS_CONF,
        "fluent-bit.conf": FLUENT_BIT_CONF,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": naming.metadata(naming.name("krt-conf"), labels),
            "data": dict(config),
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": naming.metadata(naming.name("conf-files"), labels),
            "data": files,
        },
    ]


def _mount(name: str, path: str, *, sub_path: str = "", read_only: bool = False) -> dict:
    out: dict[str, object] = {"name": name, "mountPath": path}
    if sub_path:
        out["subPath"] = sub_path
    if read_only:
        out["readOnly"] = True
    return out


def _volumes(naming: Naming) -> list[dict[str, object]]:
    return [
        {"name": KRT_VOLUME, "emptyDir": {}},
        {"name": CONF_VOLUME, "configMap": {"name": naming.name("conf-files")}},
        {"name": LOG_VOLUME, "emptyDir": {}},
    ]


def _downloader(env: Mapping[str, str]) -> dict[str, object]:
    """Init container: fetches the version's .krt from Mongo and unpacks it into /krt-files."""
    return {
        "name": "krt-files-downloader",
        "image": "konstellation/krt-files-downloader:latest",
        "imagePullPolicy": "IfNotPresent",
        "env": _env(env),
        "volumeMounts": [_mount(KRT_VOLUME, BASE_PATH)],
    }


def _fluent_bit(env: Mapping[str, str]) -> dict[str, object]:
    conf = "/fluent-bit/etc/"
    return {
        "name": "fluent-bit",
        "image": "fluent/fluent-bit:1.3",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/fluent-bit/bin/fluent-bit", "-c", conf + "fluent-bit.conf", "-v"],
        "env": _env(env),
        "volumeMounts": [
            *(
                _mount(CONF_VOLUME, conf + f, sub_path=f, read_only=True)
                for f in ("fluent-bit.conf", "parsers.conf")
            ),
            _mount(LOG_VOLUME, LOG_DIR, read_only=True),
        ],
    }


def _deployment(
    naming: Naming,
    name: str,
    labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    pod_spec: dict[str, object],
) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": naming.metadata(name, labels),
        "spec": {
            "selector": {"matchLabels": dict(pod_labels)},
            "template": {"metadata": {"labels": dict(pod_labels)}, "spec": pod_spec},
        },
    }


def node_deployment(
    naming: Naming, occ: NodeOccurrence, endpoints: Mapping[str, str] | None = None
) -> dict[str, object]:
    """``<v>-<node>-<nodeId>``: one workflow-node occurrence, its runner plus fluent-bit."""
    name = naming.name(f"{occ.node}-{occ.node_id}")
    labels = naming.labels("node", **{"node-name": occ.node, "node-id": occ.node_id})
    env = common_env(naming, endpoints)
    env.update(
        KRT_WORKFLOW_ID=occ.workflow_id,
        KRT_WORKFLOW_NAME=occ.workflow,
        KRT_NODE_ID=occ.node_id,
        KRT_NODE_NAME=occ.node,
        KRT_HANDLER_PATH=occ.src,
        KRT_NATS_MONGO_WRITER=naming.mongo_writer,
        KRT_NATS_INPUT=occ.nats_input,
        KRT_NATS_OUTPUT=occ.nats_output,
    )
    gpu = {GPU_RESOURCE: "1"} if occ.gpu else {}
    runner = {
        "name": name,
        "image": occ.image,
        "imagePullPolicy": "IfNotPresent",
        "env": _env(env),
        # every config value becomes an env var of the node (not of the entrypoint)
        "envFrom": [{"configMapRef": {"name": naming.name("krt-conf")}}],
        "volumeMounts": [_mount(KRT_VOLUME, BASE_PATH), _mount(LOG_VOLUME, LOG_DIR)],
        "resources": {"limits": dict(gpu), "requests": dict(gpu)} if gpu else {},
    }
    pod: dict[str, object] = {"initContainers": [_downloader(env)]}
    if occ.gpu:
        pod["nodeSelector"] = {GPU_NODE_LABEL: "true"}
        pod["tolerations"] = [
            {"key": key, "operator": "Exists", "effect": "NoSchedule"}
            for key in (GPU_NODE_LABEL, GPU_RESOURCE)
        ]
    pod["containers"] = [runner, _fluent_bit(env)]
    pod["volumes"] = _volumes(naming)
    return _deployment(naming, name, labels, labels, pod)


def entrypoint_deployment(
    naming: Naming,
    *,
    image: str,
    proto: str,
    request_timeout: int,
    pod_version_label: str,
    endpoints: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """``<v>-entrypoint``: the gRPC entrypoint (:9000), fluent-bit and the proto web (:8080).

    ``pod_version_label`` is the pods' ``version-name``: the entrypoint Service selects pods by
    it, so it follows the Service form (the plain version for kre3, ``<v>-entrypoint`` for spec).
    """
    ids = {"node-name": "entrypoint", "node-id": "entrypoint"}
    labels = naming.labels("entrypoint", **ids)
    pod_labels = {**labels, "version-name": pod_version_label}
    env = common_env(naming, endpoints)
    env.update(
        KRT_NATS_SUBJECTS_FILE=NATS_SUBJECTS_FILE,
        KRT_WORKFLOW_NAME="entrypoint",
        KRT_WORKFLOW_ID="entrypoint",
        KRT_NODE_NAME="entrypoint",
        KRT_NODE_ID="entrypoint",
        KRT_REQUEST_TIMEOUT=str(request_timeout),
    )
    proto_dir = f"{naming.runtime_id}/{naming.version}" if naming.runtime_id else naming.version
    entrypoint = {
        "name": naming.version,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 9000, "protocol": "TCP"}],
        "env": _env(env),
        "volumeMounts": [
            _mount(CONF_VOLUME, NATS_SUBJECTS_FILE, sub_path="nats_subject.json", read_only=True),
            _mount(KRT_VOLUME, BASE_PATH),
            _mount(LOG_VOLUME, LOG_DIR),
        ],
    }
    web = {
        "name": f"{naming.version}-web",
        "image": "nginxinc/nginx-unprivileged:stable-alpine",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "volumeMounts": [
            _mount(
                CONF_VOLUME,
                "/etc/nginx/conf.d/default.conf",
                sub_path="default.conf",
                read_only=True,
            ),
            _mount(KRT_VOLUME, BASE_PATH),
            _mount(KRT_VOLUME, f"/proto/{proto}", sub_path=f"{proto_dir}/{proto}", read_only=True),
        ],
    }
    pod = {
        "initContainers": [_downloader(env)],
        "containers": [entrypoint, _fluent_bit(env), web],
        "volumes": _volumes(naming),
    }
    return _deployment(naming, naming.name("entrypoint"), labels, pod_labels, pod)
