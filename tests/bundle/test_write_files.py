"""Writing a project as a folder or a .krt: what is written, what is kept, what is refused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile

import pytest

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.bundle.write import MARKER, build_krt, export_dir
from krtlab.errors import BundleError, OverwriteError

from ..conftest import EXAMPLES

FILES = {
    "krt.yml": b"version: demo-v1\n",
    "src/n/main.py": b"print(1)\n",
    "bin/go": b"\x7fELF",
}


def _project(files=None, executables=("bin/go",)) -> Project:
    return Project(dict(FILES if files is None else files), executables=frozenset(executables))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(root) -> dict:
    return json.loads((root / MARKER).read_text())


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- folders --------------------------------------------------------------------------------------


def test_export_writes_every_file_and_the_record(tmp_path):
    root = tmp_path / "a" / "b"  # parents are created
    assert export_dir(_project(), root) == root
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == {
        "krt.yml",
        "src/n/main.py",
        "bin/go",
        MARKER,
    }
    for rel, data in FILES.items():
        assert (root / rel).read_bytes() == data
    assert _mode(root / "bin/go") == 0o755
    assert _mode(root / "krt.yml") == 0o644
    assert _mode(root / "src/n/main.py") == 0o644
    assert (root / MARKER).read_text() == (
        "{\n"
        ' "files": {\n'
        f'  "bin/go": "{_sha(FILES["bin/go"])}",\n'
        f'  "krt.yml": "{_sha(FILES["krt.yml"])}",\n'
        f'  "src/n/main.py": "{_sha(FILES["src/n/main.py"])}"\n'
        " }\n"
        "}\n"
    )


def test_export_accepts_a_string_path(tmp_path):
    assert export_dir(_project(), str(tmp_path / "out")) == tmp_path / "out"
    assert (tmp_path / "out" / "krt.yml").read_bytes() == FILES["krt.yml"]


def test_re_export_replaces_what_krtlab_wrote_and_keeps_identical_files(tmp_path):
    root = export_dir(_project(), tmp_path / "out")
    os.chmod(root / "krt.yml", 0o600)  # an identical file is not rewritten: it keeps its mode
    inode = (root / "krt.yml").stat().st_ino
    changed = dict(FILES, **{"src/n/main.py": b"print(2)\n"})
    export_dir(_project(changed), root)
    assert (root / "src/n/main.py").read_bytes() == b"print(2)\n"
    assert (root / "krt.yml").stat().st_ino == inode and _mode(root / "krt.yml") == 0o600
    assert _record(root)["files"]["src/n/main.py"] == _sha(b"print(2)\n")


def test_files_identical_to_the_project_are_no_conflict_without_a_record(tmp_path):
    root = tmp_path / "out"
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    export_dir(_project(), root)
    assert set(_record(root)["files"]) == set(FILES)


def test_files_written_by_hand_stop_the_export(tmp_path):
    root = tmp_path / "out"
    (root / "src" / "n").mkdir(parents=True)
    (root / "src" / "n" / "main.py").write_bytes(b"mine\n")
    (root / "krt.yml").write_bytes(b"mine too\n")
    (root / "notes.txt").write_bytes(b"not in the project: kept\n")
    with pytest.raises(OverwriteError) as info:
        export_dir(_project(), root)
    assert str(info.value) == (
        f"not exporting to {root}: these files were written or edited by hand and would be "
        "replaced:\n  krt.yml\n  src/n/main.py\nmove them away, export elsewhere, or pass "
        "overwrite=True (CLI: --force)"
    )
    assert info.value.paths == ["krt.yml", "src/n/main.py"]
    assert (root / "krt.yml").read_bytes() == b"mine too\n"
    assert not (root / "bin").exists() and not (root / MARKER).exists()
    export_dir(_project(), root, overwrite=True)
    assert (root / "krt.yml").read_bytes() == FILES["krt.yml"]
    assert (root / "notes.txt").read_bytes() == b"not in the project: kept\n"


def test_a_file_edited_since_krtlab_wrote_it_stops_the_export(tmp_path):
    root = export_dir(_project(), tmp_path / "out")
    (root / "src/n/main.py").write_bytes(b"edited\n")
    with pytest.raises(OverwriteError) as info:
        export_dir(_project(dict(FILES, **{"src/n/main.py": b"new\n"})), root)
    assert info.value.paths == ["src/n/main.py"]


def test_the_list_of_conflicts_shows_twenty(tmp_path):
    files = {f"f{i:02}.txt": b"x" for i in range(22)}
    root = tmp_path / "out"
    root.mkdir()
    for rel in files:
        (root / rel).write_bytes(b"mine")
    with pytest.raises(OverwriteError) as info:
        export_dir(_project(files, ()), root)
    listed = str(info.value).split("replaced:\n", 1)[1].split("\nmove them", 1)[0]
    assert listed.splitlines() == [f"  f{i:02}.txt" for i in range(20)]
    assert info.value.paths == sorted(files)


def test_a_folder_where_a_file_goes_is_a_conflict(tmp_path):
    root = tmp_path / "out"
    (root / "krt.yml").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "src" / "n").mkdir(parents=True)
    (root / "src" / "n" / "main.py").symlink_to(tmp_path / "elsewhere")  # a link to a folder
    with pytest.raises(OverwriteError) as info:
        export_dir(_project(), root)
    assert info.value.paths == ["krt.yml", "src/n/main.py"]


def test_a_symlink_to_an_identical_file_is_kept(tmp_path):
    root = tmp_path / "out"
    (root / "src" / "n").mkdir(parents=True)
    (tmp_path / "main.py").write_bytes(FILES["src/n/main.py"])
    (root / "src" / "n" / "main.py").symlink_to(tmp_path / "main.py")
    export_dir(_project(), root)
    assert (root / "src" / "n" / "main.py").is_symlink()


def test_dest_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_bytes(b"x")
    with pytest.raises(BundleError) as info:
        export_dir(_project(), tmp_path / "out")
    assert str(info.value) == f"{tmp_path / 'out'} exists and is not a folder"
    assert not isinstance(info.value, OverwriteError)


def test_files_krtlab_wrote_and_the_project_dropped_are_removed(tmp_path):
    root = export_dir(_project(), tmp_path / "out")
    (root / "extra.txt").write_bytes(b"mine\n")
    smaller = {"krt.yml": FILES["krt.yml"]}
    export_dir(_project(smaller, ()), root)
    assert not (root / "src/n/main.py").exists() and not (root / "bin/go").exists()
    assert (root / "extra.txt").read_bytes() == b"mine\n"
    assert _record(root) == {"files": {"krt.yml": _sha(FILES["krt.yml"])}}


def test_a_dropped_file_edited_since_is_a_conflict(tmp_path):
    root = export_dir(_project(), tmp_path / "out")
    (root / "bin/go").write_bytes(b"rebuilt by hand")
    smaller = {"krt.yml": FILES["krt.yml"]}
    with pytest.raises(OverwriteError) as info:
        export_dir(_project(smaller, ()), root)
    assert info.value.paths == ["bin/go"]
    export_dir(_project(smaller, ()), root, overwrite=True)
    assert not (root / "bin/go").exists()


def test_a_record_naming_one_file_twice_removes_it_once(tmp_path):
    root = export_dir(_project(), tmp_path / "out")
    (root / "lib").symlink_to(root / "src")  # lib/n/main.py is src/n/main.py
    record = _record(root)
    record["files"]["lib/n/main.py"] = record["files"]["src/n/main.py"]
    (root / MARKER).write_text(json.dumps(record))
    export_dir(_project({"krt.yml": FILES["krt.yml"]}, ()), root)
    assert not (root / "src/n/main.py").exists()


@pytest.mark.parametrize(
    "marker",
    ["not json", "[1, 2]", '{"other": 1}', '{"files": ["src/n/main.py"]}', '"x"', "\udcff"],
)
def test_an_unreadable_record_is_no_record(tmp_path, marker):
    root = tmp_path / "out"
    root.mkdir()
    (root / MARKER).write_text(marker, errors="surrogateescape")
    (root / "krt.yml").write_bytes(b"mine\n")
    with pytest.raises(OverwriteError) as info:  # not an AttributeError
        export_dir(_project(), root)
    assert info.value.paths == ["krt.yml"]
    (root / "krt.yml").write_bytes(FILES["krt.yml"])
    export_dir(_project(), root)
    assert set(_record(root)["files"]) == set(FILES)


def test_a_record_never_makes_an_export_delete_files_elsewhere(tmp_path):
    root = tmp_path / "a" / "out"
    root.mkdir(parents=True)
    near, far = tmp_path / "a" / "near.txt", tmp_path / "far.txt"
    near.write_bytes(b"precious")
    far.write_bytes(b"precious")
    files = {
        "../near.txt": _sha(b"precious"),
        "../../far.txt": _sha(b"precious"),
        str(far): _sha(b"precious"),
        "./x/../../near.txt": _sha(b"precious"),
    }
    (root / MARKER).write_text(json.dumps({"files": files}))
    export_dir(_project(), root)
    assert near.read_bytes() == b"precious" and far.read_bytes() == b"precious"
    assert set(_record(root)["files"]) == set(FILES)


def test_a_file_named_like_dots_is_recorded_and_removed(tmp_path):
    files = {"krt.yml": FILES["krt.yml"], "..data": b"d", "x/..y": b"y"}
    root = export_dir(_project(files, ()), tmp_path / "out")
    export_dir(_project({"krt.yml": FILES["krt.yml"]}, ()), root)
    assert not (root / "..data").exists() and not (root / "x/..y").exists()


# -- .krt files -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def greeter() -> Project:
    return load_project(EXAMPLES / "greeter")


def test_build_writes_a_krt_with_executables(tmp_path, greeter):
    files = dict(greeter.files, **{"bin/go": b"\x7fELF"})
    project = Project(files, executables=frozenset({"bin/go"}))
    out = build_krt(project, tmp_path / "a" / "b" / "g.krt")
    assert out == tmp_path / "a" / "b" / "g.krt"
    with tarfile.open(out) as tar:
        modes = {m.name: m.mode for m in tar.getmembers() if m.isfile()}
    assert modes["bin/go"] == 0o755
    assert modes["krt.yml"] == 0o644
    assert load_project(out).files.keys() >= greeter.files.keys()


def test_build_replaces_a_build_of_the_same_version(tmp_path, greeter):
    out = build_krt(greeter, tmp_path / "g.krt")
    first = out.read_bytes()
    out.write_bytes(first)
    assert build_krt(greeter, out) == out
    assert out.read_bytes() == first


def test_build_refuses_to_replace_another_file(tmp_path, greeter):
    path = tmp_path / "g.krt"
    path.write_bytes(b"not a build")
    with pytest.raises(OverwriteError) as info:
        build_krt(greeter, path)
    assert str(info.value) == (
        f"{path} exists and is not a build of 'greeter-v1'; not replacing it (pass "
        "overwrite=True, CLI: --force)"
    )
    assert info.value.paths == [str(path)]
    assert path.read_bytes() == b"not a build"
    build_krt(greeter, path, overwrite=True)
    assert load_project(path).manifest.version == "greeter-v1"


def test_build_refuses_to_replace_a_build_of_another_version(tmp_path, greeter):
    path = tmp_path / "g.krt"
    other = dict(greeter.files)
    other["krt.yml"] = other["krt.yml"].replace(b"greeter-v1", b"other-v1")
    build_krt(Project(other), path)
    with pytest.raises(OverwriteError, match=r"is not a build of 'greeter-v1'"):
        build_krt(greeter, path)


def test_build_refuses_a_folder(tmp_path, greeter):
    (tmp_path / "g.krt").mkdir()
    with pytest.raises(OverwriteError) as info:
        build_krt(greeter, tmp_path / "g.krt")
    assert str(info.value) == f"{tmp_path / 'g.krt'} is a folder; give a .krt file name"
    assert info.value.paths == [str(tmp_path / "g.krt")]
