"""Node health from a version's pods: what KRE 7 does not put in its ``version`` queries.

KRE 7 computes node statuses from Kubernetes and sends them only through the
``watchNodeStatus`` subscription (``Node.status`` is not stored), so a query answers ``""`` for
each node, and the version says STARTED even when its pods crash. With a cluster, krtlab reads
the pods itself: :func:`pod_health` describes one pod, :func:`node_health` gives one line per
node (``"Running"``, ``"Pending"``, ``"CrashLoopBackOff: <message>"``), and
:func:`wait_healthy` waits until every node runs or one fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from krtlab.errors import DeployError, DeployTimeout

__all__ = ["FAILING_REASONS", "is_failing", "node_health", "pod_health", "wait_healthy"]

# waiting reasons that do not go away by themselves: the container keeps crashing or can never
# be created (a transient ContainerCreating/PodInitializing is not among them)
FAILING_REASONS = frozenset({
    "CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})  # fmt: skip
NOT_REPORTED = "status not reported by the admin API (KRE sends it only through watchNodeStatus)"


def pod_health(pod: Mapping[str, Any]) -> str:
    """One pod as a short line: ``"Running"``, ``"Running (not ready)"``, ``"Pending"``, a
    failing container's ``"<reason>: <message>"``, or the phase (``Failed``, ``Succeeded``)."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason in FAILING_REASONS:
            message = " ".join(str(waiting.get("message") or "").split())
            return f"{reason}: {message}" if message else reason
    phase = str(status.get("phase") or "Pending")
    if phase == "Running" and not (containers and all(c.get("ready") for c in containers)):
        return "Running (not ready)"
    return phase


def is_failing(health: str) -> bool:
    """Whether a :func:`pod_health` line is a failure that waiting does not fix."""
    return health.split(":", 1)[0] in FAILING_REASONS or health == "Failed"


def _rank(health: str) -> int:
    """Worse first when several pods run the same node (replicas, workflow occurrences)."""
    if is_failing(health):
        return 0
    return 2 if health == "Running" else 1


def node_health(pods: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``node-name`` label → the worst :func:`pod_health` of its pods (the entrypoint's pod is
    ``"entrypoint"``); pods being deleted are left out (a previous start's)."""
    out: dict[str, str] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        labels = meta.get("labels") or {}
        name = labels.get("node-name") or (
            "entrypoint" if labels.get("type") == "entrypoint" else meta.get("name", "?")
        )
        health = pod_health(pod)
        if name not in out or _rank(health) < _rank(out[name]):
            out[name] = health
    return out


def wait_healthy(
    read: Callable[[], dict[str, str]],
    version: str,
    nodes: Iterable[str],
    *,
    namespace: str = "kre",
    timeout: float = 600.0,
    interval: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Poll ``read()`` (a :func:`node_health` dict) until every node of ``nodes`` (and every
    pod seen) is Running and ready; return the last health. ``progress`` gets a line
    (``"py-greeter: Pending"``) each time a node's health changes.

    Raises:
        DeployError: a node is failing (CrashLoopBackOff, image pull errors, ...): KRE would
            still say STARTED, and calls would only time out.
        DeployTimeout: not all running after ``timeout`` seconds; says which are not.
    """
    wanted = set(nodes)
    deadline = time.monotonic() + timeout
    op = f"checking the pods of {version}"
    seen: dict[str, str] = {}
    while True:
        health = read()
        current = {n: health.get(n, "no pod yet") for n in wanted | set(health)}
        if progress is not None:
            for n in sorted(n for n in current if seen.get(n) != current[n]):
                progress(f"  {n}: {current[n]}")
            seen = current
        failed = {n: h for n, h in health.items() if is_failing(h)}
        if failed:
            logs = [_logs_command(namespace, version, n) for n in sorted(failed)]
            raise DeployError(
                f"{version} is STARTED but node(s) {', '.join(sorted(failed))} are failing",
                details="\n".join(
                    [
                        *(f"  {n}: {h}" for n, h in sorted(failed.items())),
                        "KRE marks a version STARTED even when its pods crash; the logs say why:",
                        *(f"  {line}" for line in logs),
                    ]
                ),
                code="node_failing",
                operation=op,
            )
        waiting = {n: h for n, h in current.items() if h != "Running"}
        if not waiting:
            return health
        left = deadline - time.monotonic()
        if left <= 0:
            pods = ", ".join(f"{n} {h}" for n, h in sorted(waiting.items()))
            raise DeployTimeout(
                f"{version}'s pods are not all running after {timeout:g} s: {pods}",
                last_status="STARTED",
                operation=op,
            )
        time.sleep(min(interval, left))
        interval = min(interval * 1.5, 3.0)


def _logs_command(namespace: str, version: str, node: str) -> str:
    # the entrypoint pod's version-name is "<v>-entrypoint" in the spec's form
    where = (
        f"'version-name in ({version},{version}-entrypoint),node-name=entrypoint'"
        if node == "entrypoint"
        else f"version-name={version},node-name={node}"
    )
    return f"kubectl logs -n {namespace} --all-containers -l {where}"
