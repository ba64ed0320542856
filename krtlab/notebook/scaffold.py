"""``krtlab new KIND DIR``: a starter notebook plus its project, from ``templates/``.

A starter is a notebook from ``templates/notebooks/`` that authors a version in cells (the proto
in a ``%%krt_proto`` cell, nodes as functions, workflows as lists) and exports it into
``DIR/project/`` and ``DIR/<version>.krt``, plus the input files it reads (the price-estimator's
model weights). After writing them, :func:`new_project` runs the notebook headlessly, as
``krtlab export`` does, so ``DIR/project/`` holds exactly what the notebook exports and the
starter is known to work on this machine.

Templates are looked up in ``$KRTLAB_TEMPLATES`` when it is set (and only there), else in
``krtlab/data/templates/`` (for a wheel that ships them), then in ``templates/`` beside the
``krtlab`` package: the repository root, which is where they are for ``pip install -e .`` and a
source checkout.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krtlab.errors import BundleError, OverwriteError, SpecError
from krtlab.spec.suggest import did_you_mean

from .export import Exported, export_notebook

__all__ = ["STARTERS", "Created", "Starter", "new_project", "templates_dir"]

PROJECT_DIR = "project"


@dataclass(frozen=True)
class Starter:
    """One kind of starter.

    Attributes:
        kind: the name on the command line. notebook: the notebook under ``notebooks/``.
        inputs: files the notebook reads, relative to ``templates/`` → where they go in DIR.
        krt: the ``.krt`` its export cell builds (beside the notebook).
    """

    kind: str
    notebook: str
    inputs: tuple[tuple[str, str], ...] = ()
    krt: str = ""

    def targets(self, dest: Path) -> list[Path]:
        """The files written before the notebook runs."""
        return [dest / self.notebook, *(dest / to for _, to in self.inputs)]


STARTERS: dict[str, Starter] = {
    s.kind: s
    for s in (
        Starter("greeter", "greeter.ipynb", krt="greeter-v1.krt"),
        Starter(
            "price-estimator",
            "price-estimator.ipynb",
            inputs=(("price-estimator/models/coefficients.json", "models/coefficients.json"),),
            krt="price-estimator-v1.krt",
        ),
    )
}


@dataclass(frozen=True)
class Created:
    """What :func:`new_project` wrote: the notebook, its inputs, and the export (if run)."""

    notebook: Path
    files: tuple[Path, ...]
    exported: Exported | None = None

    def __str__(self) -> str:
        lines = [f"created {p}" for p in self.files]
        if self.exported is not None:
            lines.append(str(self.exported))
        else:
            lines.append(f"run the notebook (or krtlab export) to write {PROJECT_DIR}/")
        return "\n".join(lines)


def templates_dir() -> Path:
    """Where krtlab's templates are (see the module docstring for the search order).

    Raises:
        BundleError: none of the places holds ``notebooks/``.
    """
    import krtlab

    package = Path(krtlab.__file__).resolve().parent
    env = os.environ.get("KRTLAB_TEMPLATES")
    # an explicit choice is the only place looked at: falling back would hide a typo
    places = [Path(env)] if env else [package / "data" / "templates", package.parent / "templates"]
    for place in places:
        if (place / "notebooks").is_dir():
            return place
    looked = ", ".join(str(p) for p in places)
    raise BundleError(
        f"krtlab's templates were not found (looked in {looked}); install krtlab from its "
        "repository (pip install -e .) or set KRTLAB_TEMPLATES to a templates/ folder"
    )


def new_project(
    kind: str,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    run: bool = True,
    timeout: float = 600,
    kernel_manager: Callable[[], Any] | None = None,
) -> Created:
    """Create the ``kind`` starter in ``dest``: notebook, inputs and (``run``) the project.

    Nothing is written if any target exists (the notebook, an input, a file under
    ``dest/project/`` or the ``.krt``), unless ``overwrite``.

    Raises:
        SpecError: unknown kind (with a suggestion).
        OverwriteError: files exist (``.paths`` lists them).
        BundleError: the templates are missing, or the notebook failed to run.
    """
    starter = STARTERS.get(kind)
    if starter is None:
        hint = did_you_mean(kind, STARTERS) or f"kinds: {', '.join(STARTERS)}"
        raise SpecError(f"no starter {kind!r}; {hint}")
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise BundleError(f"{root} exists and is not a folder")
    templates = templates_dir()
    sources = [templates / "notebooks" / starter.notebook]
    sources += [templates / src for src, _ in starter.inputs]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise BundleError(f"incomplete templates in {templates}: missing {', '.join(missing)}")
    existing = _existing(starter, root)
    if existing and not overwrite:
        listed = "\n".join(f"  {p}" for p in existing[:20])
        more = f"\n  ... and {len(existing) - 20} more" if len(existing) > 20 else ""
        raise OverwriteError(
            f"not creating the {kind} starter in {root}: these files exist:\n{listed}{more}\n"
            "choose another folder or pass --force (overwrite=True) to replace them",
            existing,
        )
    written = []
    for src, target in zip(sources, starter.targets(root), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append(target)
    exported = None
    if run:
        exported = export_notebook(
            root / starter.notebook,
            root / PROJECT_DIR,
            krt=root / starter.krt,
            overwrite=overwrite,
            timeout=timeout,
            kernel_manager=kernel_manager,
        )
    return Created(root / starter.notebook, tuple(written), exported)


def _existing(starter: Starter, root: Path) -> list[str]:
    found = [p for p in starter.targets(root) if p.exists()]
    project = root / PROJECT_DIR
    if project.is_dir():
        found += sorted(p for p in project.rglob("*") if p.is_file() or p.is_symlink())
    elif project.exists():
        found.append(project)
    if (root / starter.krt).exists():
        found.append(root / starter.krt)
    return [str(p) for p in found]
