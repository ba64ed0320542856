"""A KRT project in memory: ``krt.yml`` plus every other file, whatever it came from.

A :class:`Project` is what gets validated, written as a folder or packed as a ``.krt``. It comes
from a folder, a ``krt.yml`` path, a ``.krt`` archive, or an authored :class:`krtlab.Version`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from krtlab.bundle.archive import krt_yml_member
from krtlab.errors import ProtoError
from krtlab.spec.facts import FileFacts, NodeContract, NodeEnv, ProtoFacts, RpcFacts, SourceFacts
from krtlab.spec.findings import ERROR, Finding, Report
from krtlab.spec.model import Manifest
from krtlab.spec.pysource import read_python_source
from krtlab.spec.rules import is_krt_yml_name
from krtlab.spec.validate import validate
from krtlab.spec.yamlsrc import ParsedYaml, YamlSyntaxError, parse_yaml

if TYPE_CHECKING:
    from krtlab.protos import FileSet

__all__ = ["MANIFEST_NAMES", "Project"]

#: The names a project folder's krt.yml may have (kli's builder: ``krt.yaml`` or ``krt.yml`` at
#: the source root). Which file KRE reads is :func:`~krtlab.bundle.archive.krt_yml_member`'s rule.
MANIFEST_NAMES = ("krt.yml", "krt.yaml")


@dataclass
class Project:
    """Every file of a KRT project, keyed by POSIX path relative to the bundle root.

    Attributes:
        files: path → content, ``krt.yml`` included, in archive order: a ``.krt``'s own, a
            folder's sorted (the order ``krtlab build`` writes a root krt.yml and krt.yaml in).
        origin: where it came from, for messages (``examples/greeter``, ``build/x.krt``).
        executables: paths that carry the executable bit (Go binaries).
        problems: findings about the container itself (a nested krt.yml, an archive KRE cannot
            unpack), added to every validation report.
    """

    files: dict[str, bytes]
    origin: str = "<memory>"
    executables: frozenset[str] = frozenset()
    problems: list[Finding] = field(default_factory=list)

    # -- what is in it -------------------------------------------------------------------------

    @property
    def manifest_name(self) -> str:
        """The krt.yml krtlab reads: KRE's pick (the first entry matching ``(^|/)krt.ya?ml$``,
        :func:`~krtlab.bundle.archive.krt_yml_member`) among the files at the root, which is
        what KRE reads once the project is packed (``krtlab build`` writes root krt.yml files
        first). An archive whose first match is a nested one is reported when loaded."""
        return krt_yml_member(self.files, root_only=True) or "krt.yml"

    @property
    def manifest_text(self) -> str:
        return _text(self.files.get(self.manifest_name, b""))

    @cached_property
    def parsed(self) -> ParsedYaml | YamlSyntaxError:
        """krt.yml with line numbers, or the syntax error that stops reading it."""
        if self.manifest_name not in self.files:
            return YamlSyntaxError("there is no krt.yml at the bundle root", None)
        try:
            return parse_yaml(_yaml_text(self.files[self.manifest_name]))
        except YamlSyntaxError as exc:
            return exc

    @cached_property
    def manifest(self) -> Manifest:
        """The model (empty fields where krt.yml is missing or broken)."""
        parsed = self.parsed
        return Manifest.from_data(parsed.data if isinstance(parsed, ParsedYaml) else None)

    def file_facts(self) -> dict[str, FileFacts]:
        facts: dict[str, FileFacts] = {}
        for path, data in self.files.items():
            facts[path] = FileFacts("file", len(data), data[:4])
            parent = posixpath.dirname(path)
            while parent:
                facts.setdefault(parent, FileFacts("dir"))
                parent = posixpath.dirname(parent)
        return facts

    def proto_sources(self) -> dict[str, str]:
        """Every ``.proto`` at the bundle root (where KRE and protoc expect them)."""
        return {
            p: _text(d)
            for p, d in sorted(self.files.items())
            if p.endswith(".proto") and "/" not in p
        }

    @cached_property
    def compiled(self) -> FileSet | ProtoError:
        """The root protos compiled together, or the error that stops them."""
        from krtlab.protos import compile_protos

        sources = self.proto_sources()
        if not sources:
            return ProtoError("the bundle has no .proto file at its root")
        try:
            return compile_protos(sources)
        except ProtoError as exc:
            return exc

    def proto_facts(self) -> ProtoFacts | None:
        """Facts of the entrypoint proto; None when it is no ``.proto`` file at the root (each
        case is a finding of its own: proto.missing, proto.not_file, entrypoint.proto_suffix,
        proto.not_public_input or proto.not_at_root)."""
        proto = posixpath.normpath(self.manifest.entrypoint.proto or "public_input.proto")
        if proto not in self.files or not proto.endswith(".proto") or "/" in proto:
            return None
        compiled = self.compiled
        if isinstance(compiled, ProtoError):
            issues = tuple((i.file, i.line, i.column, i.message) for i in compiled.issues) or (
                (proto, None, None, str(compiled)),
            )
            return ProtoFacts(file=proto, issues=issues)
        return proto_facts_from(compiled, proto)  # a root .proto: one of the compiled files

    def source_facts(self) -> dict[str, SourceFacts]:
        """Facts of each Python node's ``src``, and of the other ``.py`` files beside it (the
        node's own modules, whose imports run on the same image)."""
        out: dict[str, SourceFacts] = {}
        folders = set()
        for node in self.manifest.nodes:
            src = posixpath.normpath(node.src)  # "" (no src) is "." then: no .py file
            if src.endswith(".py") and src in self.files:
                out[src] = read_python_source(_text(self.files[src]))
                folders.add(posixpath.dirname(src))
        for path, data in self.files.items():
            if (
                path.endswith(".py")
                and not path.endswith("_pb2.py")
                and path not in out
                and any(path.startswith(f + "/") for f in folders if f)
            ):
                out[path] = read_python_source(_text(data))
        return out

    # -- validation ----------------------------------------------------------------------------

    def validate(
        self,
        contracts: Mapping[str, NodeContract] | None = None,
        envs: Mapping[str, NodeEnv] | None = None,
    ) -> Report:
        """Everything KRE (and kli) would refuse, plus what breaks at run time; ``envs`` tells
        what nodes run on beyond krt.yml (custom images' bases, declared requirements), read
        from the bundle's ``images/*/Dockerfile`` and ``requirements.txt`` files by default."""
        parsed = self.parsed
        problems = [*self._manifest_clashes(), *self.problems]
        if isinstance(parsed, YamlSyntaxError):
            present = self.manifest_name in self.files
            # no quote for a syntax error: the text is PyYAML's, and KRE's yaml.v2 words it
            # otherwise; KRE reads a nested krt.yml too, so only a bundle with none is refused
            finding = Finding(
                ERROR,
                parsed.code if present else "bundle.no_manifest",
                (
                    f"{self.manifest_name} is not valid YAML: {parsed.message}"
                    if parsed.code == "yaml.syntax"
                    else parsed.message
                )
                if present
                else (f"{self.origin} has no krt.yml (or krt.yaml) at its root"),
                (),
                self.manifest_name,
                parsed.line,
                hint=(
                    "write the values out; keep anchors for small repeated parts, such as "
                    "a node's image"
                    if parsed.code == "yaml.too_large"
                    else None
                ),
                kre=(
                    "KRE 7: error on KRT Yaml extraction: error krt.yml file missing"
                    if not present and krt_yml_member(self.files) is None
                    else None
                ),
            )
            return Report.of([finding, *problems], self.origin)
        if envs is None:
            from krtlab.bundle.images import envs_from_files

            envs = envs_from_files(self.files, self.manifest)
        report = validate(
            parsed,
            manifest_file=self.manifest_name,
            files=self.file_facts(),
            proto=self.proto_facts(),
            sources=self.source_facts(),
            contracts=contracts,
            envs=envs,
            subject=self.manifest.version or self.origin,
        )
        if problems:
            report = Report.of([*report.findings, *problems], report.subject)
        return report

    def _manifest_clashes(self) -> list[Finding]:
        """Two files at the root named like krt.yml: KRE reads the first in the archive."""
        found = [p for p in self.files if "/" not in p and is_krt_yml_name(p)]
        if len(found) < 2:
            return []
        first, others = found[0], " and ".join(found[1:])
        return [
            Finding(
                ERROR,
                "bundle.two_manifests",
                f"{first} and {others} are both at the bundle root; KRE reads {first}, the first "
                f"in the archive, and ignores {others}",
                (),
                found[1],
                hint=f"keep one krt.yml: delete {others} or {first}",
            )
        ]

    # -- generated protobuf code ---------------------------------------------------------------

    def with_generated_pb2(self) -> Project:
        """A copy where every Python node folder has a ``<proto>_pb2.py`` for each root proto
        (kre-py imports them from the handler's folder). Existing files are kept."""
        compiled = self.compiled
        if isinstance(compiled, ProtoError):
            return self
        from krtlab.protos import generate_pb2

        files = dict(self.files)
        folders = sorted(
            {
                posixpath.dirname(posixpath.normpath(n.src))
                for n in self.manifest.nodes
                if n.src.endswith(".py") and n.runtime == "python"
            }
        )
        for proto in compiled.files:
            module = posixpath.basename(proto)[: -len(".proto")] + "_pb2.py"
            missing = [p for p in (posixpath.join(f, module) for f in folders) if p not in files]
            if missing:
                files.update(dict.fromkeys(missing, generate_pb2(compiled, proto).encode()))
        copy = Project(files, self.origin, self.executables, list(self.problems))
        # krt.yml and the protos are the same, so are what was read from them (all read above)
        copy.__dict__.update(parsed=self.parsed, manifest=self.manifest, compiled=compiled)
        return copy

    def summary(self) -> dict[str, Any]:
        """A plain-data description for ``krtlab inspect`` and notebooks."""
        from krtlab.bundle.inspect import summarize

        return summarize(self)


