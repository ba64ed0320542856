"""What differs between a local version and the one a KAI Server has under that name:
``d.diff()`` on a :class:`~krtlab.deploy.deployment.Deployment` and ``krtlab diff PATH``.

Only what the server really reports is compared. KRE 7's ``version`` query
(``kre@kre-7.0.0:engine/admin-api/schema.graphql``) gives a version's ``description``, its
``workflows`` (name, ``nodes{id name status}`` in order, ``edges{fromNode toNode}``) and its
``config{vars{key value type}}``, so :func:`diff_version` compares:

- the description;
- workflows by name, and each one's nodes in order;
- nodes by name, as they occur in workflows (the API lists no node a workflow does not use);
- config keys and their type (VARIABLE or FILE); config values: the deployed ones against
  those given with ``v.config(K=...)``, which are what :func:`~krtlab.deploy.deployment.deploy`
  sends (values from ``.env`` files or the environment never are, so they are not compared).

KRE stores a node's image, ``src`` and ``gpu``, a workflow's entrypoint rpc and the
entrypoint's image, but its schema has no field for them; and it never gives the ``.krt`` back,
so source code, protos, assets and docs cannot be compared at all. With a cluster
(:class:`~krtlab.deploy.kube.Cluster`) and a running version, the Deployments KRE's
k8s-manager created tell images, ``src`` (``KRT_HANDLER_PATH``), ``gpu`` (an
``nvidia.com/gpu`` limit), each workflow's entrypoint (``nats_subject.json`` maps the rpc to
its first node's ``KRT_NATS_INPUT``) and the entrypoint image: then those are compared too.

Values are never shown in full for FILE keys (size and a hash instead) nor at all for keys
that look secret (:data:`SECRET_MARKERS`): only whether they differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from krtlab.errors import DeployError
from krtlab.spec.suggest import did_you_mean

from .compare import _CELL

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

    from .kai import KaiServer

__all__ = ["SECRET_MARKERS", "Change", "VersionDiff", "diff_version", "looks_secret"]

# a key containing one of these (any case) holds a value never shown, not even hashed
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
RUNNING = ("STARTING", "STARTED", "PUBLISHED", "STOPPING")

# the version as KRE 7's schema gives it: everything the diff can compare
_FIELDS = """name description status
  config { vars { key value type } completed }
  workflows { name nodes { id name } edges { fromNode toNode } }"""

_SOURCE = "node source code, protos, assets and docs: KRE's admin API does not give the .krt back"
_NOT_REPORTED = (
    "node images, src and gpu, workflow entrypoints (rpc) and the entrypoint image: the admin "
    "API does not report them (KRE stores them, its schema has no field for them)"
)


def looks_secret(key: str) -> bool:
    """Whether a config key's value is kept out of every output (see :data:`SECRET_MARKERS`)."""
    upper = key.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


@dataclass(frozen=True)
class Change:
    """One difference.

    ``sign`` is ``"+"`` (only in the local version), ``"-"`` (only on the server) or ``"~"``
    (both, different); ``area`` is ``"version"``, ``"workflow"``, ``"node"``,
    ``"entrypoint"``, ``"config key"`` or ``"config value"``; ``name`` what it is called;
    ``field`` what differs (``"nodes"``, ``"image"``, ``"type"``, ...); ``local`` and
    ``deployed`` the values as shown (secret values hidden, FILE values summarised).
    """

    sign: str
    area: str
    name: str
    field: str = ""
    local: str | None = None
    deployed: str | None = None

    def __str__(self) -> str:
        subject = " ".join(p for p in (self.area, self.name, self.field) if p)
        if self.sign == "~":
            return f"~ {subject}: local {self.local}, deployed {self.deployed}"
        shown = self.local if self.sign == "+" else self.deployed
        where = "only local" if self.sign == "+" else "only deployed"
        return f"{self.sign} {subject}: {where}" + (f" ({shown})" if shown else "")


