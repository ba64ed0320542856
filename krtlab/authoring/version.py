"""``Version``: a KRT V1 version authored from notebook cells (or loaded from a bundle)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from krtlab.errors import SpecError
from krtlab.spec import rules
from krtlab.spec.facts import NodeContract
from krtlab.spec.findings import Report
from krtlab.spec.model import ConfigSpec, EntrypointSpec, Manifest, NodeSpec, WorkflowSpec
from krtlab.spec.names import bump_name
from krtlab.spec.suggest import did_you_mean

from .node import Node, check_name, read_binary
from .protoset import PUBLIC_PROTO, ProtoSet
from .version_actions import VersionActions

if TYPE_CHECKING:
    from krtlab.bundle.project import Project
    from krtlab.protos import ProtoModule

__all__ = ["Version", "Workflow"]


@dataclass(frozen=True)
class Workflow:
    """A workflow: the rpc it serves and its node names, in order."""

    name: str
    entrypoint: str
    sequential: tuple[str, ...]
    # the version it belongs to, so a workflow can draw itself (not part of its value)
    version: Version | None = field(default=None, repr=False, compare=False)

    @property
    def spec(self) -> WorkflowSpec:
        return WorkflowSpec(self.name, self.entrypoint, self.sequential)

    def __str__(self) -> str:
        return f"{self.name} ({self.entrypoint}): " + " → ".join(self.sequential)

    def graph(self, version: Version | None = None) -> Any:
        """This workflow as a :class:`krtlab.notebook.Graph` (its version is found if omitted)."""
        from krtlab.notebook import workflow_graph

        return workflow_graph(self, version)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        from krtlab.notebook import display_bundle

        return display_bundle(self, include, exclude)


class Version(VersionActions):
    """A KRT V1 version: one entrypoint proto, nodes, and workflows.

    Example:
        >>> import krtlab as krt
        >>> v = krt.Version("greeter-v1", description="Greets whoever asks")
        >>> pb = v.proto('''
        ... syntax = "proto3";
        ... package entrypoint;
        ... message Request { string name = 1; }
        ... message Response { string greeting = 1; }
        ... service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
        ... ''')
        >>> @v.node(name="py-greeter")
        ... def greet(ctx, req: pb.Request) -> pb.Response:
        ...     return pb.Response(greeting=f"Hello {req.name}!")
        >>> _ = v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])
        >>> v.validate().ok
        True
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        *,
        entrypoint_image: str = rules.DEFAULT_ENTRYPOINT_IMAGE,
    ) -> None:
        self.name = check_name(name, "version name")
        self.description = description
        self.entrypoint_image = entrypoint_image
        self._protos = ProtoSet()
        self._nodes: dict[str, Node] = {}
        self._workflows: dict[str, Workflow] = {}
        self._variables: list[str] = []
        self._files: list[str] = []
        self._values: dict[str, str] = {}
        self._assets: dict[str, bytes] = {}
        self._base: Project | None = None  # set when loaded from a bundle
        self._loaded_snapshot: Manifest | None = None  # what the loaded krt.yml said
        self._proto_file = PUBLIC_PROTO
        self._origins: dict[str, dict[int, str]] = {}  # src -> main.py line -> notebook cell
        self._defined: dict[str, str] = {}  # part -> the user's line (findings point there)
        self._note("version")
        self._requirements: tuple[str, ...] = ()
        self._image_prefix: str | None = None

    def bump(self, part: str = "patch") -> str:
        """Rename the version to its next version and return the new name (``v.name`` changes
        in place): ``price-estima-v1-4-2`` → ``price-estima-v1-4-3``; ``part`` is ``"patch"``,
        ``"minor"``, ``"major"`` or ``"pre"`` (``rc.1`` → ``rc.2``). The name must end in a
        version part, as :func:`krtlab.version_name` writes it (``greeter-v1`` does too);
        SpecError otherwise. See :func:`krtlab.spec.names.bump_name`."""
        self.name = bump_name(self.name, part)
        return self.name

    def _note(self, part: str) -> None:
        from .origins import caller

        where = caller(3)
        if where is not None:
            self._defined[part] = where

    # -- protos --------------------------------------------------------------------------------

    def proto(self, source: str | os.PathLike[str]) -> ProtoModule:
        """Set the public proto (text, or a path to a ``.proto`` file) and compile it now.

        Returns a module-like namespace with the message classes (``pb.Request``); it follows
        later redefinitions. Raises :class:`~krtlab.errors.ProtoError` with file/line/column.
        """
        text = _read_text_or_path(source)
        self._note("proto")
        return self._protos.set_source(self._proto_file, text)

    def message(self, cls: type | None = None, /) -> Any:
        """Decorator: turn a class with type hints into a proto3 message (``internal_nodes.proto``).

        Returns the generated protobuf class, so ``Features(rooms=3)`` builds a real message.
        """

        def register(c: type) -> Any:
            return self._protos.add_message(c)

        return register(cls) if cls is not None else register

    @property
    def protos(self) -> dict[str, ProtoModule]:
        """Every proto file of the version as a namespace of message classes."""
        if self._protos.fileset is None:
            return {}
        return {name: self._protos.module(name) for name in self._protos.fileset.files}

    # -- nodes and workflows -------------------------------------------------------------------

    def node(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        image: str = rules.DEFAULT_PY_IMAGE,
        gpu: bool = False,
        requirements: Iterable[str] = (),
        runner: str | None = None,
    ) -> Any:
        """Decorator: make a function a Python node.

        The function takes ``(ctx, request)`` or ``(request)``, may be ``async``, and returns the
        output message; its type hints give the node's message types. ``name`` defaults to the
        function name with ``_`` turned into ``-``.

        ``image`` is a stock ``konstellation/kre-py:<tag>`` (its Python, packages and ``ctx``
        are what the node gets; see :mod:`krtlab.spec.runners`), or your own image: then
        ``runner`` names the stock image it is built ``FROM``. ``requirements``
        (``["lightgbm==4.5.0"]``) are packages the image lacks: krtlab then writes an image
        ``FROM`` the stock one that installs them (see :meth:`image_prefix`).
        """
        from .images import check_node_image

        reqs, base = check_node_image(name, image, requirements, runner)

        def register(fn: Callable[..., Any] | None) -> Node:
            if isinstance(fn, Node):
                fn = fn.func  # re-decorating an existing node
            if not callable(fn):
                raise SpecError(f"@v.node decorates a function, not {fn!r}")
            node_name = check_name(name or fn.__name__.replace("_", "-"), "node name")
            reason = rules.check_image_reference(image)
            if reason:
                raise SpecError(f"node {node_name!r}: image {image!r}: {reason}")
            node = Node(node_name, func=fn, image=image, gpu=gpu)
            node.requirements, node.runner = reqs, base
            old = self._nodes.get(node_name)
            if (
                old is not None
                and old.init_func is not None
                and old.func is not None
                and (old.func.__qualname__ == fn.__qualname__)
            ):
                node.init_func = old.init_func  # a re-run cell keeps its init until redefined
            self._nodes[node_name] = node
            return node

        return register(func) if func is not None else register

    def go_node(
        self,
        name: str,
        *,
        binary: str | os.PathLike[str],
        input: type | None = None,
        output: type | None = None,
        image: str = rules.DEFAULT_GO_IMAGE,
        gpu: bool = False,
        src: str | None = None,
    ) -> Node:
        """Add a Go node: a compiled Linux binary run by a ``kre-go`` image.

        ``input``/``output`` declare its message classes so workflows can be checked.
        """
        check_name(name, "node name")
        data = read_binary(binary, name)
        node = Node(
            name,
            image=image,
            gpu=gpu,
            src=src or f"bin/{name}",
            source=data,
            input_type=input,
            output_type=output,
            executable=True,
        )
        self._nodes[name] = node
        return node

    def workflow(
        self, name: str, *, entrypoint: str, sequential: Sequence[Node | Callable[..., Any] | str]
    ) -> Workflow:
        """Bind an ordered list of nodes (nodes, decorated functions or names) to an rpc."""
        check_name(name, "workflow name")
        if isinstance(sequential, (str, Node)) or not isinstance(sequential, Iterable):
            raise SpecError(f"workflow {name!r}: sequential must be a list of nodes")
        names = tuple(self._node_name(item, name) for item in sequential)
        if not names:
            raise SpecError(f"workflow {name!r}: sequential is empty; list its nodes in order")
        fileset = self._protos.fileset
        if fileset is not None and self._proto_file in fileset.files:
            rpcs = fileset.entrypoint_rpcs(self._proto_file) or {}
            if entrypoint not in rpcs:
                hint = did_you_mean(entrypoint, rpcs) or f"rpcs: {', '.join(rpcs) or 'none'}"
                raise SpecError(
                    f"workflow {name!r}: rpc {entrypoint!r} is not in service Entrypoint; {hint}"
                )
        wf = Workflow(name, entrypoint, names, self)
        self._workflows[name] = wf
        self._note(f"workflow:{name}")
        return wf

    def _node_name(self, item: Any, workflow: str) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, Node):
            if self._nodes.get(item.name) is not item:
                raise SpecError(
                    f"workflow {workflow!r}: node {item.name!r} belongs to another "
                    "version (or was replaced): use the one from this version"
                )
            return item.name
        for node in self._nodes.values():
            if node.func is item:
                return node.name
        label = getattr(item, "__name__", repr(item))
        raise SpecError(
            f"workflow {workflow!r}: {label} is not a node of {self.name}; decorate "
            "it with @v.node first"
        )

    @property
    def nodes(self) -> dict[str, Node]:
        return dict(self._nodes)

    @property
    def workflows(self) -> dict[str, Workflow]:
        return dict(self._workflows)

    # -- images ----------------------------------------------------------------------------------

    def requirements(self, *requirements: str) -> tuple[str, ...]:
        """Packages every Python node needs beyond its stock image (``"pyyaml==6.0.2"``);
        with none given, the current list. Nodes then run on images krtlab writes a
        ``Dockerfile`` for (see :meth:`image_prefix`)."""
        from .images import check_requirements

        if requirements:
            self._requirements = check_requirements(
                [*self._requirements, *requirements], "v.requirements"
            )
        return self._requirements

    def image_prefix(self, prefix: str) -> None:
        """Where the images krtlab writes Dockerfiles for are pushed
        (``"registry.example.com/team"``): nodes get ``<prefix>/<version>-runner:<tag>-<hash>``."""
        reason = rules.check_image_reference(f"{prefix.rstrip('/')}/x:1")
        if reason:
            raise SpecError(f"image prefix {prefix!r}: {reason}")
        self._image_prefix = prefix.rstrip("/")

    # -- config and assets ---------------------------------------------------------------------

    def config(self, *variables: str, files: Iterable[str] = (), **values: str) -> None:
        """Declare config variables (and files) KRE asks values for; keyword values are local
        values for local runs and are never written into the bundle."""
        files = list(files)
        self._note("config")
        for key in files:
            reason = rules.check_env_var(key)
            if reason:
                raise SpecError(f"config file {key!r} {reason}; try {key.upper()!r}")
            if key not in self._files:
                self._files.append(key)
        for key in (*variables, *values):
            reason = rules.check_env_var(key)
            if reason:
                raise SpecError(f"config variable {key!r} {reason}; try {key.upper()!r}")
            # a value for a key declared as a file is that file's local value, not a variable
            if key not in self._variables and key not in self._files:
                self._variables.append(key)
        self._values.update({k: str(v) for k, v in values.items()})

    def asset(
        self, dest: str, source: str | os.PathLike[str] | None = None, *, data: bytes | None = None
    ) -> None:
        """Ship a file in the bundle at ``dest`` (read in nodes with ``ctx.path(dest)``).

        SpecError when ``dest`` is a file krtlab writes (krt.yml, a proto, a node's code, the
        ``_pb2.py``, ``requirements.txt`` and ``Dockerfile`` it generates); ``docs/README.md``
        may be given: it is then the version's README, and krtlab writes none.
        """
        import posixpath

        from .assemble import check_asset

        norm = posixpath.normpath(dest)
        if norm.startswith(("/", "../")) or norm in (".", ".."):
            raise SpecError(f"asset path {dest!r} must be relative to the bundle root")
        check_asset(self, norm)
        if (source is None) == (data is None):
            raise SpecError("asset: give either a source file or data=")
        if source is not None:
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                raise SpecError(f"asset {dest!r}: cannot read {source}: {exc.strerror}") from None
        self._assets[norm] = bytes(data or b"")

    # -- the KRT model and bundle ---------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The krt.yml model of this version."""
        return Manifest(
            version=self.name,
            description=self.description,
            entrypoint=EntrypointSpec(self._proto_file, self.entrypoint_image),
            config=ConfigSpec(tuple(self._variables), tuple(self._files)),
            nodes=tuple(self._node_spec(n) for n in self._nodes.values()),
            workflows=tuple(w.spec for w in self._workflows.values()),
            krt_version=self._base.manifest.krt_version if self._base is not None else None,
        )

    def _node_spec(self, node: Node) -> NodeSpec:
        from .images import node_image

        image = node_image(self, node)
        return NodeSpec(node.name, image.name if image else node.image, node.src, node.gpu)

    def project(self) -> Project:
        """The whole bundle in memory: krt.yml, protos, sources, generated code, assets, docs."""
        from .assemble import assemble

        return assemble(self)

    def contracts(self) -> dict[str, NodeContract]:
        """Node name → message types known from type hints (or declared for Go nodes)."""
        return {n.name: n.contract for n in self._nodes.values() if n.contract is not None}

    def validate(self) -> Report:
        """Check everything KRE would refuse and what would break at run time.

        Each node written from Python is also imported in a fresh interpreter, the way kre-py
        loads it (``src.import_failed`` when that fails, located in the node's files and, for
        generated code, in the cell or file it came from).
        """
        return self._validate(self.project())

    def _validate(self, project: Project) -> Report:
        from krtlab.bundle.prove import Proof

        authored = {
            n.name: n.src for n in self._nodes.values() if n.func is not None and n.kind == "python"
        }
        from .images import image_findings, node_envs

        proof = Proof(project.files, authored) if authored else None  # runs meanwhile
        try:
            report = project.validate(self.contracts(), node_envs(self, project))
            extra = image_findings(self)
            if extra:
                report = Report.of([*report.findings, *extra], report.subject)
        except BaseException:
            if proof is not None:
                proof.cancel()
            raise
        if proof is None:
            from .origins import with_origins

            return with_origins(self, report)

        def origin(file: str, line: int) -> str | None:
            return self._origins.get(file, {}).get(line)

        from .origins import with_origins

        found = proof.findings(origin)
        report = Report.of([*report.findings, *found], report.subject) if found else report
        return with_origins(self, report)

    def export(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the project folder (krt.yml, protos, src/, docs/). Refuses to replace files
        edited by hand unless ``overwrite=True``; refuses a version with errors."""
        from krtlab.bundle.write import export_dir

        project = self._checked_project()
        return export_dir(project, path, overwrite=overwrite)

    def build(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write a reproducible ``.krt``; refuses a version with validation errors."""
        from krtlab.bundle.write import build_krt

        return build_krt(self._checked_project(), path, overwrite=overwrite)

    def _checked_project(self) -> Project:
        project = self.project()
        self._validate(project).raise_for_errors()
        return project

    def __repr__(self) -> str:
        return (
            f"Version({self.name!r}, nodes={list(self._nodes)}, workflows={list(self._workflows)})"
        )

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.description}"]
        lines += [f"  {w}" for w in self._workflows.values()]
        return "\n".join(lines)


def _read_text_or_path(source: str | os.PathLike[str]) -> str:
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.endswith(".proto")
    ):
        try:
            return Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read proto file {source}: {exc.strerror}") from None
    return str(source)
