"""The Pods a started version's Deployments would have, with the status Kubernetes would report.

KRE 7 does not store node statuses (``Node.Status`` is ``bson:"-"``, "calculated in k8s"), so
a version's health shows in its Pods. Here every Deployment has one Pod named
``<deployment>-<5 random lowercase alnum>`` with the Deployment's pod-template labels:

* ``Pending`` (containers waiting, ``ContainerCreating``) while the version is being served;
* ``Running`` with every container ``ready`` and ``state.running`` once it is up;
* when serving failed, ``Running`` but the failing container not ready, ``restartCount`` > 0 and
  ``state.waiting = {reason: CrashLoopBackOff, message: <the serve error's first line>}``.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["failing_deployments", "first_line", "pod", "pod_selector", "pod_status"]

_ALNUM = string.ascii_lowercase + string.digits
CRASH_RESTARTS = 3  # what a crash-looping container shows after a little while


def first_line(text: str) -> str:
    """The first non-empty line of ``text`` (a serve error can carry a whole log tail)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_selector(deployment: Mapping[str, Any]) -> str:
    """The label selector of ``deployment``'s Pods (its ``spec.selector.matchLabels``)."""
    labels = deployment["spec"]["selector"]["matchLabels"]
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """A new, ``Pending`` Pod of ``deployment``."""
    meta = deployment["metadata"]
    template = deployment["spec"]["template"]
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(5))
    containers = [
        {"name": c["name"], "image": c.get("image", "")} for c in template["spec"]["containers"]
    ]
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{suffix}",
            "namespace": meta.get("namespace"),
            "labels": dict(template["metadata"]["labels"]),
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                 "uid": meta.get("uid", ""), "controller": True}
            ],
        },
        "spec": {"containers": containers},
    }  # fmt: skip
    out["status"] = pod_status(out, "Pending")
    return out


def pod_status(pod: Mapping[str, Any], phase: str, error: str = "") -> dict[str, Any]:
    """``status`` of ``pod``: ``Pending``, ``Running`` (all ready), or crash-looping on ``error``.

    A crash-looping Pod is ``Running`` with its first container (the node runner, or the
    entrypoint) waiting in ``CrashLoopBackOff``; its sidecars stay ready.
    """
    statuses = []
    for i, c in enumerate(pod["spec"]["containers"]):
        st: dict[str, Any] = {
            "name": c["name"], "image": c["image"], "imageID": "", "restartCount": 0
        }  # fmt: skip
        if phase == "Pending":
            st.update(ready=False, started=False,
                      state={"waiting": {"reason": "ContainerCreating"}})  # fmt: skip
        elif error and i == 0:
            st.update(
                ready=False, started=False, restartCount=CRASH_RESTARTS,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": first_line(error)}},
                lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
            )  # fmt: skip
        else:
            st.update(ready=True, started=True, state={"running": {"startedAt": _now()}})
        statuses.append(st)
    ready = phase == "Running" and not error
    status: dict[str, Any] = {
        "phase": "Running" if phase == "Running" else "Pending",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": statuses,
    }
    if phase == "Running":
        status["startTime"] = _now()
    return status


def failing_deployments(deployments: Iterable[Mapping[str, Any]], error: str) -> set[str]:
    """Names of the Deployments a serve error is about: the nodes it names, else all of them.

    :func:`krtlab.runtime.serve.serve` names a node ``<node> (<workflow>, <id>)`` and the
    entrypoint ``entrypoint``, e.g. ``n1 (w1, x1y2z) exited (exit code 1) while starting``.
    """
    line = first_line(error)
    named = set(re.findall(r"([\w.-]+) \([^()]*, [^()]*\)", line))
    if re.search(r"(?:^|: |, )entrypoint(?:$|,| exited)", line):
        named.add("entrypoint")
    deps = list(deployments)
    hit = {
        d["metadata"]["name"]
        for d in deps
        if d["spec"]["template"]["metadata"]["labels"].get("node-name") in named
    }
    return hit or {d["metadata"]["name"] for d in deps}