@dataclass
class VersionDiff:
    """What differs between a local version and a deployed one (:func:`diff_version`).

    ``changes`` lists every :class:`Change`; ``same`` is True when there is none (among what
    could be compared: ``not_compared`` says what could not, and why); ``notes`` tell what the
    comparison left aside on purpose (values only on the server, hidden secrets).
    """

    local_name: str
    name: str
    server: str
    status: str
    changes: list[Change] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.changes

    @property
    def exit_code(self) -> int:
        """``krtlab diff``'s: 0 identical, 1 different."""
        return 0 if self.same else 1

    def _title(self) -> str:
        local = self.local_name if self.local_name == self.name else f"{self.local_name} (local)"
        return f"{local} vs {self.name} {self.status} on {self.server}"

    def _verdict(self) -> str:
        if self.same:
            return "no differences in what could be compared"
        n = len(self.changes)
        return f"{n} difference{'s' if n != 1 else ''}"

    def text(self) -> str:
        """The readable diff (``+`` only local, ``-`` only deployed, ``~`` different)."""
        lines = [f"diff {self._title()}: {self._verdict()}"]
        lines += [f"  {c}" for c in self.changes]
        if self.compared:
            lines.append("compared: " + ", ".join(self.compared))
        for title, items in (("not compared", self.not_compared), ("notes", self.notes)):
            lines += [f"{title}:", *(f"  {t}" for t in items)] if items else []
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready data (``krtlab diff --json``)."""
        return {
            "local": self.local_name, "deployed": self.name, "server": self.server,
            "status": self.status, "same": self.same,
            "changes": [{**asdict(c), "text": str(c)} for c in self.changes],
            "compared": list(self.compared), "not_compared": list(self.not_compared),
            "notes": list(self.notes),
        }  # fmt: skip

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.same else "#b00"
        head = (
            f"<b>{escape(self._title())}</b>: "
            f'<span style="color:{colour};font-weight:bold">{escape(self._verdict())}</span>'
        )
        rows = "".join(
            f"<tr><td {_CELL}><code>{escape(c.sign)}</code></td>"
            f"<th {_CELL}>{escape(' '.join(p for p in (c.area, c.name, c.field) if p))}</th>"
            f"<td {_CELL}>{escape(c.local or '—')}</td><td {_CELL}>{escape(c.deployed or '—')}"
            f"</td></tr>"
            for c in self.changes
        )
        table = ""
        if rows:
            th = "".join(f"<th {_CELL}>{t}</th>" for t in ("", "what", "local", "deployed"))
            table = f'<table style="border-collapse:collapse"><tr>{th}</tr>{rows}</table>'
        parts = [f"<p>{head}</p>", table]
        for title, items in (("compared", self.compared), ("not compared", self.not_compared),
                             ("notes", self.notes)):  # fmt: skip
            if items:
                lis = "".join(f"<li>{escape(t)}</li>" for t in items)
                parts.append(f'<p style="margin:4px 0">{title}:</p><ul style="margin:0">{lis}</ul>')
        return "<div>" + "".join(parts) + "</div>"


# -- the server's side ---------------------------------------------------------------------------


def _deployed(kai: KaiServer, name: str) -> dict[str, Any]:
    """The version ``name`` as the ``versions`` query gives it (one request: its names are the
    did-you-mean list when ``name`` is not there)."""
    # KaiServer._query names the runtime as every other call does; only the fields differ
    versions = kai._query("versions", {}, {}, _FIELDS) or []
    for data in versions:
        if data.get("name") == name:
            return data
    names = [str(v.get("name")) for v in versions]
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    raise DeployError(
        f"no version {name!r} on {kai.url}: nothing to compare with",
        code="version_not_found",
        details=did_you_mean(name, names) or f"it has: {shown or 'no versions'}",
    )


def _node_order(workflow: Mapping[str, Any]) -> list[str]:
    """A deployed workflow's node names in order: along its edges (KRE lists the nodes in
    order too; the edges say it explicitly), else as listed."""
    nodes = list(workflow.get("nodes") or ())
    by_id = {n.get("id"): str(n.get("name", "")) for n in nodes}
    edges = {e.get("fromNode"): e.get("toNode") for e in workflow.get("edges") or ()}
    starts = [i for i in by_id if i not in set(edges.values())]
    if edges and len(starts) == 1:
        order: list[Any] = []
        current = starts[0]
        while current in by_id and len(order) <= len(by_id):
            order.append(by_id[current])
            current = edges.get(current)
        if len(order) == len(nodes):
            return order
    return [str(n.get("name", "")) for n in nodes]


def _viewer(kai: KaiServer) -> bool:
    """Whether the token only views versions: KRE 7 then answers no config vars at all."""
    try:
        me = kai.graphql("query Me { me { accessLevel } }").get("me") or {}
    except DeployError:
        return False
    return me.get("accessLevel") == "VIEWER"


@dataclass
class _Objects:
    """What the version's Kubernetes objects tell beyond the admin API."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # image, src, gpu
    entrypoints: dict[str, str] = field(default_factory=dict)  # workflow -> rpc
    entrypoint_image: str | None = None


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    return {str(e.get("name")): str(e.get("value", "")) for e in container.get("env") or ()}


