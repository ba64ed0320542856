"""The protos of an authored version: the user's public proto plus classes made into messages.

Every change recompiles all files into a fresh private pool (users re-run cells and redefine
things), while the namespaces handed out earlier (``pb = v.proto(...)``) are updated in place so
they keep pointing at the current classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from krtlab.errors import MessageTypeError, SpecError

if TYPE_CHECKING:
    from krtlab.protos import FileSet, MessageSpec, ProtoModule, Registry

__all__ = ["INTERNAL_PROTO", "PUBLIC_PROTO", "ProtoSet"]

PUBLIC_PROTO = "public_input.proto"
INTERNAL_PROTO = "internal_nodes.proto"


class ProtoSet:
    """Proto sources of a version, compiled, with their message classes."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}
        self.messages: dict[str, MessageSpec] = {}
        self.fileset: FileSet | None = None
        self.registry: Registry | None = None
        self.modules: dict[str, ProtoModule] = {}

    @property
    def package(self) -> str:
        if self.fileset is not None and PUBLIC_PROTO in self.fileset.files:
            return self.fileset.package(PUBLIC_PROTO)
        return "entrypoint"

    def all_sources(self, messages: dict[str, MessageSpec] | None = None) -> dict[str, str]:
        from krtlab.protos import file_text

        out = dict(self.sources)
        specs = self.messages if messages is None else messages
        if specs:
            imports = set()
            for spec in specs.values():
                for dep in spec.depends_on:
                    owner = self._file_of(dep)
                    if owner and owner != INTERNAL_PROTO:
                        imports.add(owner)
            out[INTERNAL_PROTO] = file_text(self.package, list(specs.values()), sorted(imports))
        return out

    def _file_of(self, full_name: str) -> str | None:
        if self.fileset is None:
            return None
        return self.fileset.message_file(full_name.lstrip("."))

    def set_source(self, name: str, text: str) -> ProtoModule:
        previous = self.sources.get(name)
        self.sources[name] = text
        try:
            self._rebuild()
        except Exception:
            if previous is None:
                self.sources.pop(name)
            else:
                self.sources[name] = previous
            raise
        return self.module(name)

    def add_message(self, cls: type) -> type:
        from krtlab.protos import message_text

        if not self.sources:
            # without the public proto the package is unknown; entrypoint is KRE's convention
            pass
        spec = message_text(cls, resolve_message=self.resolve)
        candidate = dict(self.messages)
        candidate.pop(spec.name, None)  # a re-run cell redefines the message in place
        candidate[spec.name] = spec
        previous = self.messages
        self.messages = candidate
        try:
            self._rebuild()
        except Exception:
            self.messages = previous
            raise
        return self.message_class(f"{self.package}.{spec.name}" if self.package else spec.name)

    def resolve(self, cls: type) -> str | None:
        """Proto type name of a class already made into a message (or a message class)."""
        desc = getattr(cls, "DESCRIPTOR", None)
        if desc is not None and hasattr(desc, "full_name"):
            return desc.full_name
        name = getattr(cls, "__name__", "")
        if name in self.messages:
            return f"{self.package}.{name}" if self.package else name
        return None

    def _rebuild(self) -> None:
        from krtlab.protos import Registry, compile_protos

        sources = self.all_sources()
        if not sources:
            return
        fileset = compile_protos(sources)
        registry = Registry(fileset)
        self.fileset, self.registry = fileset, registry
        for name, module in self.modules.items():
            if name in fileset.files:
                module._krt_update(registry)

    def module(self, name: str) -> ProtoModule:
        if self.registry is None:
            raise SpecError("no proto yet: call v.proto(...) first")
        if name not in self.modules:
            self.modules[name] = self.registry.module(name)
        return self.modules[name]

    def message_class(self, full_name: str) -> Any:
        if self.registry is None:
            raise MessageTypeError(f"message {full_name} is not compiled")
        return self.registry.message_class(full_name)
