"""Reading a project from a folder, a ``krt.yml`` path or a ``.krt`` archive."""

from __future__ import annotations

import os
from pathlib import Path

from krtlab.errors import BundleError
from krtlab.spec.findings import ERROR, WARNING, Finding

from .project import MANIFEST_NAMES, Project

__all__ = ["load_project"]


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project folder, a ``krt.yml``/``krt.yaml`` file (or any YAML file, read as the
    version's krt.yml: ``kre.yaml``, ``krt-prod.yml``), or a ``.krt`` archive.

    Raises:
        BundleError: the path does not exist or is not a project (UnsafeArchiveError for
            archives krtlab refuses to unpack). Content problems are not raised here: they are
            findings of :meth:`Project.validate`.
    """
    p = Path(path)
    if not p.exists():
        raise BundleError(f"{p} does not exist (expected a project folder, a krt.yml or a .krt)")
    if p.is_dir():
        return _from_dir(p)
    if p.name in MANIFEST_NAMES:
        return _from_dir(p.parent, label=str(p))
    if p.suffix.lower() in (".yml", ".yaml"):  # a krt.yml under another name, as kli reads it
        return _from_dir(p.parent, label=str(p), manifest=p.name)
    return _from_archive(p)


def _from_dir(root: Path, label: str | None = None, manifest: str | None = None) -> Project:
    from .ignore import collect_files

    if manifest is None and not any((root / n).is_file() for n in MANIFEST_NAMES):
        nested = sorted(
            str(q.relative_to(root)) for n in MANIFEST_NAMES for q in root.glob(f"*/**/{n}")
        )[:3]
        hint = f"; found {', '.join(nested)}: load that folder instead" if nested else ""
        raise BundleError(f"{root} has no krt.yml at its root{hint}")
    files: dict[str, bytes] = {}
    executables = set()
    for rel in collect_files(root):  # its .krtignore and the default excludes
        full = root / rel
        try:
            files[rel] = full.read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read {full}: {exc.strerror or exc}") from None
        if os.access(full, os.X_OK):
            executables.add(rel)
    problems: list[Finding] = []
    if manifest is not None:
        try:
            data = (root / manifest).read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read {root / manifest}: {exc.strerror or exc}") from None
        for name in (manifest, *MANIFEST_NAMES):
            files.pop(name, None)
        files["krt.yml"] = data
        problems.append(
            Finding(
                WARNING,
                "bundle.manifest_name",
                f"{manifest} is read as the version's krt.yml; KRE looks for krt.yml (or "
                "krt.yaml) at the archive root, so krtlab build writes it there under that name",
                file=manifest,
            )
        )
    return Project(files, label or str(root), frozenset(executables), problems)


def _from_archive(path: Path) -> Project:
    from .archive import (
        MAX_KRT_BYTES,
        MAX_MEMBERS,
        MAX_UNPACKED_BYTES,
        _kre_texts,
        _mkdir_replay,
        _scan,
        krt_yml_member,
        krt_yml_unpack_error,
    )

    # one pass over the archive for its files and for how KRE's extractor fares with it
    scan = _scan(path, (MAX_KRT_BYTES, MAX_UNPACKED_BYTES, MAX_MEMBERS), with_data=True)
    replay = _mkdir_replay(scan)
    members = scan.files
    files = {name: m.data for name, m in members.items()}
    executables = frozenset(name for name, m in members.items() if m.executable)
    problems: list[Finding] = []
    # KRE reads the first entry named like krt.yml; krtlab reads the first at the root (src paths
    # resolve from there): where the two differ, say so
    kre_pick, root_pick = krt_yml_member(members), krt_yml_member(members, root_only=True)
    if kre_pick is None:
        raise BundleError(
            f"{path} holds no krt.yml",
        )
    if kre_pick != root_pick:
        # names are normalized, so KRE's pick is below the root here, and KRE fails to unpack
        # it: it writes the krt.yml before any folder exists
        kre = f"KRE 7: error on KRT Yaml extraction: {krt_yml_unpack_error(kre_pick)}"
        if root_pick is not None:
            finding = Finding(
                ERROR,
                "bundle.nested_manifest_first",
                f"KRE takes {kre_pick!r}, the first entry named like krt.yml in the archive, for "
                f"the krt.yml, not the root {root_pick} krtlab validates (and fails to unpack "
                "it: its folder does not exist yet)",
                file=kre_pick,
                hint=f"rename or remove {kre_pick}, or rebuild with `krtlab build` (it writes "
                "the root krt.yml first)",
                kre=kre,
            )
        else:
            finding = Finding(
                ERROR,
                "bundle.manifest_not_at_root",
                f"krt.yml is at {kre_pick!r}, not at the archive root: KRE unpacks it before "
                "any folder, so it fails, and it would resolve every src path from the root",
                file=kre_pick,
                hint="pack the files of the project folder, not the folder (krtlab build does)",
                kre=kre,
            )
        problems.append(finding)
    missing, repeated = sorted(replay[0]), sorted(replay[1])
    orphan_kre, repeated_kre = _kre_texts(replay)
    if missing:
        problems.append(
            Finding(
                ERROR,
                "bundle.no_dir_entries",
                f"the archive has no entries for folders {', '.join(missing[:3])}"
                + (" ..." if len(missing) > 3 else "")
                + "; KRE creates folders only from their own entries, so extracting fails",
                file=str(path),
                hint="rebuild it with `krtlab build`",
                kre=orphan_kre,
            )
        )
    if repeated:
        problems.append(
            Finding(
                ERROR,
                "bundle.repeated_dir_entries",
                f"the archive creates folder {repeated[0]!r} twice (e.g. a './' entry from "
                "`tar -C dir .`); KRE's extractor fails when a folder already exists",
                file=str(path),
                hint="rebuild it with `krtlab build`",
                kre=repeated_kre,
            )
        )
    return Project(files, str(path), executables, problems)
