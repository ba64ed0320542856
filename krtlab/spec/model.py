"""The KRT V1 model: what a ``krt.yml`` says, as frozen value objects.

These objects mirror KRE's Go struct (``engine/admin-api/domain/usecase/krt/types.go``) field for
field. They hold *what the file says*; whether that is acceptable is :mod:`krtlab.spec.validate`'s
job, so building a model from odd data never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from krtlab.spec.rules import runner_kind

__all__ = [
    "GO_TYPES",
    "KNOWN_KEYS",
    "ConfigSpec",
    "EntrypointSpec",
    "Manifest",
    "NodeSpec",
    "WorkflowSpec",
]

# The keys KRE's V1 struct knows, per mapping (``krtVersion`` is kre-8's optional V1/V2 switch).
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "root": ("krtVersion", "version", "description", "entrypoint", "config", "nodes", "workflows"),
    "entrypoint": ("proto", "image"),
    "config": ("variables", "files"),
    "node": ("name", "image", "src", "gpu"),
    "workflow": ("name", "entrypoint", "sequential"),
}


# The Go type yaml.v2 decodes each krt.yml value into (KRE 3-7's ``krt`` package; loc shapes with
# ``#`` for a list index). A value of another kind is one of yaml.v2's "unmarshal errors".
GO_TYPES: dict[tuple[str, ...], str] = {
    (): "krt.Krt",
    ("version",): "string",
    ("description",): "string",
    ("entrypoint",): "krt.Entrypoint",
    ("entrypoint", "proto"): "string",
    ("entrypoint", "image"): "string",
    ("config",): "krt.Config",
    ("config", "variables"): "[]string",
    ("config", "variables", "#"): "string",
    ("config", "files"): "[]string",
    ("config", "files", "#"): "string",
    ("nodes",): "[]krt.Node",
    ("nodes", "#"): "krt.Node",
    ("nodes", "#", "name"): "string",
    ("nodes", "#", "image"): "string",
    ("nodes", "#", "src"): "string",
    ("nodes", "#", "gpu"): "bool",
    ("workflows",): "[]krt.Workflow",
    ("workflows", "#"): "krt.Workflow",
    ("workflows", "#", "name"): "string",
    ("workflows", "#", "entrypoint"): "string",
    ("workflows", "#", "sequential"): "[]string",
    ("workflows", "#", "sequential", "#"): "string",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_text(v) for v in value)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class EntrypointSpec:
    """``entrypoint:`` — the public proto and the entrypoint image KRE runs for it."""

    proto: str = "public_input.proto"
    image: str = "konstellation/kre-entrypoint:1.7.1"


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """``config:`` — names of variables and files whose values are set in KRE, not in the bundle."""

    variables: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.variables or self.files)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One ``nodes[]`` entry: a handler (``src``) run by a runner ``image``."""

    name: str
    image: str
    src: str
    gpu: bool = False

    @property
    def runtime(self) -> str:
        """``"python"`` (kre-py), ``"go"`` (kre-go) or ``"custom"`` (a derived image)."""
        kind = runner_kind(self.image)
        if kind == "custom":
            return "python" if self.src.endswith(".py") else "go"
        return kind


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """One ``workflows[]`` entry: the rpc it serves and its nodes in order."""

    name: str
    entrypoint: str
    sequential: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A whole ``krt.yml``."""

    version: str
    description: str
    entrypoint: EntrypointSpec = field(default_factory=EntrypointSpec)
    config: ConfigSpec = field(default_factory=ConfigSpec)
    nodes: tuple[NodeSpec, ...] = ()
    workflows: tuple[WorkflowSpec, ...] = ()
    krt_version: str | None = None

    @classmethod
    def from_data(cls, data: Any) -> Manifest:
        """Best-effort model of parsed krt.yml data; odd values become empty strings."""
        root = _mapping(data)
        ep = _mapping(root.get("entrypoint"))
        cfg = _mapping(root.get("config"))
        nodes = (
            tuple(
                NodeSpec(
                    name=_text(n.get("name")),
                    image=_text(n.get("image")),
                    src=_text(n.get("src")),
                    gpu=n.get("gpu") is True,
                )
                for n in (root.get("nodes") or [])
                if isinstance(n, dict)
            )
            if isinstance(root.get("nodes"), list)
            else ()
        )
        workflows = (
            tuple(
                WorkflowSpec(
                    name=_text(w.get("name")),
                    entrypoint=_text(w.get("entrypoint")),
                    sequential=_texts(w.get("sequential")),
                )
                for w in (root.get("workflows") or [])
                if isinstance(w, dict)
            )
            if isinstance(root.get("workflows"), list)
            else ()
        )
        kv = root.get("krtVersion")
        return cls(
            version=_text(root.get("version")),
            description=_text(root.get("description")),
            entrypoint=EntrypointSpec(proto=_text(ep.get("proto")), image=_text(ep.get("image"))),
            config=ConfigSpec(
                variables=_texts(cfg.get("variables")), files=_texts(cfg.get("files"))
            ),
            nodes=nodes,
            workflows=workflows,
            krt_version=None if kv is None else _text(kv),
        )

    def to_data(self) -> dict[str, Any]:
        """The krt.yml mapping, keys in KRE's conventional order; ``gpu`` only when true and
        ``config`` only when it declares something."""
        data: dict[str, Any] = {}
        if self.krt_version:
            data["krtVersion"] = self.krt_version
        data["version"] = self.version
        data["description"] = self.description
        data["entrypoint"] = {"proto": self.entrypoint.proto, "image": self.entrypoint.image}
        if self.config:
            cfg: dict[str, Any] = {}
            if self.config.variables:
                cfg["variables"] = list(self.config.variables)
            if self.config.files:
                cfg["files"] = list(self.config.files)
            data["config"] = cfg
        data["nodes"] = []
        for n in self.nodes:
            item: dict[str, Any] = {"name": n.name, "image": n.image, "src": n.src}
            if n.gpu:
                item["gpu"] = True
            data["nodes"].append(item)
        data["workflows"] = [
            {"name": w.name, "entrypoint": w.entrypoint, "sequential": list(w.sequential)}
            for w in self.workflows
        ]
        return data

    def to_yaml(self) -> str:
        """The krt.yml text (deterministic)."""
        from krtlab.spec.yamlsrc import dump_krt_yml

        return dump_krt_yml(self.to_data())

    def node(self, name: str) -> NodeSpec | None:
        """The last node called ``name`` (KRE's ``nodesMap`` keeps the last definition)."""
        found = None
        for n in self.nodes:
            if n.name == name:
                found = n
        return found

    def workflow(self, name_or_rpc: str) -> WorkflowSpec | None:
        for w in self.workflows:
            if name_or_rpc in (w.name, w.entrypoint):
                return w
        return None

    def with_version(self, name: str) -> Manifest:
        return replace(self, version=name)
