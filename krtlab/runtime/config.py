"""A node's environment in local runs: config values, the bundle files and its handler.

KRE gives every node its config values as environment variables, the unpacked bundle at
``KRT_BASE_PATH`` and loads ``KRT_HANDLER_PATH`` from it; this module does the same locally.

A version declares ``config.variables`` and ``config.files`` in krt.yml; on KRE their values are
set later (UI, API or ``kli``) and every node gets them as environment variables, a FILE's value
being the file content. Locally the values come from, in increasing priority:

1. a ``.env`` file in the project folder of a loaded version (next to krt.yml or the .krt),
2. a ``.env`` file in the working directory,
3. the process environment,
4. ``v.config(KEY="value")``.

For a ``config.files`` key, a value naming an existing file (relative to the ``.env`` that gave
it, or the working directory) is replaced by that file's content; any other value is the
content itself. Values are never written into the bundle. Only declared keys are delivered (KRE
refuses unknown keys). A declared key without a value is a warning, not an error: KRE would
refuse to start a version whose config is incomplete, but a local run can still be useful.

``.env`` syntax: ``KEY=VALUE`` lines, optional ``export``, ``#`` comments (whole lines, or after
an unquoted value), single- or double-quoted values (double quotes understand ``\\n``, ``\\"``
and ``\\\\``, and may span lines).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

__all__ = [
    "ResolvedConfig",
    "apply_env",
    "import_handler",
    "parse_assignments",
    "parse_env_file",
    "pb2_modules",
    "project_dir",
    "resolve_config",
    "restore_env",
    "write_bundle",
]

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_CACHE: dict[Path, tuple[tuple[int, int], dict[str, str]]] = {}


class ResolvedConfig(dict[str, str]):
    """Config values by key, plus where each came from and which declared keys have none.

    Attributes:
        sources: key → ``"v.config"``, ``"environment"`` or the ``.env`` path.
        missing: declared keys without a value.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, str] = {}
        self.missing: list[str] = []

    def warnings(self, version: str) -> list[str]:
        """One readable warning per missing key."""
        return [
            f"{version}: config {key} has no value (give it with v.config({key}=...), a .env "
            "file or the environment); KRE would not start the version with incomplete config"
            for key in self.missing
        ]


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, str]:
    """``["K=V", ...]`` from the command line → ``{"K": "V"}`` (SpecError naming ``option``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from krtlab.errors import SpecError

            raise SpecError(f"{option} wants KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def parse_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs of a ``.env`` file ({} when there is none); cached until it changes."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return {}
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(p)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    values = dict(_pairs(text))
    _CACHE[p] = (stamp, values)
    return values


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _LINE.fullmatch(line)
        if m is None or line.lstrip().startswith("#"):
            continue
        key, raw = m.group(1), m.group(2).strip()
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            body = raw[1:]
            while _closing(body, quote) < 0 and i < len(lines):  # a value spanning lines
                body += "\n" + lines[i]
                i += 1
            end = _closing(body, quote)
            body = body[:end] if end >= 0 else body
            yield key, _unescape(body) if quote == '"' else body
        else:
            yield key, re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _closing(body: str, quote: str) -> int:
    j = 0
    while j < len(body):
        if body[j] == "\\" and quote == '"':
            j += 2
            continue
        if body[j] == quote:
            return j
        j += 1
    return -1


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def project_dir(version: Version) -> Path | None:
    """The folder a loaded version came from (the .krt's folder for an archive), else None."""
    base = version._base
    if base is None or not base.origin or base.origin.startswith("<"):
        return None
    p = Path(base.origin)
    return p if p.is_dir() else p.parent


def resolve_config(
    version: Version, *, cwd: str | os.PathLike[str] | None = None
) -> ResolvedConfig:
    """Values for the version's declared config keys (see the module docstring for the order).

    Args:
        version: an authored or loaded version.
        cwd: the working directory whose ``.env`` counts (default: the current one).
    """
    # runs call this every time: plain strings and lazily read .env files keep it cheap
    here = os.fspath(cwd) if cwd is not None else os.getcwd()
    layers: list[tuple[str, str, Any]] = [
        ("v.config", here, version._values),
        ("environment", here, os.environ),
    ]
    project = _project_folder(version)
    for folder in [here] if project is None or project == here else [here, project]:
        path = os.path.join(folder, ".env")
        layers.append((path, folder, lambda p=path: parse_env_file(p)))
    out = ResolvedConfig()
    files = version._files
    for key in dict.fromkeys([*version._variables, *files]):
        for i, (source, folder, values) in enumerate(layers):
            if callable(values):  # a .env file, read only when a value is still missing
                values = values()
                layers[i] = (source, folder, values)
            value = values.get(key)
            if value is not None:
                out[key] = _file_content(value, folder) if key in files else value
                out.sources[key] = source
                break
        else:
            out.missing.append(key)
    return out


_FOLDERS: dict[str, str | None] = {}


def _project_folder(version: Version) -> str | None:
    origin = version._base.origin if version._base is not None else ""
    if origin not in _FOLDERS:
        folder = project_dir(version)
        _FOLDERS[origin] = str(folder.absolute()) if folder is not None else None
    return _FOLDERS[origin]


def _file_content(value: str, folder: str) -> str:
    if "\n" in value or not value or len(value) > 4096:
        return value
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = Path(folder) / candidate
    try:
        return candidate.read_text(encoding="utf-8") if candidate.is_file() else value
    except (OSError, ValueError):
        return value


def apply_env(values: dict[str, str]) -> dict[str, str | None]:
    """Set the values in ``os.environ`` for a run; returns what :func:`restore_env` needs."""
    saved: dict[str, str | None] = {}
    environ = os.environ
    for key, value in values.items():
        old = environ.get(key)
        if old != value:
            saved[key] = old
            environ[key] = value
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    """Put back what :func:`apply_env` changed."""
    for key, old in saved.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


# -- the bundle at KRT_BASE_PATH and the handler at KRT_HANDLER_PATH ---------------------------


def write_bundle(version: Version, root: Path) -> None:
    """Write the version's bundle under ``root`` as KRE unpacks it (``ctx.path`` points there),
    rewriting only files whose content changed and removing ones it wrote before."""
    from krtlab.bundle.fsutil import atomic_write
    from krtlab.errors import KrtlabError

    files: dict[str, bytes] = dict(version._base.files) if version._base is not None else {}
    executables: frozenset[str] = frozenset()
    if any(n.func is None for n in version._nodes.values()):  # loaded nodes need their src
        try:  # the whole bundle, generated _pb2.py files included
            project = version.project()
            files, executables = dict(project.files), project.executables
        except KrtlabError:
            files.update((n.src, n.source) for n in version._nodes.values() if n.source)
    files.update(version._assets)
    root = root.absolute()
    record = root / ".krtlab-run"
    old = set(record.read_text().split("\n")) if record.is_file() else set()
    for rel, data in files.items():
        target = (root / rel).absolute()
        if root not in target.parents:
            continue  # never outside the bundle folder
        if not (target.is_file() and target.read_bytes() == data):
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data, mode=0o755 if rel in executables else 0o644)
    for rel in old - set(files) - {""}:
        (root / rel).unlink(missing_ok=True)
    if files or old:
        atomic_write(record, "\n".join(sorted(files)).encode())


