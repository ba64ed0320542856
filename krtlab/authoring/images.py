"""The images an authored version's nodes run on: declared requirements, the custom images krtlab
writes Dockerfiles for, and what validation needs to know of them (see
:mod:`krtlab.bundle.images` for the images themselves)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import TYPE_CHECKING

from krtlab.bundle.images import CustomImage, custom_image, dockerfile
from krtlab.errors import SpecError
from krtlab.spec import rules
from krtlab.spec.facts import NodeEnv
from krtlab.spec.findings import WARNING, Finding
from krtlab.spec.runners import known_tags, kre_py_runner, requirement_name

from .environment import env_of

if TYPE_CHECKING:
    from krtlab.bundle.project import Project

    from .node import Node
    from .version import Version

__all__ = ["check_node_image", "check_requirements", "image_files", "image_findings"]
__all__ += ["node_envs", "node_image"]


def check_requirements(requirements: Iterable[str], where: str) -> tuple[str, ...]:
    """Requirement lines, checked and deduplicated in order (``SpecError`` for a bad one)."""
    if isinstance(requirements, str):
        raise SpecError(f"{where}: requirements is a list of lines, not one string")
    out: dict[str, None] = {}
    for req in requirements:
        if str(req).lstrip().startswith("-"):
            raise SpecError(f"{where}: {req!r}: pip options have no place in an image's pins")
        if requirement_name(str(req)) is None:
            raise SpecError(
                f"{where}: {req!r} is not a requirement (write it as pip does: 'lightgbm==4.5.0')"
            )
        out[str(req).strip()] = None
    return tuple(out)


def check_node_image(
    name: str | None, image: str, requirements: Iterable[str], runner: str | None
) -> tuple[tuple[str, ...], str | None]:
    """(checked requirements, the stock runner the node's code runs on) for ``@v.node``."""
    where = f"node {name!r}" if name else "@v.node"
    reqs = check_requirements(requirements, where)
    stock = kre_py_runner(image)
    if runner is not None:
        if kre_py_runner(runner) is None:
            tags = ", ".join(known_tags()[-3:])
            raise SpecError(f"{where}: runner {runner!r} is not a kre-py image krtlab knows "
                            f"(konstellation/kre-py:<tag>, e.g. {tags})")  # fmt: skip
        if stock is not None and runner != image:
            raise SpecError(f"{where}: image {image!r} is already a stock runner; runner= is "
                            "for your own images built FROM one")  # fmt: skip
        return reqs, runner
    if reqs and stock is None:
        raise SpecError(
            f"{where}: requirements need a stock image to build FROM, and {image!r} is not one "
            "krtlab knows; give runner='konstellation/kre-py:<tag>' (the image yours is built "
            "FROM) or use a stock image"
        )
    return reqs, image if stock is not None else None


def _requirements(v: Version, node: Node) -> tuple[str, ...]:
    if node.func is None:  # a loaded or Go node: its image is what it is
        return ()
    return tuple(dict.fromkeys([*v._requirements, *node.requirements]))


def node_image(v: Version, node: Node) -> CustomImage | None:
    """The custom image krtlab writes for ``node``, or None when it runs on its own image."""
    reqs = _requirements(v, node)
    if not reqs:
        return None
    if node.runner is None:
        raise SpecError(
            f"node {node.name!r}: v.requirements(...) needs a stock image to build FROM, and "
            f"{node.image!r} is not one krtlab knows; give it runner='konstellation/kre-py:<tag>'"
        )
    return custom_image(v.name, node.runner, reqs, v._image_prefix)


def image_files(v: Version) -> dict[str, bytes]:
    """``src/<node>/requirements.txt`` per node with requirements, and one
    ``images/<tag>-<hash>/Dockerfile`` per distinct image."""
    files: dict[str, bytes] = {}
    users: dict[CustomImage, list[str]] = {}
    for node in v._nodes.values():
        image = node_image(v, node)
        if image is None:
            continue
        users.setdefault(image, []).append(node.name)
        folder = posixpath.dirname(node.src)
        files[posixpath.join(folder, "requirements.txt")] = (
            "\n".join(_requirements(v, node)) + "\n"
        ).encode()
    for image, nodes in users.items():
        files[f"{image.folder}/Dockerfile"] = dockerfile(image, nodes, v.name).encode()
    return files


def node_envs(v: Version, project: Project) -> dict[str, NodeEnv]:
    """What each authored Python node runs on, for validation."""
    facts = project.source_facts()
    envs = {}
    for node in v._nodes.values():
        if node.func is None or node.kind != "python":
            continue
        folder = posixpath.dirname(node.src) + "/"
        imports = {m for path, f in facts.items() if path.startswith(folder) for m, _ in f.imports}
        base = node.runner if node_image(v, node) is not None or node.runner != node.image else None
        envs[node.name] = env_of(base, _requirements(v, node), imports)
    return envs


def image_findings(v: Version) -> list[Finding]:
    """A custom image without a registry: KRE's cluster must already have it."""
    found = []
    for i, node in enumerate(v._nodes.values()):
        image = node_image(v, node)
        if image is not None and v._image_prefix is None:
            found.append(Finding(
                WARNING, "image.no_registry",
                f"node {node.name!r} runs on its own image {image.name!r} (it declares "
                "requirements), which names no registry: KRE's cluster must already have it",
                ("nodes", i, "image"), "krt.yml",
                hint="say where it is pushed: v.image_prefix('registry.example.com/team'), then "
                f"docker build -t <that name> {image.folder}",
            ))  # fmt: skip
        elif image is not None:
            reason = rules.check_image_reference(image.name)
            if reason:
                raise SpecError(f"node {node.name!r}: image {image.name!r}: {reason}")
    return found
