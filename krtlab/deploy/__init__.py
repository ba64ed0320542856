"""Deploy stage: KAI Server (KRE) admin API client, the Kubernetes objects KRE creates, and
local stand-ins for both.

Names are imported lazily: ``import krtlab.deploy`` loads nothing heavy.

>>> import krtlab.deploy as kd
>>> sorted(kd.__all__)[:3]
['Cluster', 'Deployment', 'KaiServer']
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Cluster",
    "Deployment",
    "KaiServer",
    "LocalKai",
    "VersionDiff",
    "VersionInfo",
    "deploy",
    "diff_version",
    "entrypoint_service",
    "find_entrypoint_service",
    "version_objects",
]

_LAZY = {
    "Cluster": "krtlab.deploy.kube",
    "Deployment": "krtlab.deploy.deployment",
    "deploy": "krtlab.deploy.deployment",
    "KaiServer": "krtlab.deploy.kai",
    "VersionInfo": "krtlab.deploy.kai",
    "VersionDiff": "krtlab.deploy.diff",
    "diff_version": "krtlab.deploy.diff",
    "LocalKai": "krtlab.deploy.standin",
    "entrypoint_service": "krtlab.deploy.k8s",
    "find_entrypoint_service": "krtlab.deploy.k8s",
    "version_objects": "krtlab.deploy.k8s",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'krtlab.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
