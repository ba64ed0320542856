"""What an authored node runs on: its base runner, declared requirements, and the versions
installed here of the packages its code imports (see :mod:`krtlab.bundle.images` for the custom
images themselves)."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable

from krtlab.bundle.images import distributions_of_imports, provides
from krtlab.spec.facts import NodeEnv

__all__ = ["env_of", "installed_imports"]


def installed_imports(imports: Iterable[str]) -> tuple[tuple[str, str, str], ...]:
    """(import name, distribution, version installed here) for each third-party import."""
    found = []
    for name in sorted(set(imports)):
        if name in sys.stdlib_module_names or name.endswith("_pb2"):
            continue
        for dist in distributions_of_imports().get(name, [])[:1]:
            try:
                found.append((name, dist, importlib.metadata.version(dist)))
            except importlib.metadata.PackageNotFoundError:
                continue
    return tuple(found)


def env_of(base: str | None, requirements: Iterable[str], imports: Iterable[str] = ()) -> NodeEnv:
    """The :class:`NodeEnv` of a node: its base image, requirements, what they provide and the
    versions installed here of what its code imports."""
    reqs = tuple(requirements)
    return NodeEnv(
        base=base, requirements=reqs, provides=provides(reqs), installed=installed_imports(imports)
    )
