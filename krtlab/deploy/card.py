"""The status card of a :class:`~krtlab.deploy.deployment.Deployment` (``repr`` and the
notebook's HTML): status, where it is served, workflows with their nodes' health, config.

A display never raises: a failure to ask the server or the cluster is shown as a row.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from krtlab.errors import DeployError

from .compare import _CELL

if TYPE_CHECKING:
    from .deployment import Deployment
    from .kai import VersionInfo

__all__ = ["card", "card_html", "card_text"]

# status colours readable on JupyterLab's light and dark themes alike
_COLOURS = {"PUBLISHED": "#2da44e", "STARTED": "#2da44e", "ERROR": "#e0364f", "STOPPED": "#888"}
_RUNNING = ("STARTING", "STARTED", "PUBLISHED", "STOPPING")
# KRE's admin API answers no node status (only its watchNodeStatus subscription has it): say
# what the user can do about it
UNKNOWN_HEALTH = (
    "unknown: KRE's admin API does not report it; pass cluster=Cluster(kubeconfig) to deploy() "
    "(or set d.cluster) to see each node's pods"
)


def card(dep: Deployment) -> tuple[str, list[tuple[str, str]]]:
    """(status, rows) of ``dep``'s card, asking the server (and the cluster) now."""
    info: VersionInfo | None
    try:
        info, problem = dep.refresh(), ""
    except DeployError as exc:  # still show what was seen last, and why it is stale
        info, problem = dep._info, str(exc)
    rows = [("server", dep.server.url)]
    if info is None:
        return "UNKNOWN", [*rows, ("error", problem)]
    rid = dep.server.runtime_id  # known by now: refresh() asked
    rows += [("runtime", rid)] if rid else []
    if info.status == "PUBLISHED":
        try:
            rows.append(("entrypoint", dep.server.entrypoint_address()))
        except DeployError as exc:
            rows.append(("entrypoint", f"unknown: {exc}"))
    version = dep.version
    rpcs = {w.name: w.spec.entrypoint for w in version.workflows.values()} if version else {}
    health, note = _health(dep, info)
    for w in info.workflows:
        nodes = ", ".join(f"{n.name} {n.status or health.get(n.name, '')}".strip() for n in w.nodes)
        label = f"{w.name} ({rpcs[w.name]})" if w.name in rpcs else w.name
        rows.append((f"workflow {label}", nodes or "-"))
    rows += [("entrypoint pod", health["entrypoint"])] if "entrypoint" in health else []
    rows += [("node status", note)] if note else []
    if info.config:
        done = "complete" if info.config_completed else "INCOMPLETE"
        rows.append(("config", f"{', '.join(sorted(info.config))} ({done})"))
    rows += [("error", e) for e in info.errors]
    rows += [("stale", problem)] if problem else []
    return info.status, rows


def _health(dep: Deployment, info: VersionInfo) -> tuple[dict[str, str], str]:
    """(node → health, a note when it cannot be known): the server's status when it gives one
    (KRE 7's queries do not), else the pods' read through ``dep.cluster``."""
    unknown = [n.name for w in info.workflows for n in w.nodes if not n.status]
    if not unknown or info.status not in _RUNNING:
        return {}, ""  # reported, or nothing runs: no pods to look at
    try:
        cluster = dep._cluster()
        health = cluster.node_health(dep.name) if cluster is not None else None
    except DeployError as exc:
        return {}, f"pods not readable: {exc}"
    if health is None:
        return {}, UNKNOWN_HEALTH
    return {n: health.get(n, "no pod") for n in unknown} | health, ""


def card_text(dep: Deployment) -> str:
    """The card as ``repr`` text."""
    status, rows = card(dep)
    width = max(len(k) for k, _ in rows)
    lines = [f"<Deployment {dep.name} {status}"]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines) + ">"


def card_html(dep: Deployment) -> str:
    """The card as the notebook's HTML table."""
    status, rows = card(dep)
    colour = _COLOURS.get(status, "#b58900")
    head = (
        f'<b>{escape(dep.name)}</b> <span style="color:{colour};font-weight:bold">'
        f"{escape(status)}</span>"
    )
    body = "".join(
        f"<tr><th {_CELL}>{escape(k)}</th><td {_CELL}>{escape(v)}</td></tr>" for k, v in rows
    )
    return f'<div><p>{head}</p><table style="border-collapse:collapse">{body}</table></div>'
