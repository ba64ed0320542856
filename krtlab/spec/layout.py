"""How KRE lays a started version out: the ids of workflows, nodes and edges, and the NATS
subjects that chain each workflow's node occurrences.

One layout serves both the local runtime (:mod:`krtlab.runtime.topology`) and the Kubernetes
objects (:mod:`krtlab.deploy.k8s`), so a served version and its manifests route alike.

>>> from krtlab.spec.model import Manifest, NodeSpec, WorkflowSpec
>>> m = Manifest("greeter-v1", "", nodes=(NodeSpec("a", "img", "src/a/main.py"),
...     NodeSpec("b", "img", "src/b/main.py")),
...     workflows=(WorkflowSpec("flow", "Greet", ("a", "b")),))
>>> steps, subjects = layout(m, id_source("example"))
>>> subjects
{'Greet': 'greeter-v1-Greet-entrypoint'}
>>> [(s.node, s.nats_input == subjects["Greet"], s.nats_output == "") for s in steps]
[('a', True, False), ('b', False, True)]
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import Manifest

__all__ = ["Step", "entrypoint_subject", "id_source", "layout", "workflow_ids"]


@dataclass(frozen=True)
class Step:
    """A node as it occurs in one workflow (KRE runs each occurrence on its own)."""

    workflow: str
    workflow_id: str
    rpc: str
    node: str
    node_id: str
    nats_input: str
    nats_output: str  # "" for the last node: it answers the entrypoint's reply inbox


def id_source(seed: str | None = None) -> Callable[[], str]:
    """KRE's ids: 5 lowercase letters, unique among those drawn. ``seed`` makes them
    reproducible (the same project gives the same manifests); None draws them at random."""
    rng = random.Random(seed)  # None: seeded from the system's randomness
    seen: set[str] = set()

    def new() -> str:
        while True:
            value = "".join(rng.choices(string.ascii_lowercase, k=5))
            if value not in seen:
                seen.add(value)
                return value

    return new


def workflow_ids(
    workflows: Sequence[Sequence[str]], new_id: Callable[[], str]
) -> list[tuple[str, list[str], list[str]]]:
    """``(workflow id, node ids, edge ids)`` per workflow (given as its node names), drawn in
    the admin API's order: each node, the edge to it, then the workflow."""
    out = []
    for nodes in workflows:
        node_ids: list[str] = []
        edge_ids: list[str] = []
        for i in range(len(nodes)):
            node_ids.append(new_id())
            if i:
                edge_ids.append(new_id())
        out.append((new_id(), node_ids, edge_ids))
    return out


def entrypoint_subject(version: str, rpc: str) -> str:
    """The subject the entrypoint requests for ``rpc``: the first node's ``KRT_NATS_INPUT``."""
    return f"{version}-{rpc}-entrypoint"


def layout(
    manifest: Manifest, new_id: Callable[[], str], *, prefix: str = ""
) -> tuple[list[Step], dict[str, str]]:
    """Every workflow-node occurrence in order, and KRE's ``nats_subject.json`` (rpc → first
    subject). Edge subjects are the edge ids; ``prefix`` (kre ≥5: ``<runtimeId>-``) goes before
    every subject."""
    steps: list[Step] = []
    subjects: dict[str, str] = {}
    for wf in manifest.workflows:  # ids drawn workflow by workflow, as workflow_ids draws them
        ((workflow_id, node_ids, edge_ids),) = workflow_ids([wf.sequential], new_id)
        subjects[wf.entrypoint] = prefix + entrypoint_subject(manifest.version, wf.entrypoint)
        chain = [subjects[wf.entrypoint], *(prefix + e for e in edge_ids), ""]
        for i, node in enumerate(wf.sequential):
            steps.append(Step(wf.name, workflow_id, wf.entrypoint, node, node_ids[i], chain[i],
                              chain[i + 1]))  # fmt: skip
    return steps, subjects
