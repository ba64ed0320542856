"""Custom node images: a node that declares requirements gets an image built ``FROM`` its stock
runner, with a ``Dockerfile`` in the bundle.

A node that declares requirements (``@v.node(..., requirements=["lightgbm==4.5.0"])`` or
``v.requirements(...)`` for every node) runs on its own image, built ``FROM`` its stock
``konstellation/kre-py:<tag>`` with a ``pip install`` of those pins and nothing else. One image is
written per distinct (base, requirements) set: ``images/<tag>-<hash>/Dockerfile``, named
``<prefix>/<version>-runner:<tag>-<hash>`` (``v.image_prefix("registry.example.com/team")``), so
``krt.yml``, ``docker build`` and the upload agree. Each node also gets
``src/<node>/requirements.txt``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from krtlab.spec.facts import NodeEnv
from krtlab.spec.model import Manifest
from krtlab.spec.runners import Runner, kre_py_runner, normalize, requirement_name

__all__ = [
    "CustomImage",
    "custom_image",
    "dockerfile",
    "envs_from_files",
    "provides",
    "read_dockerfiles",
    "runner_of",
]

#: import names of well-known distributions whose name differs (when not installed here)
_KNOWN = {
    "pyyaml": "yaml", "scikit-learn": "sklearn", "opencv-python": "cv2",
    "opencv-python-headless": "cv2", "pillow": "PIL", "python-dateutil": "dateutil",
    "beautifulsoup4": "bs4", "protobuf": "google", "pymongo": "pymongo",
    "influxdb-client": "influxdb_client", "scikit-image": "skimage",
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def distributions_of_imports() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def provides(requirements: Iterable[str]) -> frozenset[str]:
    """The top-level import names the distributions of ``requirements`` give (read from their
    metadata when installed here, else from their name)."""
    names: set[str] = set()
    by_dist: dict[str, set[str]] = {}
    for name, dists in distributions_of_imports().items():
        for dist in dists:
            by_dist.setdefault(normalize(dist), set()).add(name)
    for req in requirements:
        named = requirement_name(req)
        if named is None:  # a pip option or a path: nothing known to import
            continue
        dist = normalize(named)
        names |= by_dist.get(dist) or {_KNOWN.get(dist, dist.replace("-", "_"))}
    return frozenset(names)


@dataclass(frozen=True)
class CustomImage:
    """A node image krtlab writes a Dockerfile for."""

    name: str  # the full image reference used in krt.yml
    folder: str  # images/<tag>-<hash>
    runner: Runner
    requirements: tuple[str, ...]

    def dockerfile(self, nodes: Iterable[str], version: str) -> str:
        return dockerfile(self, nodes, version)


def custom_image(
    version: str, base: str, requirements: Iterable[str], prefix: str | None
) -> CustomImage:
    """The image for nodes on ``base`` that need ``requirements`` (sorted, deduplicated)."""
    runner = kre_py_runner(base)
    if runner is None:
        raise ValueError(base)
    reqs = tuple(sorted({r.strip() for r in requirements if r.strip()}, key=str.lower))
    digest = hashlib.sha256("\n".join([runner.image, *reqs]).encode()).hexdigest()[:8]
    tag = f"{runner.tag}-{digest}"
    repo = f"{version}-runner"
    name = f"{prefix.rstrip('/')}/{repo}:{tag}" if prefix else f"{repo}:{tag}"
    return CustomImage(name, f"images/{tag}", runner, reqs)


def dockerfile(image: CustomImage, nodes: Iterable[str], version: str) -> str:
    """The Dockerfile: FROM the stock runner, a pip install of the pins, nothing else."""
    pins = " \\\n        ".join(image.requirements)
    install = f"RUN python3 -m pip install --no-cache-dir \\\n        {pins}"
    lines = [
        f"# image: {image.name}",
        f"# krtlab: the image of node(s) {', '.join(nodes)} of version {version}; build and "
        "push it before deploying:",
        f"#   docker build -t {image.name} {image.folder} && docker push {image.name}",
        f"FROM {image.runner.image}",
    ]
    if image.runner.user != "root":  # kre-py images from 1.24.0 run as `kre`
        lines += ["USER root", install, f"USER {image.runner.user}"]
    else:
        lines.append(install)
    return "\n".join(lines) + "\n"


def read_dockerfiles(files: Mapping[str, bytes]) -> dict[str, str]:
    """Image name -> the stock base it is built FROM, from ``images/*/Dockerfile`` files."""
    found = {}
    for path, data in files.items():
        if not (path.startswith("images/") and path.endswith("/Dockerfile")):
            continue
        text = data.decode(errors="replace")
        name = re.search(r"^# image: (\S+)", text, re.M)
        base = re.search(r"^FROM\s+(\S+)", text, re.M)
        if name and base:
            found[name.group(1)] = base.group(1)
    return found


def envs_from_files(files: Mapping[str, bytes], manifest: Manifest) -> dict[str, NodeEnv]:
    """What a bundle's nodes run on, from the files krtlab writes: the ``images/*/Dockerfile``
    naming a node's image (its ``FROM``) and ``src/<node>/requirements.txt``."""
    bases = read_dockerfiles(files)
    envs = {}
    for node in manifest.nodes:
        # files are keyed by normalized paths: `src: ./src/n/main.py` reads src/n/requirements.txt
        path = posixpath.normpath(posixpath.join(posixpath.dirname(node.src), "requirements.txt"))
        text = files.get(path, b"").decode(errors="replace")
        lines = (line.partition("#")[0].strip() for line in text.splitlines())
        reqs = tuple(line for line in lines if line)
        base = bases.get(node.image)
        if base is not None or reqs:
            envs[node.name] = NodeEnv(base=base, requirements=reqs, provides=provides(reqs))
    return envs


def runner_of(version: Any, node: Any) -> Runner | None:
    """The kre-py runner a version's node runs on: its stock image's, the one it declares its
    image is built FROM (``runner=``), or the FROM of its bundle's Dockerfile; None for Go nodes
    and images krtlab does not know (their ``ctx`` then has every member)."""
    if node.kind != "python":
        return None
    base = getattr(node, "runner", None)
    bundle = getattr(version, "_base", None)
    if base is None and bundle is not None:
        base = read_dockerfiles(bundle.files).get(node.image)
    return kre_py_runner(base or node.image)
