"""Compile .proto text in-process with grpcio-tools' protoc and describe the result.

No ``protoc`` binary is needed: ``grpc_tools`` links protoc as a library. It is imported inside
:func:`compile_protos` so that ``import krtlab.protos`` stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

from krtlab.errors import ProtoError, ProtoIssue, SpecError
from krtlab.protos._names import close_matches

__all__ = ["FileSet", "Rpc", "compile_protos"]

# Field numbers inside descriptor.proto, used to read source_code_info locations.
_FILE_MESSAGE_TYPE = 4
_FILE_SERVICE = 6
_MESSAGE_NESTED_TYPE = 3
_SERVICE_METHOD = 2

# fd 2 is process-wide: two threads compiling at once must not swap each other's stderr.
_STDERR_LOCK = threading.Lock()

# "file.proto:12:5: message" or "file.proto: message" (e.g. "missing.proto: File not found.")
_ISSUE_RE = re.compile(r"^(?P<file>.+?):(?:(?P<line>\d+):(?P<col>\d+):)?\s*(?P<msg>.*)$")


@dataclass(frozen=True)
class Rpc:
    """One rpc of a service, with message types as full names (no leading dot)."""

    name: str
    input_type: str
    output_type: str
    line: int | None = None
    client_streaming: bool = False
    server_streaming: bool = False

    def __str__(self) -> str:
        return f"rpc {self.name}({self.input_type}) returns ({self.output_type})"


class FileSet:
    """The compiled descriptors of some user .proto files plus their well-known dependencies.

    Files are kept in dependency order (every file after the files it imports), as protoc
    writes them. User files keep their source info, so lines of messages and rpcs are known.
    """

    def __init__(
        self,
        protos: list[descriptor_pb2.FileDescriptorProto],
        sources: Mapping[str, str],
    ) -> None:
        self._protos = {p.name: p for p in protos}
        self._sources = dict(sources)
        self._user = tuple(p.name for p in protos if p.name in self._sources)
        self._lines: dict[str, dict[tuple[int, ...], int]] = {}

    def __repr__(self) -> str:
        return f"FileSet({list(self._user)!r})"

    @property
    def files(self) -> tuple[str, ...]:
        """User file names, in dependency order."""
        return self._user

    @property
    def all_files(self) -> tuple[str, ...]:
        """Every file name (well-known dependencies included), in dependency order."""
        return tuple(self._protos)

    def source(self, name: str) -> str:
        """Return the text a user file was compiled from."""
        self._check_user(name)
        return self._sources[name]

    def descriptor(self, name: str) -> descriptor_pb2.FileDescriptorProto:
        """Return the ``FileDescriptorProto`` of a file (user or well-known dependency).

        Raises:
            SpecError: if no such file was compiled.
        """
        try:
            return self._protos[name]
        except KeyError:
            raise SpecError(
                f"No proto file {name!r} in this set.{close_matches(name, self._protos)}"
            ) from None

    def dependencies(self, name: str) -> list[str]:
        """Return the files ``name`` imports, in the order it imports them."""
        return list(self.descriptor(name).dependency)

    def serialized_set(self) -> bytes:
        """Serialize every file (dependencies first) as a ``FileDescriptorSet``."""
        fds = descriptor_pb2.FileDescriptorSet(file=list(self._protos.values()))
        return fds.SerializeToString(deterministic=True)

    def package(self, name: str) -> str:
        """Return the ``package`` of a file ("" when it has none)."""
        return self.descriptor(name).package

    def messages(self, name: str) -> list[str]:
        """Return full names of the messages of a file, nested ones as ``pkg.Outer.Inner``."""
        fdp = self.descriptor(name)
        return [full for full, _, _ in _walk_messages(fdp)]

    def all_messages(self, *, include_dependencies: bool = False) -> set[str]:
        """Return the full names of every message of the user files (and of their
        well-known dependencies when ``include_dependencies`` is true)."""
        names = self.all_files if include_dependencies else self._user
        return {m for f in names for m in self.messages(f)}

    def message_file(self, full_name: str) -> str | None:
        """Return the file that defines a message, or None."""
        full_name = full_name.lstrip(".")
        for f in self._protos:
            if full_name in self.messages(f):
                return f
        return None

    def message_line(self, full_name: str) -> tuple[str, int] | None:
        """Return ``(file, 1-based line)`` where a user message is defined, or None."""
        full_name = full_name.lstrip(".")
        for f in self._user:
            fdp = self._protos[f]
            for full, path, _ in _walk_messages(fdp):
                if full == full_name:
                    line = self._line(f, path)
                    return None if line is None else (f, line)
        return None

    def services(self, name: str) -> dict[str, list[Rpc]]:
        """Return each service of a file with its rpcs, in file order."""
        fdp = self.descriptor(name)
        out: dict[str, list[Rpc]] = {}
        for si, svc in enumerate(fdp.service):
            out[svc.name] = [
                Rpc(
                    name=m.name,
                    input_type=m.input_type.lstrip("."),
                    output_type=m.output_type.lstrip("."),
                    line=self._line(name, (_FILE_SERVICE, si, _SERVICE_METHOD, mi)),
                    client_streaming=m.client_streaming,
                    server_streaming=m.server_streaming,
                )
                for mi, m in enumerate(svc.method)
            ]
        return out

    def entrypoint_rpcs(self, name: str, service: str = "Entrypoint") -> dict[str, Rpc] | None:
        """Return the rpcs of ``service Entrypoint`` by name, or None when the file has none.

        KRE's entrypoint only reads that service (see the krt-v1 reference, §5).
        """
        rpcs = self.services(name).get(service)
        return None if rpcs is None else {r.name: r for r in rpcs}

    def rpc_line(self, name: str, rpc: str, service: str = "Entrypoint") -> int | None:
        """Return the 1-based line of ``rpc`` in ``service`` of file ``name``, or None."""
        for r in self.services(name).get(service, []):
            if r.name == rpc:
                return r.line
        return None

    def _line(self, name: str, path: tuple[int, ...]) -> int | None:
        if name not in self._lines:
            locs = self._protos[name].source_code_info.location
            self._lines[name] = {tuple(loc.path): loc.span[0] + 1 for loc in locs if loc.span}
        return self._lines[name].get(path)

    def _check_user(self, name: str) -> None:
        if name not in self._sources:
            raise SpecError(
                f"No user proto file {name!r} in this set.{close_matches(name, self._user)}"
            )


def compile_protos(sources: Mapping[str, str]) -> FileSet:
    """Compile proto files given as text, with protoc running in this process.

    Args:
        sources: proto file name (as other files import it, e.g. ``"public_input.proto"``)
            mapped to its text. Well-known types (``google/protobuf/*.proto``) can be imported.

    Returns:
        The compiled :class:`FileSet`.

    Raises:
        ProtoError: if a file does not compile; ``issues`` holds protoc's located errors.

    Example:
        >>> fs = compile_protos({"a.proto": 'syntax = "proto3"; message A { int64 x = 1; }'})
        >>> fs.messages("a.proto")
        ['A']
    """
    import grpc_tools
    from grpc_tools import _protoc_compiler  # lazy: keeps `import krtlab` light

    if not sources:
        raise ProtoError("No proto files to compile")
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory(prefix="krtlab-protoc-") as tmp:
        paths = [_write_source(tmp, name, text) for name, text in sources.items()]
        out = os.path.join(tmp, ".descriptor_set.bin")
        argv = [
            b"protoc",
            f"-I{tmp}".encode(),
            f"-I{wkt}".encode(),
            f"--descriptor_set_out={out}".encode(),
            b"--include_imports",
            b"--include_source_info",
            # Disk paths (not bare names) so a same-named file in the cwd cannot interfere.
            *(p.encode() for p in paths),
        ]
        with _captured_stderr() as captured:
            rc = _protoc_compiler.run_main(argv)
        errors = bytes(captured).decode("utf-8", "replace")
        if rc != 0:
            issues = _parse_issues(errors, tmp, next(iter(sources)))
            # Name user files only: "c.proto: File not found." is reported against the importer.
            bad = [f for f in dict.fromkeys(i.file for i in issues) if f in sources]
            bad = bad or [next(iter(sources))]
            verb = "does" if len(bad) == 1 else "do"
            raise ProtoError(f"{', '.join(bad)} {verb} not compile", issues=issues)
        with open(out, "rb") as fh:
            fds = descriptor_pb2.FileDescriptorSet.FromString(fh.read())
    protos = list(fds.file)
    for p in protos:
        if p.name not in sources:  # only user files need lines: keep dependencies small
            p.ClearField("source_code_info")
    return FileSet(protos, sources)


def _write_source(tmp: str, name: str, text: str) -> str:
    parts = name.split("/")
    if (
        not name.endswith(".proto")
        or name.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ProtoError(
            f"Bad proto file name {name!r}",
            [ProtoIssue(name, None, None, "use a relative name ending in .proto, e.g. 'x.proto'")],
        )
    path = os.path.join(tmp, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


@contextlib.contextmanager
def _captured_stderr() -> Iterator[bytearray]:
    """Redirect fd 2 (where protoc writes) to a temporary file for the duration of a block.

    A file, not a pipe: a pipe could fill up and deadlock protoc before anyone reads it.
    The yielded buffer holds what was written once the block has ended.
    """
    out = bytearray()
    with _STDERR_LOCK, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            out.extend(captured.read())


def _parse_issues(text: str, tmp: str, default_file: str) -> list[ProtoIssue]:
    prefix = tmp.rstrip(os.sep) + os.sep
    issues = []
    for raw in text.splitlines():
        line = raw.strip().replace(prefix, "")
        if not line or ": warning:" in line or line.startswith("warning:"):
            continue
        m = _ISSUE_RE.match(line)
        if m and m.group("file").endswith(".proto"):
            lineno = int(m.group("line")) if m.group("line") else None
            col = int(m.group("col")) if m.group("col") else None
            issues.append(ProtoIssue(m.group("file"), lineno, col, m.group("msg")))
        else:
            issues.append(ProtoIssue(default_file, None, None, line))
    return issues


def _walk_messages(
    fdp: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, tuple[int, ...], descriptor_pb2.DescriptorProto]]:
    """Yield (full name, source path, proto) for every message, parents before children."""
    prefix = f"{fdp.package}." if fdp.package else ""

    def walk(msgs, scope: str, path: tuple[int, ...], field: int):  # type: ignore[no-untyped-def]
        for i, m in enumerate(msgs):
            full = f"{scope}{m.name}"
            here = (*path, field, i)
            if not m.options.map_entry:  # map<K, V> fields make synthetic "XEntry" messages
                yield full, here, m
            yield from walk(m.nested_type, f"{full}.", here, _MESSAGE_NESTED_TYPE)

    yield from walk(fdp.message_type, prefix, (), _FILE_MESSAGE_TYPE)