def pb2_modules(version: Version) -> dict[str, object]:
    """``{"public_input_pb2": <module-like namespace>, ...}``: the version's own classes."""
    from krtlab.protos._names import module_stem

    fileset = version._protos.fileset
    files = fileset.files if fileset is not None else ()
    return {module_stem(name): version._protos.module(name) for name in files}


def import_handler(path: Path, root: Path, modules: dict[str, object]) -> ModuleType:
    """Import a node's ``main.py`` as kre-py does (``spec_from_file_location("worker", ...)``,
    its folder appended to ``sys.path``), with ``<proto>_pb2`` imports resolving to ``modules``
    and other protoc 3.x ``_pb2.py`` files under ``root`` replaced by compatible modules (see
    :mod:`krtlab.runtime.legacy_pb2`).

    ``sys.path`` and ``sys.modules`` are put back afterwards (helpers imported from the node's
    folder included), so two versions never see each other's classes or helpers.
    """
    import importlib.util

    from .legacy_pb2 import install

    folder = str(path.parent)
    saved = {name: sys.modules.get(name) for name in modules}
    before = set(sys.modules)
    sys.modules.update(modules)  # type: ignore[arg-type]
    sys.path.append(folder)
    importlib.invalidate_caches()  # files may have just been written
    finder = install(root)
    try:
        spec = importlib.util.spec_from_file_location("worker", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
        for i in range(len(sys.path) - 1, -1, -1):
            if sys.path[i] == folder:
                del sys.path[i]
                break
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
        prefix = str(root.absolute()) + os.sep
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(prefix):
                del sys.modules[name]
