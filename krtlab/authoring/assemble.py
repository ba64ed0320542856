"""Turning a :class:`~krtlab.authoring.version.Version` into a :class:`Project` (and back)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from krtlab.bundle.project import MANIFEST_NAMES, Project
from krtlab.errors import ProtoError, SpecError
from krtlab.spec.rules import is_krt_yml_name

from .node import Node
from .version import Version, Workflow

__all__ = ["assemble", "check_asset", "version_from_project", "written_files"]


def assemble(v: Version) -> Project:
    """Every file of the bundle, in memory, with generated ``*_pb2.py`` beside Python nodes."""
    base = v._base
    files: dict[str, bytes] = dict(base.files) if base is not None else {}
    executables = set(base.executables) if base is not None else set()
    manifest = v.manifest()
    if base is None or manifest != v._loaded_snapshot:
        for name in [n for n in files if "/" not in n and is_krt_yml_name(n)]:
            del files[name]  # krtlab writes the one krt.yml (KRE would read the first)
        files["krt.yml"] = manifest.to_yaml().encode()
    for name, text in v._protos.all_sources().items():
        files[name] = text.encode()
    captured: dict[str, str] = {}  # a node's own modules, known once its code is captured
    for node in v._nodes.values():
        if node.func is not None:
            folder = posixpath.dirname(node.src)
            node_files, origins = _node_files(v, node)
            v._origins[node.src] = origins
            for rel, data in node_files.items():
                path = posixpath.join(folder, rel) if rel != "main.py" else node.src
                files[path] = data
                captured[path] = f"{rel}, which krtlab writes for node {node.name!r}"
        elif node.source is not None:
            files[node.src] = node.source
        if node.executable:
            executables.add(node.src)
    from .images import image_files

    files.update(image_files(v))  # requirements.txt and Dockerfiles of custom images
    for path in v._assets:
        check_asset(v, path, captured)
    files.update(v._assets)
    if "docs/README.md" not in files and (base is None or v._protos.messages):
        from krtlab.bundle.docs import render_docs

        files["docs/README.md"] = render_docs(v).encode()
    # a loaded .krt's own problems (folders without entries, ...) stay the version's
    problems = list(base.problems) if base is not None else []
    project = Project(files, v.name, frozenset(executables), problems)
    return project.with_generated_pb2()


def written_files(v: Version) -> dict[str, str]:
    """The files krtlab writes into ``v``'s bundle, each with what it is: krt.yml, the protos
    and the ``_pb2.py`` code generated from them beside each Python node, each node's src, and
    the requirements.txt and Dockerfiles of custom images. (A node's other captured modules are
    known when :func:`assemble` captures its code.)"""
    from .images import image_files

    owners = {name: "the version's krt.yml, which krtlab writes" for name in MANIFEST_NAMES}
    protos = sorted(v._protos.all_sources())
    for name in protos:
        owners[name] = f"the proto {name}, which krtlab writes from v.proto / @v.message"
    for node in v._nodes.values():
        owners[node.src] = f"the code of node {node.name!r}, which krtlab writes"
        if node.src.endswith(".py"):
            folder = posixpath.dirname(node.src)
            for name in protos:
                module = posixpath.basename(name)[: -len(".proto")] + "_pb2.py"
                owners[posixpath.join(folder, module)] = (
                    f"{module}, which krtlab generates from {name} for node {node.name!r}"
                )
    for path in image_files(v):
        owners.setdefault(path, f"{path}, which krtlab writes for the node's custom image")
    return owners


def check_asset(v: Version, path: str, also: Mapping[str, str] | None = None) -> None:
    """Refuse an asset at ``path`` (normalized) that would replace a file krtlab writes."""
    owner = (also or {}).get(path) or written_files(v).get(path)
    if owner is None and "/" not in path and is_krt_yml_name(path):
        owner = "nothing yet, but KRE may read a file of that name at the root as the krt.yml"
    if owner is not None:
        raise SpecError(
            f"v.asset({path!r}) would replace {owner}; ship the file under another path"
        )


def _node_files(v: Version, node: Node) -> tuple[dict[str, bytes], dict[int, str]]:
    from .handler_py import node_files_and_origins

    assert node.func is not None  # an authored node (a loaded one ships its file as it is)
    return node_files_and_origins(
        node=node.name,
        version=v.name,
        handler=node.func,
        init=node.init_func,
        input_type=node.input_type,
        output_type=node.output_type,
    )


def version_from_project(project: Project) -> Version:
    """A :class:`Version` holding a loaded project as it is (invalid ones included: their
    problems are findings of :meth:`Version.validate`, not exceptions)."""
    m = project.manifest
    v = Version.__new__(Version)
    Version.__init__(v, "loaded")  # defaults, then the loaded values without name checks
    v.name, v.description, v.entrypoint_image = m.version, m.description, m.entrypoint.image
    v._proto_file = m.entrypoint.proto or "public_input.proto"
    v._variables, v._files = list(m.config.variables), list(m.config.files)
    for spec in m.nodes:
        v._nodes[spec.name] = Node(
            spec.name,
            image=spec.image,
            gpu=spec.gpu,
            src=spec.src,
            source=project.files.get(spec.src),
            executable=spec.src in project.executables,
        )
    for wf in m.workflows:
        v._workflows[wf.name] = Workflow(wf.name, wf.entrypoint, wf.sequential, v)
    v._protos.sources = project.proto_sources()
    try:
        v._protos._rebuild()
    except ProtoError:
        pass  # reported by validate()
    v._base = project
    v._loaded_snapshot = v.manifest()
    return v
