"""Local modules travel with the node: where an imported module comes from, and the files of the
ones that must be shipped in ``src/<node>/``.

A module is *local* when it is neither the standard library nor part of an installed
distribution: a ``utils.py`` or a package beside the notebook or script (or anywhere else on
``sys.path`` that no installer put it). The runner has none of them, so the node's folder gets a
copy of each, and of the local modules those import in turn.
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from krtlab.errors import CaptureError

__all__ = ["MAX_LOCAL_BYTES", "local_files", "module_origin"]

#: a local package bigger than this is refused: data belongs in assets, read with ctx.path()
MAX_LOCAL_BYTES = 20 * 1024 * 1024
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git", ".venv", "node_modules"}


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    import importlib.metadata

    return dict(importlib.metadata.packages_distributions())


@functools.lru_cache(maxsize=1)
def _install_dirs() -> tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    try:
        dirs.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # virtualenv's old site.py
        pass
    user = getattr(site, "getusersitepackages", lambda: "")()
    if user:
        dirs.add(os.path.realpath(user))
    return tuple(sorted(dirs))


def _spec(top: str) -> importlib.machinery.ModuleSpec | None:
    module = sys.modules.get(top)
    spec = getattr(module, "__spec__", None) if module is not None else None
    if spec is not None:
        return spec
    try:
        return importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None


def module_origin(name: str) -> str:
    """Where the top-level package of module ``name`` comes from: ``"stdlib"``, ``"installed"``
    (a distribution), ``"local"`` (a file or folder of the user's) or ``"missing"``."""
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "__future__":
        return "stdlib"
    if top in _distributions():
        return "installed"
    spec = _spec(top)
    if spec is None:
        return "missing"
    origin = spec.origin if spec.has_location else None
    paths = [origin] if origin else list(spec.submodule_search_locations or ())
    if not paths:
        return "stdlib"  # built-in or frozen
    real = [os.path.realpath(p) for p in paths]
    if all(any(r.startswith(d + os.sep) for d in _install_dirs()) for r in real):
        return "installed"
    return "local"


def _root_of(top: str) -> tuple[Path, bool]:
    """(the module's file, or its package folder; whether it is a package)."""
    spec = _spec(top)
    if spec is None:
        raise CaptureError(f"local module {top!r} cannot be found any more", name=top)
    if spec.submodule_search_locations:
        folders = list(spec.submodule_search_locations)
        if len(folders) != 1:
            raise CaptureError(
                f"local package {top!r} is spread over several folders ({', '.join(folders)}); "
                "krtlab copies one folder into the node",
                name=top,
            )
        return Path(folders[0]), True
    if not spec.origin or not spec.origin.endswith(".py"):
        raise CaptureError(
            f"local module {top!r} is not a .py file ({spec.origin}); the runner cannot import "
            "a compiled module built here",
            name=top,
        )
    return Path(spec.origin), False


def _package_files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                found.append(Path(dirpath) / name)
    return found


def _imports(text: str) -> set[str]:
    """Top-level names of the absolute imports in a module's source."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def local_files(modules: Iterable[str], *, node: str = "") -> dict[str, bytes]:
    """The files of local modules ``modules`` and of the local modules they import, keyed by
    their path inside the node folder (``textutils.py``, ``helpers/__init__.py``).

    Raises:
        CaptureError: a module is not a ``.py`` file, is spread over folders, or the files
            exceed :data:`MAX_LOCAL_BYTES`.
    """
    files: dict[str, bytes] = {}
    todo = sorted({m.split(".")[0] for m in modules})
    done: set[str] = set()
    total = 0
    while todo:
        top = todo.pop()
        if top in done:
            continue
        done.add(top)
        root, package = _root_of(top)
        paths = _package_files(root) if package else [root]
        for path in paths:
            rel = (Path(top) / path.relative_to(root)).as_posix() if package else f"{top}.py"
            data = path.read_bytes()
            total += len(data)
            files[rel] = data
            if path.suffix == ".py":
                text = data.decode("utf-8", errors="replace")
                todo += [
                    m
                    for m in _imports(text) - done
                    if not m.endswith("_pb2") and module_origin(m) == "local"
                ]  # generated *_pb2 files: krtlab writes the node's own
        if total > MAX_LOCAL_BYTES:
            raise CaptureError(
                f"node {node!r}: the local modules it imports ({', '.join(sorted(done))}) hold "
                f"{total / 1e6:.0f} MB; ship data as an asset (v.asset) and read it with "
                "ctx.path() in init(ctx)",
                node=node,
                name=top,
            )
    return files
