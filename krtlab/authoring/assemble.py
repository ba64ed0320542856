"""Turning a :class:`~krtlab.authoring.version.Version` into a :class:`Project` (and back)."""

from __future__ import annotations

import posixpath

from krtlab.bundle.project import Project
from krtlab.errors import ProtoError

from .node import Node
from .version import Version, Workflow

__all__ = ["assemble", "version_from_project"]


def assemble(v: Version) -> Project:
    """Every file of the bundle, in memory, with generated ``*_pb2.py`` beside Python nodes."""
    base = v._base
    files: dict[str, bytes] = dict(base.files) if base is not None else {}
    executables = set(base.executables) if base is not None else set()
    manifest = v.manifest()
    if base is None or manifest != v._loaded_snapshot:
        files.pop("krt.yaml", None)
        files["krt.yml"] = manifest.to_yaml().encode()
    for name, text in v._protos.all_sources().items():
        files[name] = text.encode()
    for node in v._nodes.values():
        if node.func is not None:
            folder = posixpath.dirname(node.src)
            node_files, origins = _node_files(v, node)
            v._origins[node.src] = origins
            for rel, data in node_files.items():
                files[posixpath.join(folder, rel) if rel != "main.py" else node.src] = data
        elif node.source is not None:
            files[node.src] = node.source
        if node.executable:
            executables.add(node.src)
    from .images import image_files

    files.update(image_files(v))  # requirements.txt and Dockerfiles of custom images
    files.update(v._assets)
    if "docs/README.md" not in files and (base is None or v._protos.messages):
        from krtlab.bundle.docs import render_docs

        files["docs/README.md"] = render_docs(v).encode()
    project = Project(files, v.name, frozenset(executables))
    return project.with_generated_pb2()


def _node_files(v: Version, node: Node) -> tuple[dict[str, bytes], dict[int, str]]:
    from .handler_py import node_files_and_origins

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
