"""krtlab: author, test and package Konstellation KRE (KAI Server) KRT V1 versions from Jupyter.

>>> import krtlab as krt
>>> v = krt.Version("greeter-v1", description="Greets whoever asks")

Public names are imported lazily so that ``import krtlab`` stays cheap (no protobuf, gRPC or
YAML until they are needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from krtlab.errors import (
    AuthError,
    BundleError,
    CallError,
    CaptureError,
    DeployError,
    DeployTimeout,
    ExecutableNotFound,
    KrtlabError,
    MessageTypeError,
    NodeFailed,
    OverwriteError,
    ProtoError,
    RenderError,
    RunError,
    ServeError,
    SpecError,
    UnsafeArchiveError,
    ValidationError,
    YamlSyntaxError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BundleError",
    "CallError",
    "CaptureError",
    "DeployError",
    "DeployTimeout",
    "ExecutableNotFound",
    "Finding",
    "KrtlabError",
    "Manifest",
    "MessageTypeError",
    "Node",
    "NodeFailed",
    "OverwriteError",
    "Project",
    "ProtoError",
    "RenderError",
    "Report",
    "RunError",
    "ServeError",
    "SpecError",
    "UnsafeArchiveError",
    "ValidationError",
    "Version",
    "Workflow",
    "YamlSyntaxError",
    "__version__",
    "load",
    "load_project",
    "version_name",
]

_LAZY = {
    "Version": "krtlab.authoring.version",
    "Workflow": "krtlab.authoring.version",
    "Node": "krtlab.authoring.node",
    "Finding": "krtlab.spec.findings",
    "Report": "krtlab.spec.findings",
    "Manifest": "krtlab.spec.model",
    "Project": "krtlab.bundle.project",
    "load_project": "krtlab.bundle.load",
    "version_name": "krtlab.spec.names",
}

if TYPE_CHECKING:
    from krtlab.authoring.node import Node
    from krtlab.authoring.version import Version, Workflow
    from krtlab.bundle.load import load_project
    from krtlab.bundle.project import Project
    from krtlab.spec.findings import Finding, Report
    from krtlab.spec.model import Manifest
    from krtlab.spec.names import version_name


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        from krtlab.spec.suggest import did_you_mean

        hint = did_you_mean(name, __all__)
        raise AttributeError(
            f"module 'krtlab' has no attribute {name!r}" + (f"; {hint}" if hint else "")
        )
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load(path: Any) -> Version:
    """Load a version from a project folder, a ``krt.yml`` path, a ``.krt`` archive, or a Python
    script that defines one (``templates/price_estimator.py``: the script is run).

    Raises :class:`BundleError` when the path is not a project at all; problems inside the
    project are reported by ``load(...).validate()``.
    """
    import os

    from krtlab.authoring.assemble import version_from_project
    from krtlab.bundle.load import load_project

    if os.fspath(path).endswith(".py"):
        from krtlab.authoring.script import version_from_script

        return version_from_script(path)

    return version_from_project(load_project(path))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext krtlab``: the magics of :mod:`krtlab.notebook.magics` (imports IPython)."""
    from krtlab.notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext krtlab``: remove the magics again."""
    from krtlab.notebook.magics import unload_ipython_extension as unload

    unload(ipython)
