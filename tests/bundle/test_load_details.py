"""Loading a project: what each kind of path gives (its files, its origin, its executables) and the
exact words of every error and container finding `load_project` reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from krtlab.bundle.load import load_project
from krtlab.errors import BundleError
from krtlab.spec.findings import ERROR, WARNING, Finding
from tests.support import tar_bytes

YML = b"version: v1\n"
HEAD = "KRE 7: error on KRT content extraction: "
REBUILD = "rebuild it with `krtlab build`"


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _krt(path: Path, entries: list[tuple[str, bytes | None]]) -> Path:
    path.write_bytes(tar_bytes(entries))
    return path


# -- folders and krt.yml paths ------------------------------------------------------------------


def test_a_folder_gives_its_files_its_path_as_origin_and_its_executables(tmp_path):
    root = _folder(tmp_path / "p", {"krt.yml": YML, "bin/run": b"#!/bin/sh\n", "a.txt": b"a"})
    os.chmod(root / "bin/run", 0o755)
    project = load_project(root)
    assert project.files == {"a.txt": b"a", "bin/run": b"#!/bin/sh\n", "krt.yml": YML}
    assert project.origin == str(root)
    assert project.executables == frozenset({"bin/run"})
    assert project.problems == []


def test_a_krt_yml_path_is_the_origin_of_its_folder(tmp_path):
    root = _folder(tmp_path / "p", {"krt.yml": YML, "x.txt": b"x"})
    project = load_project(root / "krt.yml")
    assert project.origin == str(root / "krt.yml")
    assert project.files == {"krt.yml": YML, "x.txt": b"x"}
    assert project.problems == []


def test_a_yaml_under_another_name_is_read_as_the_krt_yml_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"krt.yml": b"old\n", "kre.yaml": YML, "x.txt": b"x"})
    project = load_project(root / "kre.yaml")
    assert project.origin == str(root / "kre.yaml")
    assert project.files == {"x.txt": b"x", "krt.yml": YML}
    assert project.problems == [
        Finding(
            WARNING,
            "bundle.manifest_name",
            "kre.yaml is read as the version's krt.yml; KRE looks for krt.yml (or krt.yaml) at "
            "the archive root, so krtlab build writes it there under that name",
            file="kre.yaml",
        )
    ]


def test_a_folder_without_a_root_krt_yml_names_up_to_three_nested_ones(tmp_path):
    nested = {f"{d}/krt.yml": YML for d in ("d", "b", "a/deep")} | {"c/krt.yaml": YML}
    root = _folder(tmp_path / "p", nested)
    with pytest.raises(BundleError) as info:
        load_project(root)
    assert str(info.value) == (
        f"{root} has no krt.yml at its root; found a/deep/krt.yml, b/krt.yml, c/krt.yaml: "
        "load that folder instead"
    )
    bare = _folder(tmp_path / "bare", {"readme.txt": b"r"})
    with pytest.raises(BundleError) as info:
        load_project(bare)
    assert str(info.value) == f"{bare} has no krt.yml at its root"


def test_a_missing_path_is_an_error(tmp_path):
    with pytest.raises(BundleError) as info:
        load_project(tmp_path / "nope")
    assert str(info.value) == (
        f"{tmp_path / 'nope'} does not exist (expected a project folder, a krt.yml or a .krt)"
    )


def _unreadable(monkeypatch, bad: Path) -> None:
    read_bytes = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self == bad:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)


def test_a_file_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    root = _folder(tmp_path / "p", {"krt.yml": YML, "secret.bin": b"s"})
    _unreadable(monkeypatch, root / "secret.bin")
    with pytest.raises(BundleError) as info:
        load_project(root)
    assert str(info.value) == f"cannot read {root / 'secret.bin'}: Permission denied"


def test_a_manifest_under_another_name_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    # left out of the files by .krtignore, so only its own reading fails
    root = _folder(tmp_path / "p", {"kre.yaml": YML, ".krtignore": b"kre.yaml\n"})
    _unreadable(monkeypatch, root / "kre.yaml")
    with pytest.raises(BundleError) as info:
        load_project(root / "kre.yaml")
    assert str(info.value) == f"cannot read {root / 'kre.yaml'}: Permission denied"


# -- archives ------------------------------------------------------------------------------------


def test_an_archive_gives_its_files_and_its_path_as_origin(tmp_path):
    krt = _krt(tmp_path / "v.krt", [("krt.yml", YML), ("a/", None), ("a/b.txt", b"b")])
    project = load_project(krt)
    assert project.files == {"krt.yml": YML, "a/b.txt": b"b"}
    assert project.origin == str(krt)
    assert project.problems == []


def test_an_archive_without_krt_yml_is_an_error(tmp_path):
    krt = _krt(tmp_path / "v.krt", [("a.txt", b"a")])
    with pytest.raises(BundleError) as info:
        load_project(krt)
    assert str(info.value) == f"{krt} holds no krt.yml"


def test_a_nested_krt_yml_first_is_what_kre_takes(tmp_path):
    krt = _krt(tmp_path / "v.krt", [("d/", None), ("d/krt.yml", YML), ("krt.yml", YML)])
    where = "/tmp/version<random>/d/krt.yml"
    assert load_project(krt).problems == [
        Finding(
            ERROR,
            "bundle.nested_manifest_first",
            "KRE takes 'd/krt.yml', the first entry named like krt.yml in the archive, for the "
            "krt.yml, not the root krt.yml krtlab validates (and fails to unpack it: its folder "
            "does not exist yet)",
            file="d/krt.yml",
            hint="rename or remove d/krt.yml, or rebuild with `krtlab build` (it writes the root "
            "krt.yml first)",
            kre=f"KRE 7: error on KRT Yaml extraction: error creating krt file {where}: open "
            f"{where}: no such file or directory",
        )
    ]


def test_a_krt_yml_only_in_a_folder_is_not_at_the_root(tmp_path):
    krt = _krt(tmp_path / "v.krt", [("p/", None), ("p/krt.yml", YML)])
    where = "/tmp/version<random>/p/krt.yml"
    assert load_project(krt).problems == [
        Finding(
            ERROR,
            "bundle.manifest_not_at_root",
            "krt.yml is at 'p/krt.yml', not at the archive root: KRE unpacks it before any "
            "folder, so it fails, and it would resolve every src path from the root",
            file="p/krt.yml",
            hint="pack the files of the project folder, not the folder (krtlab build does)",
            kre=f"KRE 7: error on KRT Yaml extraction: error creating krt file {where}: open "
            f"{where}: no such file or directory",
        )
    ]


@pytest.mark.parametrize(
    ("folders", "shown"),
    [(["a", "b", "c"], "a, b, c"), (["a", "b", "c", "d"], "a, b, c ...")],
)
def test_missing_folder_entries_name_three_folders(tmp_path, folders, shown):
    entries = [("krt.yml", YML), *((f"{d}/x.txt", b"x") for d in folders)]
    krt = _krt(tmp_path / "v.krt", entries)
    where = "/tmp/version<random>/a/x.txt"
    assert load_project(krt).problems == [
        Finding(
            ERROR,
            "bundle.no_dir_entries",
            f"the archive has no entries for folders {shown}; KRE creates folders only from "
            "their own entries, so extracting fails",
            file=str(krt),
            hint=REBUILD,
            kre=f"{HEAD}error creating krt file {where}: open {where}: no such file or directory",
        )
    ]


def test_a_folder_made_twice_is_reported(tmp_path):
    entries = [("krt.yml", YML), ("a/", None), ("a/", None), ("a/x.txt", b"x")]
    krt = _krt(tmp_path / "v.krt", entries)
    where = "/tmp/version<random>/a"
    assert load_project(krt).problems == [
        Finding(
            ERROR,
            "bundle.repeated_dir_entries",
            "the archive creates folder 'a' twice (e.g. a './' entry from `tar -C dir .`); "
            "KRE's extractor fails when a folder already exists",
            file=str(krt),
            hint=REBUILD,
            kre=f"{HEAD}error creating krt dir {where}: mkdir {where}: file exists",
        )
    ]
