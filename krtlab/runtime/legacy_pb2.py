"""Old protoc 3.x ``*_pb2.py`` files of hand-written projects, run under current protobuf.

protoc up to 3.18 wrote modules that build their descriptors one by one
(``_descriptor.FileDescriptor(..., serialized_pb=b"...")``, ``_descriptor.Descriptor(...)``,
``_reflection.GeneratedProtocolMessageType``). The kre-py runner's protobuf 3.13 imports them, and
KRE's own greeter template ships one; protobuf 4 and later (upb, C++) refuse them at import:
``TypeError: Descriptors cannot be created directly``.

krtlab leaves such a file as it is. When a node imports it (``from public_input_pb2 import
Request``), a finder first on ``sys.meta_path`` runs a compatible module in its place: the same
module name and ``__file__``, found where the import would find the file, built from the
serialized ``FileDescriptorProto`` the file embeds (so it describes exactly what the file
describes, even when the bundle's ``.proto`` changed since) with krtlab's own ``_pb2`` code
(:func:`krtlab.protos.gencode.module_body`), plus the file's own imports (its dependencies) and
protoc's private names (``_REQUEST``, ``_ENTRYPOINT``). Under a protobuf that imports old
gencode (3.x, or the pure-Python implementation) nothing is replaced.

``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` would also import these files, but it switches
a whole process to the slow pure-Python runtime (krtlab's own messages included), cannot apply
to an in-process :meth:`Version.run` (the runtime is chosen once per process, at the first
protobuf import) and relies on the pure-Python runtime still accepting descriptors made one by
one, which protobuf only tolerates there.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os
import posixpath
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

__all__ = [
    "LegacyPb2Finder",
    "compatible_source",
    "embedded_descriptor",
    "install",
    "is_legacy_pb2",
    "legacy_files",
    "legacy_note",
    "needs_replacing",
]


def needs_replacing() -> bool:
    """True when the running protobuf refuses protoc 3.x gencode (4.x and later, not the
    pure-Python implementation)."""
    import google.protobuf
    from google.protobuf.internal import api_implementation

    major = int(google.protobuf.__version__.split(".")[0])
    return major >= 4 and api_implementation.Type() != "python"


def is_legacy_pb2(text: str) -> bool:
    """Whether ``text`` is a ``_pb2.py`` written by protoc ≤ 3.18 (descriptors made directly)."""
    return "_descriptor.FileDescriptor(" in text and "serialized_pb" in text


def embedded_descriptor(text: str) -> Any:
    """The ``FileDescriptorProto`` an old ``_pb2.py`` embeds (``serialized_pb=``), or None."""
    from google.protobuf import descriptor_pb2

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called(node.func) == "FileDescriptor"):
            continue
        for kw in node.keywords:
            if kw.arg == "serialized_pb":
                data = _bytes_of(kw.value)
                if data is None:
                    return None
                fdp = descriptor_pb2.FileDescriptorProto()
                try:
                    fdp.ParseFromString(data)
                except Exception:
                    return None
                return fdp
    return None


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _bytes_of(value: ast.expr) -> bytes | None:
    # protoc 3.6+: b'...'; older: _b('...') with _b = lambda x: x.encode('latin1') on Python 3
    if isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords:
        value = value.args[0]
    if isinstance(value, ast.Constant):
        if isinstance(value.value, bytes):
            return value.value
        if isinstance(value.value, str):
            try:
                return value.value.encode("latin-1")
            except UnicodeEncodeError:
                return None
    return None


def compatible_source(text: str) -> str | None:
    """A module that gives what the old ``_pb2.py`` ``text`` gives, importable under any
    protobuf krtlab supports; None when ``text`` is not old gencode (or embeds no descriptor)."""
    if not is_legacy_pb2(text):
        return None
    fdp = embedded_descriptor(text)
    if fdp is None:
        return None
    from krtlab.protos.gencode import module_body

    tree = ast.parse(text)
    out = [
        f"# krtlab: a compatible module for protoc 3.x gencode of {fdp.name}, built from the",
        "# descriptor the file embeds (current protobuf cannot import the file itself).",
        "from google.protobuf import descriptor_pool as _descriptor_pool",
        "from google.protobuf import message_factory as _message_factory",
        "from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper",
    ]
    # the file's own imports of its dependencies, so they reach the pool first, under the
    # names it uses (not its runtime imports: descriptor, reflection, symbol_database)
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and all(
            a.name.rpartition(".")[2].endswith("_pb2") for a in stmt.names
        ):
            segment = ast.get_source_segment(text, stmt)
            if segment:
                out.append(segment)
    out.append("")
    out += module_body(fdp, fdp.name)
    out += _private_names(fdp)
    return "\n".join(out) + "\n"


def _private_names(fdp: Any) -> list[str]:
    """protoc's module-level descriptors (``_REQUEST``, ``_REQUEST_INNER``, ``_COLOR``,
    ``_ENTRYPOINT``): other old gencode and some user code reach for them."""
    prefix = f"{fdp.package}." if fdp.package else ""
    out = [""]

    def alias(parts: list[str]) -> str:
        return "_" + "_".join(parts).upper()

    def messages(msgs: Iterable[Any], parts: list[str]) -> None:
        for m in msgs:
            here = [*parts, m.name]
            full = _quote(prefix + ".".join(here))
            out.append(f"{alias(here)} = _pool.FindMessageTypeByName({full})")
            for e in m.enum_type:
                inner = _quote(prefix + ".".join([*here, e.name]))
                out.append(f"{alias([*here, e.name])} = _pool.FindEnumTypeByName({inner})")
            messages(m.nested_type, here)

    for e in fdp.enum_type:
        out.append(f"{alias([e.name])} = _pool.FindEnumTypeByName({_quote(prefix + e.name)})")
    messages(fdp.message_type, [])
    for s in fdp.service:
        full = _quote(prefix + s.name)
        out.append(f"{alias([s.name])} = _pool.FindServiceByName({full})")
    return out


def _quote(text: str) -> str:
    return repr(str(text))


class _CompatLoader(importlib.abc.Loader):
    def __init__(self, path: str, source: str) -> None:
        self.path, self.source = path, source

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        code = compile(self.source, f"{self.path} (krtlab's compatible module)", "exec")
        exec(code, module.__dict__)


class LegacyPb2Finder(importlib.abc.MetaPathFinder):
    """Runs the compatible module in place of old gencode found under ``root``.

    The file is found the way the import would find it (same ``sys.path``, same order); only
    ``*_pb2`` modules under ``root`` whose text is old gencode are replaced.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.join(os.path.abspath(root), "")
        self.replaced: list[str] = []  # files replaced, in import order

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.rpartition(".")[2].endswith("_pb2"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(".py"):
            return None
        origin = os.path.abspath(origin)
        if not origin.startswith(self.root):
            return None
        try:
            with open(origin, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            return None
        source = compatible_source(text)
        if source is None:
            return None
        self.replaced.append(origin)
        loader = _CompatLoader(origin, source)
        return importlib.util.spec_from_file_location(fullname, origin, loader=loader)


def install(root: str | os.PathLike[str]) -> LegacyPb2Finder | None:
    """Put a :class:`LegacyPb2Finder` for ``root`` first on ``sys.meta_path`` when the running
    protobuf needs it; returns it (remove it with ``sys.meta_path.remove``), else None."""
    if not needs_replacing():
        return None
    finder = LegacyPb2Finder(root)
    sys.meta_path.insert(0, finder)
    return finder


def legacy_files(files: Mapping[str, bytes], nodes: Mapping[str, str]) -> dict[str, list[str]]:
    """``{path: [node name, ...]}``: the old-gencode ``*_pb2.py`` files in the folders of these
    Python nodes (``{name: src}``), where kre-py imports them from."""
    folders: dict[str, list[str]] = {}
    for name, src in nodes.items():
        folders.setdefault(posixpath.dirname(posixpath.normpath(src)), []).append(name)
    out: dict[str, list[str]] = {}
    for path, data in sorted(files.items()):
        if not path.endswith("_pb2.py"):
            continue
        users = folders.get(posixpath.dirname(path))
        if users and b"_descriptor.FileDescriptor(" in data:
            if compatible_source(data.decode("utf-8", "replace")) is not None:
                out[path] = users
    return out


def legacy_note(path: str, nodes: Iterable[str], how: str = "serves") -> str:
    """The one-line warning telling the user what krtlab does about an old ``_pb2.py``."""
    names = ", ".join(f"{n!r}" for n in nodes)
    which = "node" if "," not in names else "nodes"
    return (
        f"{path} was generated by protoc 3.x, which this protobuf cannot import; krtlab {how} "
        f"{which} {names} with a compatible module of its own (the file is left as it is; on "
        "KRE's protobuf 3.13 it works)"
    )
