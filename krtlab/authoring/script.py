"""Versions defined by Python code: a script run as a module, or a notebook's namespace.

``krt.load("templates/price_estimator.py")`` (and every CLI command taking a PATH) runs the
script and takes the one :class:`~krtlab.Version` it defines, so an authored version can be
validated, built and served like a bundle. Notebook export picks versions the same way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from krtlab.errors import BundleError, SpecError
from krtlab.spec.suggest import did_you_mean

from .version import Version

__all__ = ["pick_version", "run_script", "version_from_script", "versions_in"]


def run_script(path: str | os.PathLike[str], module_name: str | None = None) -> ModuleType:
    """Run a Python file as a module registered in ``sys.modules`` (source capture reads the
    node functions from it) and return the module.

    Raises:
        BundleError: the file is missing; any exception of the script itself propagates.
    """
    file = Path(path)
    if not file.is_file():
        raise BundleError(f"{file} does not exist")
    name = module_name or f"krtlab_script_{file.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise BundleError(f"{file} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # like `python script.py`: the script's folder comes first, so `import utils` beside it works
    folder = str(file.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        if added and folder in sys.path:
            sys.path.remove(folder)
        raise
    return module


def version_from_script(path: str | os.PathLike[str], wanted: str | None = None) -> Version:
    """The Version a Python script defines (``wanted`` picks one by variable or version name)."""
    module = run_script(path)
    return pick_version(vars(module), wanted, source=str(path))[1]


def versions_in(namespace: Mapping[str, Any]) -> dict[str, Version]:
    """The :class:`~krtlab.Version` objects of a notebook namespace, by variable name.

    IPython's own names (``_``, ``_3``, ``Out``...) and private names are left out.
    """
    from krtlab.authoring.version import Version

    return {
        name: value
        for name, value in namespace.items()
        if isinstance(value, Version) and not name.startswith("_") and name not in ("In", "Out")
    }


def pick_version(
    namespace: Mapping[str, Any], wanted: str | None = None, *, source: str = "the notebook"
) -> tuple[str, Version]:
    """The version a notebook (or script) defines: ``(variable, version)``.

    ``wanted`` picks by variable or version name. Otherwise the single Version wins; versions
    loaded from a bundle (``krt.load``) are set aside when exactly one authored version remains,
    since reading a bundle back is not defining one.

    Raises:
        SpecError: none, several (named, with ``--version`` to choose), or ``wanted`` unknown.
    """
    found = versions_in(namespace)
    groups: dict[int, list[str]] = {}
    for name, v in found.items():
        groups.setdefault(id(v), []).append(name)
    label = {i: f"{' = '.join(names)} ({found[names[0]].name})" for i, names in groups.items()}
    if wanted:
        for name, v in found.items():
            if wanted in (name, v.name):
                return name, v
        hint = did_you_mean(wanted, [*found, *(v.name for v in found.values())])
        listed = "; ".join(label.values()) or "none"
        hint = f"; {hint}" if hint else ""
        raise SpecError(f"no Version {wanted!r} in {source} (Versions: {listed}){hint}")
    if not groups:
        raise SpecError(
            f"{source} defines no krtlab Version (v = krt.Version(...)); nothing to export"
        )
    if len(groups) > 1:
        authored = [i for i, names in groups.items() if not _loaded(found[names[0]])]
        if len(authored) != 1:
            listed = "; ".join(label.values())
            raise SpecError(
                f"{source} defines {len(groups)} versions: {listed}; choose one with "
                "--version NAME (a variable or version name)"
            )
        groups = {authored[0]: groups[authored[0]]}
    names = next(iter(groups.values()))
    return names[0], found[names[0]]


def _loaded(v: Version) -> bool:
    # krt.load() keeps the bundle it read; authored versions have none.
    return getattr(v, "_base", None) is not None
