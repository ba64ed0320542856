"""What the validator is told about a project beyond krt.yml: files, the proto, node contracts.

The spec layer never reads files or compiles protos itself; :mod:`krtlab.bundle` gathers these
facts and hands them over, which keeps validation pure and easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FileFacts", "NodeContract", "ProtoFacts", "RpcFacts", "SourceFacts"]


@dataclass(frozen=True, slots=True)
class FileFacts:
    """A path inside the project: its kind, size and first bytes (for binary checks)."""

    kind: Literal["file", "dir", "link", "other"]
    size: int = 0
    head: bytes = b""


@dataclass(frozen=True, slots=True)
class RpcFacts:
    """One rpc of ``service Entrypoint`` (type names are full names without a leading dot)."""

    name: str
    input: str
    output: str
    line: int | None = None
    streaming: bool = False


@dataclass(frozen=True, slots=True)
class ProtoFacts:
    """What compiling the entrypoint proto (and its siblings) showed.

    ``issues`` holds compile errors as ``(file, line, column, message)``; ``rpcs`` is None when the
    file has no ``service Entrypoint``; ``modules`` maps a generated module name
    (``public_input_pb2``) to its messages' short → full names, used to resolve node imports.
    """

    file: str
    issues: tuple[tuple[str, int | None, int | None, str], ...] = ()
    package: str = ""
    rpcs: dict[str, RpcFacts] | None = None
    messages: frozenset[str] = frozenset()
    services: tuple[str, ...] = ()
    modules: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeContract:
    """The message types a node takes and returns.

    ``origin`` says how they are known: ``"hints"`` (an authored function's type hints),
    ``"declared"`` (given explicitly, e.g. for Go nodes) or ``"inferred"`` (read from a
    hand-written ``main.py``: ``data.Unpack(Request())`` / ``return Response(...)``).
    """

    input: str | None
    output: str | None
    origin: Literal["hints", "declared", "inferred"] = "hints"
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What a Python node's source shows (see :mod:`krtlab.spec.pysource`)."""

    syntax_error: tuple[int | None, str] | None = None
    handler_line: int | None = None
    handler_async: bool = False
    handler_params: int = 0
    init_params: int | None = None
    imports: tuple[tuple[str, int], ...] = ()  # (top-level module, line) of each import
    # lines of the imports that always fail when their code runs and the module is missing
    # (not guarded by try/except ImportError or `if TYPE_CHECKING:`)
    certain_imports: frozenset[int] = frozenset()
    input_ref: tuple[str, str] | None = None  # (module, Name) unpacked into
    output_ref: tuple[str, str] | None = None  # (module, Name) returned
    output_line: int | None = None
    # ctx.<member> uses: (member, line), on params named ctx/context and handler/init's first
    ctx_uses: tuple[tuple[str, int], ...] = ()
    text: str = field(default="", repr=False, compare=False)  # the source, for Python checks


@dataclass(frozen=True, slots=True)
class NodeEnv:
    """What a node runs on beyond its krt.yml entry (from the authored version or the bundle).

    Attributes:
        base: the stock ``konstellation/kre-py:<tag>`` image the node's (custom) image is built
            ``FROM``; None when the image itself is stock, or unknown.
        requirements: the distributions the node declares (``lightgbm==4.5.0``), installed in
            its custom image.
        provides: the import names those distributions give (``lightgbm``).
        installed: (import name, distribution, version) of the packages the node's code imports,
            as installed where the version is authored (``("pandas", "pandas", "2.2.3")``).
    """

    base: str | None = None
    requirements: tuple[str, ...] = ()
    provides: frozenset[str] = frozenset()
    installed: tuple[tuple[str, str, str], ...] = ()
