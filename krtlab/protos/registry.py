"""Message classes for a compiled :class:`~krtlab.protos.compile.FileSet`, in a private pool.

Each :class:`Registry` owns a fresh ``DescriptorPool``, never the default one: notebook users
re-run cells and redefine their protos, and the default pool refuses a second, different
definition of a file it already holds. Two registries built from the same sources therefore
coexist, and their messages interoperate through ``google.protobuf.Any`` (which only looks at
type names and bytes).
"""

from __future__ import annotations

import types
from typing import Any, TypeGuard

from google.protobuf import descriptor_pool, message, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.internal import enum_type_wrapper

from krtlab.errors import SpecError
from krtlab.protos._names import close_matches, module_stem
from krtlab.protos.compile import FileSet

__all__ = [
    "ProtoModule",
    "Registry",
    "is_message_class",
    "message_module_name",
]


def _message_class(desc: Descriptor) -> type[message.Message]:
    return message_factory.GetMessageClass(desc)  # protobuf >= 4.21 (the dependency's floor)


class Registry:
    """Message classes for every file of a :class:`FileSet`, built in a private pool.

    Args:
        fileset: the compiled files (well-known dependencies included).

    Example:
        >>> from krtlab.protos import compile_protos
        >>> fs = compile_protos({"a.proto": 'syntax = "proto3"; message A { int64 x = 1; }'})
        >>> Registry(fs).message_class("A")(x=3).x
        3
    """

    def __init__(self, fileset: FileSet) -> None:
        self._fileset = fileset
        self._pool = descriptor_pool.DescriptorPool()
        for name in fileset.all_files:  # dependency order: well-known files come first
            fdp = fileset.descriptor(name)
            self._pool.AddSerializedFile(fdp.SerializeToString(deterministic=True))
        self._classes: dict[str, type[message.Message]] = {}
        for name in fileset.files:
            module_name = module_stem(name)
            for full in fileset.messages(name):
                cls = _message_class(self._pool.FindMessageTypeByName(full))
                # upb leaves __module__ unset; the pb2 name makes reprs read like generated code.
                cls.__module__ = module_name
                self._classes[full] = cls
        self._modules: dict[str, ProtoModule] = {}

    def __repr__(self) -> str:
        return f"Registry({list(self._fileset.files)!r})"

    def __contains__(self, full_name: object) -> bool:
        return isinstance(full_name, str) and full_name.lstrip(".") in self._classes

    @property
    def fileset(self) -> FileSet:
        """The compiled files this registry was built from."""
        return self._fileset

    @property
    def pool(self) -> descriptor_pool.DescriptorPool:
        """The private descriptor pool holding every file."""
        return self._pool

    @property
    def messages(self) -> tuple[str, ...]:
        """Full names of every message of the user files (nested ones included)."""
        return tuple(self._classes)

    def file_descriptor(self, file_name: str) -> FileDescriptor:
        """Return the pool's ``FileDescriptor`` for a file."""
        self._fileset.descriptor(file_name)  # raises SpecError with a suggestion
        return self._pool.FindFileByName(file_name)

    def message_class(self, name: str) -> type[message.Message]:
        """Return the class of a message.

        Args:
            name: full name (``"entrypoint.Request"``), or the bare name when only one message
                has it (``"Request"``). Well-known types (``"google.protobuf.Timestamp"``) of the
                set's dependencies work too.

        Raises:
            SpecError: if no message has that name (with close matches).
        """
        name = name.lstrip(".")
        if name in self._classes:
            return self._classes[name]
        short = [full for full in self._classes if full.rsplit(".", 1)[-1] == name]
        if len(short) == 1:
            return self._classes[short[0]]
        try:
            return _message_class(self._pool.FindMessageTypeByName(name))
        except KeyError:
            pass
        if len(short) > 1:
            raise SpecError(f"Message name {name!r} is ambiguous: use one of {sorted(short)}")
        shorts = {full.rsplit(".", 1)[-1] for full in self._classes}
        hint = close_matches(name, [*self._classes, *shorts])
        raise SpecError(f"Unknown message {name!r}.{hint}")

    def module(self, file_name: str) -> ProtoModule:
        """Return the module-like namespace of one user file (created once per registry)."""
        if file_name not in self._fileset.files:
            hint = close_matches(file_name, self._fileset.files)
            raise SpecError(f"No user proto file {file_name!r}.{hint}")
        if file_name not in self._modules:
            mod = ProtoModule(file_name)
            mod._krt_update(self)
            self._modules[file_name] = mod
        return self._modules[file_name]


class ProtoModule(types.ModuleType):
    """A stand-in for the generated ``<stem>_pb2`` module of one proto file.

    Top-level messages are attributes, as are top-level enums (``EnumTypeWrapper``) and their
    values, exactly like protoc's Python output. :meth:`_krt_update` swaps the content in place so
    a variable holding the module follows a re-compiled proto.
    """

    def __init__(self, proto_file: str) -> None:
        name = module_stem(proto_file)
        super().__init__(name, f"Message classes of {proto_file} (built by krtlab)")
        self.__krt_pb2_module__ = name
        self.__krt_proto_file__ = proto_file
        self._krt_names: tuple[str, ...] = ()
        self._krt_messages: tuple[str, ...] = ()
        self._krt_registry: Registry | None = None

    def _krt_update(self, registry: Registry) -> None:
        """Replace the classes with those of ``registry`` (for the same file name)."""
        file_name = self.__krt_proto_file__
        fd = registry.file_descriptor(file_name)
        attrs: dict[str, Any] = {"DESCRIPTOR": fd}
        messages = []
        for desc in fd.message_types_by_name.values():
            attrs[desc.name] = registry.message_class(desc.full_name)
            messages.append(desc.name)
        for enum in fd.enum_types_by_name.values():
            attrs[enum.name] = enum_type_wrapper.EnumTypeWrapper(enum)
            for value in enum.values:
                attrs[value.name] = value.number
        for old in self._krt_names:
            self.__dict__.pop(old, None)
        self.__dict__.update(attrs)
        self._krt_names = tuple(attrs)
        self._krt_messages = tuple(messages)
        self._krt_registry = registry

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails.
        if name.startswith("__"):
            raise AttributeError(name)
        public = [n for n in self.__dict__.get("_krt_names", ()) if n != "DESCRIPTOR"]
        hint = close_matches(name, public) or f" It has: {', '.join(public) or 'nothing'}."
        raise AttributeError(
            f"Proto module {self.__krt_pb2_module__} ({self.__krt_proto_file__}) has no "
            f"{name!r}.{hint}"
        )

    def __dir__(self) -> list[str]:
        return sorted({*self._krt_names, "__krt_pb2_module__", "__krt_proto_file__", "__name__"})

    def __repr__(self) -> str:
        names = list(self._krt_messages)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        return f"<proto module {self.__krt_pb2_module__}: {shown}>"


def message_module_name(cls: type) -> str:
    """Return the module a message class lives in as generated code, e.g. ``public_input_pb2``.

    Only the base name of the proto file counts (``a/b.proto`` -> ``b_pb2``) because KRT node
    folders are flat; ``-`` becomes ``_`` like protoc does.
    """
    if not is_message_class(cls):
        raise SpecError(f"{cls!r} is not a protobuf message class")
    return module_stem(cls.DESCRIPTOR.file.name)


def is_message_class(obj: object) -> TypeGuard[type[message.Message]]:
    """Tell whether ``obj`` is a concrete protobuf message class (not an instance)."""
    return (
        isinstance(obj, type)
        and issubclass(obj, message.Message)
        and isinstance(getattr(obj, "DESCRIPTOR", None), Descriptor)
    )