def _text(raw: bytes) -> str:
    """A file's text, as krtlab reads it: UTF-8, each undecodable byte replaced."""
    return raw.decode("utf-8", errors="replace")


def _yaml_text(raw: bytes) -> str:
    """krt.yml's text as yaml.v2 reads it: UTF-16 after its byte-order mark, else UTF-8 (a
    UTF-8 byte-order mark is skipped); anything else is refused, as libyaml refuses it."""
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    try:
        return raw.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        what, line = ("UTF-16", None) if utf16 else ("UTF-8", raw[: exc.start].count(b"\n") + 1)
        raise YamlSyntaxError(
            f"it is not {what} text (byte {exc.start}: {exc.reason}); KRE's yaml.v2 refuses it too",
            line,
        ) from None


def proto_facts_from(fileset: FileSet, proto: str) -> ProtoFacts:
    """Spec-level facts about the entrypoint proto of a compiled file set."""
    rpcs = fileset.entrypoint_rpcs(proto)
    modules: dict[str, dict[str, str]] = {}
    for name in fileset.files:
        stem = posixpath.basename(name)[: -len(".proto")]
        pkg = fileset.package(name)
        modules[f"{stem}_pb2"] = {
            full[len(pkg) + 1 :] if pkg else full: full for full in fileset.messages(name)
        }
    return ProtoFacts(
        file=proto,
        package=fileset.package(proto),
        rpcs=None
        if rpcs is None
        else {
            r.name: RpcFacts(
                r.name,
                r.input_type,
                r.output_type,
                r.line,
                bool(r.client_streaming or r.server_streaming),
            )
            for r in rpcs.values()
        },
        messages=frozenset(fileset.all_messages()),
        services=tuple(fileset.services(proto)),
        modules=modules,
    )
