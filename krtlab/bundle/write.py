"""Writing a project as a folder or a ``.krt``, without ever losing the user's work.

Folders carry a ``.krtlab`` record (sha256 of every file krtlab wrote). A re-export may replace a
file only if it is unchanged since krtlab wrote it; anything edited or created by hand stops the
export with an :class:`~krtlab.errors.OverwriteError` listing the files, unless
``overwrite=True``. A ``.krt`` is written atomically and replaces an existing file only when that
file is a build of the same version.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from pathlib import Path

from krtlab.errors import BundleError, KrtlabError, OverwriteError

from .project import Project

__all__ = ["MARKER", "build_krt", "export_dir"]

MARKER = ".krtlab"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_dir(project: Project, dest: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write every file of ``project`` under ``dest`` (created if needed)."""
    from .fsutil import atomic_write

    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise BundleError(f"{root} exists and is not a folder")
    marker = root / MARKER
    recorded = _recorded(marker)
    conflicts: list[str] = []
    for rel, data in project.files.items():
        target = root / rel
        if target.is_dir():  # a folder, or a link to one, where a file goes
            conflicts.append(rel)
        elif target.exists():
            current = target.read_bytes()
            if current != data and recorded.get(rel) != _sha(current):
                conflicts.append(rel)
    stale = [rel for rel in recorded if rel not in project.files and (root / rel).is_file()]
    for rel in stale:
        if _sha((root / rel).read_bytes()) != recorded[rel]:
            conflicts.append(rel)
    if conflicts and not overwrite:
        listed = "\n".join(f"  {c}" for c in sorted(conflicts)[:20])
        raise OverwriteError(
            f"not exporting to {root}: these files were written or edited by hand and would be "
            f"replaced:\n{listed}\nmove them away, export elsewhere, or pass overwrite=True "
            "(CLI: --force)",
            sorted(conflicts),
        )
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in sorted(project.files.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and target.read_bytes() == data):
            atomic_write(target, data, mode=0o755 if rel in project.executables else 0o644)
    for rel in stale:
        (root / rel).unlink(missing_ok=True)
    record = {"files": {rel: _sha(d) for rel, d in sorted(project.files.items())}}
    atomic_write(marker, (json.dumps(record, indent=1) + "\n").encode())
    return root


def _recorded(marker: Path) -> dict[str, str]:
    """The files krtlab wrote into the folder last time (path -> sha256), from its ``.krtlab``:
    none when it is missing or unreadable, and only paths inside the folder (a record naming
    ``../x`` or ``/x`` must not make an export delete files elsewhere)."""
    try:
        files = json.loads(marker.read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {
        rel: sha
        for rel, sha in files.items()
        if posixpath.normpath(rel) == rel
        and not rel.startswith("/")
        and rel.partition("/")[0] != ".."
    }


def build_krt(project: Project, dest: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Pack ``project`` as a reproducible ``.krt`` at ``dest`` (atomically)."""
    from .archive import Member, write_krt

    path = Path(dest)
    if path.exists() and not overwrite:
        if path.is_dir():
            raise OverwriteError(f"{path} is a folder; give a .krt file name", [str(path)])
        if not _is_build_of(path, project.manifest.version):
            raise OverwriteError(
                f"{path} exists and is not a build of {project.manifest.version!r}; not replacing "
                "it (pass overwrite=True, CLI: --force)",
                [str(path)],
            )
    members = {
        rel: Member(rel, data, rel in project.executables) for rel, data in project.files.items()
    }
    return write_krt(members, path)


def _is_build_of(path: Path, version: str) -> bool:
    from .load import load_project

    try:
        return bool(version) and load_project(path).manifest.version == version
    except KrtlabError:
        return False
