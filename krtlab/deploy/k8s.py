"""The Kubernetes objects KRE creates for a started (or published) KRT V1 version.

Pure functions over :class:`~krtlab.spec.model.Manifest`: nothing here talks to a cluster.
:func:`version_objects` lists what KRE's k8s-manager creates on *start* (``krt-v1.md`` §6):

- ConfigMap ``<v>-krt-conf``: the config values (nodes read them as env vars);
- ConfigMap ``<v>-conf-files``: ``nats_subject.json`` (rpc → first node's subject) and the
  nginx / fluent-bit configuration;
- one Deployment ``<v>-<node>-<nodeId>`` per workflow-node occurrence;
- the Deployment ``<v>-entrypoint``;
- the entrypoint Service, in one of two forms:

  ======  ============================================  ================================
  form    name (started / published)                    labels = selector ``version-name``
  ======  ============================================  ================================
  spec    ``<v>`` / ``active-entrypoint``               ``<v>-entrypoint``
  kre3    ``<v>-entrypoint`` / ``active-entrypoint``    ``<v>``
  ======  ============================================  ================================

  "spec" is the form of the user's specification (the default); "kre3" is what KRE 3.0 does.
  :func:`find_entrypoint_service` recognises both, with or without kre-5's ``<runtimeId>-``
  name prefix.

>>> entrypoint_service("greeter-v1")["metadata"]["name"]
'greeter-v1'
>>> entrypoint_service("greeter-v1", form="kre3", published=True)["metadata"]["name"]
'active-entrypoint'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from krtlab.errors import SpecError
from krtlab.spec.layout import id_source, layout, workflow_ids
from krtlab.spec.model import Manifest

from .k8s_objects import (
    Naming,
    NodeOccurrence,
    config_maps,
    entrypoint_deployment,
    node_deployment,
)

__all__ = [
    "ACTIVE_ENTRYPOINT",
    "SERVICE_FORMS",
    "entrypoint_service",
    "find_entrypoint_service",
    "service_version",
    "to_yaml",
    "version_objects",
]

SERVICE_FORMS = ("spec", "kre3")
ACTIVE_ENTRYPOINT = "active-entrypoint"
GRPC_PORT = 9000


def _check_form(form: str) -> None:
    if form not in SERVICE_FORMS:
        raise SpecError(f"unknown Service form {form!r}: use one of {', '.join(SERVICE_FORMS)}")


def _started_name(version: str, form: str) -> str:
    return version if form == "spec" else f"{version}-entrypoint"


def _label_value(version: str, form: str) -> str:
    return f"{version}-entrypoint" if form == "spec" else version


def entrypoint_service(
    version: str,
    *,
    published: bool = False,
    form: str = "spec",
    namespace: str = "kre",
    runtime_id: str | None = None,
) -> dict:
    """The entrypoint Service of ``version`` in ``form`` ("spec" or "kre3").

    Named after the version while started and ``active-entrypoint`` once published; with a
    ``runtime_id`` (kre>=5) the name is prefixed ``<runtimeId>-`` and a ``runtime-id`` label
    is added. Ports: ``grpc`` 9000 → 9000 and ``web`` 80 → 8080.
    """
    _check_form(form)
    name = ACTIVE_ENTRYPOINT if published else _started_name(version, form)
    labels = {"type": "entrypoint", "version-name": _label_value(version, form)}
    if runtime_id:
        name = f"{runtime_id}-{name}"
        labels["runtime-id"] = runtime_id
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "protocol": "TCP", "targetPort": GRPC_PORT},
                {"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080},
            ],
            "selector": dict(labels),
            "sessionAffinity": "None",
        },
    }


def _names_match(name: str, expected: str, runtime_id: str | None) -> bool:
    """``name`` is ``expected``, or ``expected`` behind a runtime prefix (kre>=5)."""
    if name == expected:
        return True
    if runtime_id:
        return name == f"{runtime_id}-{expected}"
    # no runtime-id label: accept any "<something>-" prefix
    return name.endswith(f"-{expected}") and len(name) > len(expected) + 1


def service_version(service: Mapping[str, Any], version: str) -> str | None:
    """How ``service`` is ``version``'s entrypoint Service: ``"started"``, ``"published"`` or
    None. Both forms are recognised (the selector decides which pods it reaches, so it wins
    over the labels) with or without a ``<runtimeId>-`` name prefix."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    labels = meta.get("labels") or {}
    selector = spec.get("selector") or labels
    if selector.get("type", labels.get("type")) != "entrypoint":
        return None
    name = str(meta.get("name") or "")
    runtime_id = selector.get("runtime-id") or labels.get("runtime-id")
    label = selector.get("version-name")
    for form in SERVICE_FORMS:
        if label != _label_value(version, form):
            continue
        if _names_match(name, _started_name(version, form), runtime_id):
            return "started"
        if _names_match(name, ACTIVE_ENTRYPOINT, runtime_id):
            return "published"
    return None