def _read_objects(cluster: Any, name: str) -> _Objects | None:
    """The version's Deployments and conf-files ConfigMap read back (None: there are none)."""
    objects = cluster.version_objects(name)
    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    if not deployments:
        return None
    subjects: dict[str, str] = {}  # nats_subject.json: rpc -> its first node's input subject
    for o in objects:
        text = (o.get("data") or {}).get("nats_subject.json")
        if o.get("kind") == "ConfigMap" and text:
            try:
                subjects.update({str(s): str(rpc) for rpc, s in json.loads(text).items()})
            except (ValueError, AttributeError):
                pass
    out = _Objects()
    for d in deployments:
        labels = (d.get("metadata") or {}).get("labels") or {}
        containers = ((((d.get("spec") or {}).get("template") or {}).get("spec") or {})
                      .get("containers") or [])  # fmt: skip
        if labels.get("type") == "entrypoint":
            ports = [{p.get("containerPort") for p in c.get("ports") or ()} for c in containers]
            grpc = [c for c, seen in zip(containers, ports, strict=True) if 9000 in seen]
            main = (grpc or containers or [{}])[0]
            out.entrypoint_image = str(main.get("image", "")) or None
            continue
        node = labels.get("node-name")
        runner = next((c for c in containers if c.get("name") != "fluent-bit"), None)
        if labels.get("type") != "node" or not node or runner is None:
            continue
        env = _env(runner)
        limits = (runner.get("resources") or {}).get("limits") or {}
        out.nodes[node] = {
            "image": str(runner.get("image", "")),
            "src": env.get("KRT_HANDLER_PATH", ""),
            "gpu": str("nvidia.com/gpu" in limits).lower(),
        }
        rpc = subjects.get(env.get("KRT_NATS_INPUT", ""))
        if rpc and env.get("KRT_WORKFLOW_NAME"):
            out.entrypoints[env["KRT_WORKFLOW_NAME"]] = rpc
    return out


# -- showing values ------------------------------------------------------------------------------


def _shown(key: str, value: str | None, kind: str) -> str:
    """A config value as the diff may show it."""
    if value is None or value == "":
        return "(no value)"
    if looks_secret(key):
        return "(hidden)"
    if kind == "FILE":
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return f"<file: {len(value.encode()):,} bytes, sha256 {digest}>"
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _chain(nodes: Iterable[str]) -> str:
    return " -> ".join(nodes) or "no nodes"


# -- the comparison ------------------------------------------------------------------------------