def find_entrypoint_service(
    services: Iterable[Mapping], version: str, *, published: bool | None = None
) -> dict | None:
    """The entrypoint Service of ``version`` among ``services`` (API JSON dicts), or None.

    ``published=True`` looks only for ``active-entrypoint``, ``False`` only for the version's
    own started Service; ``None`` prefers the started one, else ``active-entrypoint`` when it
    selects this version. Either form is recognised, with or without a runtime prefix.
    """
    found: dict[str, dict] = {}
    for svc in services:
        how = service_version(svc, version)
        if how is not None and how not in found:
            found[how] = dict(svc)
    if published is True:
        return found.get("published")
    if published is False:
        return found.get("started")
    return found.get("started") or found.get("published")


def _id_source(version: str, runtime_id: str | None) -> Callable[[], str]:
    """Ids like the admin API's, but drawn from a generator seeded by the version so the same
    project always gives the same objects."""
    return id_source(f"krtlab:{runtime_id or ''}:{version}")


def kre_ids(
    version: str, runtime_id: str | None, workflows: Sequence[Sequence[str]]
) -> list[tuple[str, list[str], list[str]]]:
    """``(workflow id, node ids, edge ids)`` per workflow (given as its node names), from the
    version's seeded generator: the ids the GraphQL API shows are those in the objects' labels."""
    return workflow_ids(workflows, _id_source(version, runtime_id))


def _config_values(manifest: Manifest, config: Mapping[str, str] | None) -> dict[str, str]:
    keys = [*manifest.config.variables, *manifest.config.files]
    given = dict(config or {})
    unknown = sorted(set(given) - set(keys))
    if unknown:
        declared = ", ".join(keys) or "none"
        raise SpecError(
            f"config keys not declared in krt.yml: {', '.join(unknown)} (declared: {declared})"
        )
    # KRE only starts a version whose config is complete; unset values are shown empty here
    return {k: str(given.get(k, "")) for k in keys}


def version_objects(
    manifest: Manifest,
    *,
    namespace: str = "kre",
    form: str = "spec",
    published: bool = False,
    config: Mapping[str, str] | None = None,
    runtime_id: str | None = None,
    version_id: str | None = None,
    request_timeout: int = 30,
) -> list[dict]:
    """Every object KRE's k8s-manager creates for ``manifest`` started (or published).

    Order: the two ConfigMaps, the node Deployments (workflow by workflow, in node order), the
    entrypoint Deployment and the entrypoint Service in ``form``. ``config`` gives values for the
    declared config keys (others are refused with :class:`~krtlab.errors.SpecError`). Node,
    edge and workflow ids look like KRE's and are stable for a given version name;
    ``version_id`` (KRE's Mongo id, ``KRT_VERSION_ID``) defaults to one derived from the name.
    """
    _check_form(form)
    version = manifest.version
    if version_id is None:
        version_id = hashlib.sha1(f"{runtime_id}:{version}".encode()).hexdigest()[:24]
    naming = Naming(version, namespace, runtime_id, version_id)
    nodes = {}
    for n in manifest.nodes:  # KRE's nodesMap: the last definition of a name wins
        nodes[n.name] = n
    for wf in manifest.workflows:
        missing = [name for name in wf.sequential if name not in nodes]
        if missing:
            raise SpecError(f"workflow {wf.name!r}: node {missing[0]!r} is not defined")
    steps, subjects = layout(manifest, _id_source(version, runtime_id), prefix=naming.prefixed(""))
    occs = [
        NodeOccurrence(s.workflow, s.workflow_id, s.node, s.node_id, nodes[s.node].image,
                       nodes[s.node].src, nodes[s.node].gpu, s.nats_input, s.nats_output)
        for s in steps
    ]  # fmt: skip

    objects: list[dict] = config_maps(naming, _config_values(manifest, config), subjects)
    objects += [node_deployment(naming, occ) for occ in occs]
    objects.append(
        entrypoint_deployment(
            naming,
            image=manifest.entrypoint.image,
            proto=manifest.entrypoint.proto or "public_input.proto",
            request_timeout=request_timeout,
            pod_version_label=_label_value(version, form),
        )
    )
    objects.append(
        entrypoint_service(
            version, published=published, form=form, namespace=namespace, runtime_id=runtime_id
        )
    )
    return objects


def to_yaml(objects: Iterable[Mapping]) -> str:
    """Multi-document YAML (``---`` between objects), keys in the objects' own order and
    multi-line strings (the conf files) as readable ``|`` blocks."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump_all(
        [_plain(o) for o in objects],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=100,
    )


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists (the safe dumper refuses other types)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