def diff_version(
    version: Version,
    server: KaiServer,
    name: str | None = None,
    *,
    cluster: Any = None,
) -> VersionDiff:
    """Compare ``version`` (authored or loaded) with the version ``name`` (default: its own
    name) on ``server``. ``cluster`` (a :class:`~krtlab.deploy.kube.Cluster`) also compares
    what only the version's Kubernetes objects tell (images, src, gpu, entrypoints).

    Raises:
        DeployError: the server has no version ``name`` (``code="version_not_found"``, with a
            did-you-mean over its versions' names), or refused the query.
    """
    from .deployment import _local_values

    name = name or version.name
    data = _deployed(server, name)
    manifest = version.manifest()
    out = VersionDiff(version.name, name, server.url, str(data.get("status", "")))
    if version.name != name:
        out.notes.append(f"the local version is named {version.name!r}; compared with {name!r}")
    changes = out.changes

    description = str(data.get("description") or "")
    if manifest.description != description:
        changes.append(Change("~", "version", "", "description", repr(manifest.description),
                              repr(description)))  # fmt: skip

    # workflows, and their nodes in order
    local_wf = {w.name: w for w in manifest.workflows}
    deployed_wf = {str(w.get("name")): _node_order(w) for w in data.get("workflows") or ()}
    for wf in local_wf.values():
        if wf.name not in deployed_wf:
            changes.append(Change("+", "workflow", wf.name, local=f"{wf.entrypoint}: "
                                  f"{_chain(wf.sequential)}"))  # fmt: skip
        elif list(wf.sequential) != deployed_wf[wf.name]:
            changes.append(Change("~", "workflow", wf.name, "nodes", _chain(wf.sequential),
                                  _chain(deployed_wf[wf.name])))  # fmt: skip
    for wf_name, nodes in deployed_wf.items():
        if wf_name not in local_wf:
            changes.append(Change("-", "workflow", wf_name, deployed=_chain(nodes)))

    # nodes, as the workflows use them (the server knows no others)
    local_used = list(dict.fromkeys(n for w in manifest.workflows for n in w.sequential))
    deployed_used = list(dict.fromkeys(n for nodes in deployed_wf.values() for n in nodes))
    changes += [Change("+", "node", n) for n in local_used if n not in deployed_used]
    changes += [Change("-", "node", n) for n in deployed_used if n not in local_used]
    specs = {n.name: n for n in manifest.nodes}  # KRE's nodesMap: the last definition wins
    unused = [n for n in specs if n not in local_used]
    if unused:
        out.notes.append(f"defined locally but used by no workflow (KRE deploys only the nodes "
                         f"workflows use): {', '.join(unused)}")  # fmt: skip
    out.compared += ["description", "workflows and their node order", "nodes"]

    # what only the Kubernetes objects tell
    objects, why = None, ""
    if cluster is None:
        why = "; pass cluster= (krtlab diff --kubeconfig FILE) while it runs to read them from " \
              "its Deployments"  # fmt: skip
    else:
        try:
            objects = _read_objects(cluster, name)
        except DeployError as exc:
            why = f"; the cluster could not be read: {exc}"
        else:
            if objects is None:
                ns = getattr(cluster, "namespace", "kre")
                why = f"; {name} is {out.status} and has no Deployments in namespace {ns!r}"
    if objects is None:
        out.not_compared.append(_NOT_REPORTED + why)
    else:
        out.compared += ["node images, src and gpu", "workflow entrypoints", "entrypoint image"]
        out.notes.append("images, src, gpu and entrypoints read from the version's Deployments "
                         "(the admin API does not report them)")  # fmt: skip
        for wf in manifest.workflows:
            rpc = objects.entrypoints.get(wf.name)
            if wf.name in deployed_wf and rpc is not None and rpc != wf.entrypoint:
                changes.append(Change("~", "workflow", wf.name, "entrypoint", wf.entrypoint, rpc))
        for node in local_used:
            spec, seen = specs.get(node), objects.nodes.get(node)
            if spec is None or seen is None:
                continue
            local = {"image": spec.image, "src": spec.src, "gpu": str(spec.gpu).lower()}
            for key in ("image", "src", "gpu"):
                if local[key] != seen[key]:
                    changes.append(Change("~", "node", node, key, local[key], seen[key]))
        image = objects.entrypoint_image
        if image is not None and image != manifest.entrypoint.image:
            changes.append(Change("~", "entrypoint", "", "image", manifest.entrypoint.image,
                                  image))  # fmt: skip
    out.not_compared.append(_SOURCE)

    _diff_config(manifest, data, server, out, _local_values(version))
    return out


def _diff_config(manifest: Any, data: Mapping[str, Any], server: KaiServer,
                 out: VersionDiff, values: Mapping[str, str]) -> None:  # fmt: skip
    """Config keys (declared locally vs on the server) and values (``v.config(K=...)`` vs
    deployed)."""
    local = {k: "VARIABLE" for k in manifest.config.variables}
    local.update({k: "FILE" for k in manifest.config.files})
    deployed = {str(v.get("key")): v for v in (data.get("config") or {}).get("vars") or ()}
    if local and not deployed and _viewer(server):
        out.not_compared.append("config keys and values: this API token has VIEWER access, and "
                                "KRE shows viewers no config")  # fmt: skip
        return
    changes = out.changes
    for key, kind in local.items():
        if key not in deployed:
            changes.append(Change("+", "config key", key, local=kind))
    for key, var in deployed.items():
        if key not in local:
            changes.append(Change("-", "config key", key, deployed=str(var.get("type", ""))))
    only_server, secret = [], sorted(k for k in {*local, *deployed} if looks_secret(k))
    for key, kind in local.items():
        if key not in deployed:
            continue
        server_kind = str(deployed[key].get("type") or kind)
        if server_kind != kind:
            changes.append(Change("~", "config key", key, "type", kind, server_kind))
        there, here = str(deployed[key].get("value") or ""), values.get(key)
        if here is None:
            if there:
                only_server.append(key)
            continue
        if here != there:
            changes.append(Change("~", "config value", key, "", _shown(key, here, kind),
                                  _shown(key, there, server_kind)))  # fmt: skip
    out.compared += ["config keys", "config values given with v.config(K=...)"]
    if only_server:
        out.notes.append(f"values only on the server, none given with v.config(): "
                         f"{', '.join(only_server)} (deploy keeps what KRE has)")  # fmt: skip
    if secret:
        out.notes.append(f"values of {', '.join(secret)} are never shown: the keys look secret "
                         f"({', '.join(SECRET_MARKERS)})")  # fmt: skip
    if any(kind == "FILE" for kind in local.values()):
        out.notes.append("FILE values are shown as their size and a hash, never in full")
