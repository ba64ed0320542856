"""One manifest picker: every reader that chooses an archive's krt.yml (loading a .krt, the KRE
stand-in, the deploy client) picks what KRE picks, the first entry matching
``(^|/)krt.ya?ml$``; krtlab's own reading (the root one) says when it differs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from krtlab.bundle.archive import krt_yml_member, krt_yml_tarinfo, write_krt
from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.deploy import kai_wire
from krtlab.deploy.standin.krt_check import check_content, check_sync
from tests.support import tar_bytes

from ..conftest import EXAMPLES
from ..test_validate_rules import GREETER_YML

OTHER_YML = GREETER_YML.replace("version: greeter-v1", "version: other-v1")
DIRS: list[tuple[str, bytes | None]] = [("src/", None), ("src/py-greeter/", None)]


def _tar_gz(entries: list[tuple[str, bytes | None]]) -> bytes:
    return tar_bytes(entries)


def _rest() -> list[tuple[str, bytes | None]]:
    files = load_project(EXAMPLES / "greeter").files
    return [*DIRS, *((k, v) for k, v in files.items() if k not in ("krt.yml", "krt.yaml"))]


def _stand_in(data: bytes) -> str:
    try:
        return str(check_sync(data)["Version"])
    except ValueError as exc:
        return str(exc)


def _readers(data: bytes, tmp_path: Path) -> dict[str, str | None]:
    """The version each reader takes from the archive ``data``."""
    path = tmp_path / "v.krt"
    path.write_bytes(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        info = krt_yml_tarinfo(tar)
        assert info is not None
        name = info.name
    project = load_project(path)
    kre_file = project.files[name]
    return {
        "kre pick": "greeter-v1" if kre_file == GREETER_YML.encode() else "other-v1",
        "stand-in": _stand_in(data),
        "deploy client": kai_wire.krt_version_name(data),
    }


@pytest.mark.parametrize("first", ["krt.yml", "krt.yaml"])
def test_both_root_names_every_reader_takes_the_first_in_the_archive(first, tmp_path):
    second = "krt.yaml" if first == "krt.yml" else "krt.yml"
    data = _tar_gz([(first, OTHER_YML.encode()), (second, GREETER_YML.encode()), *_rest()])
    readers = _readers(data, tmp_path)
    assert set(readers.values()) == {"other-v1"}, readers
    project = load_project(tmp_path / "v.krt")
    assert project.manifest_name == first and project.manifest.version == "other-v1"
    assert "bundle.two_manifests" in [f.code for f in project.validate().errors]


def test_a_nested_krt_yml_before_the_root_one_is_what_kre_reads(tmp_path):
    entries = [("docs/", None), ("docs/krt.yml", OTHER_YML.encode())]
    data = _tar_gz([*entries, ("krt.yml", GREETER_YML.encode()), *_rest()])
    readers = _readers(data, tmp_path)
    # the deploy client used to take the shallowest one: now KRE's pick, as everywhere; KRE
    # writes that one entry before any folder exists, so it fails (as the stand-in now does)
    failed = (
        "error on KRT Yaml extraction: error creating krt file /tmp/version<random>/docs/krt.yml:"
        " open /tmp/version<random>/docs/krt.yml: no such file or directory"
    )
    assert readers == {"kre pick": "other-v1", "stand-in": failed, "deploy client": "other-v1"}
    project = load_project(tmp_path / "v.krt")
    # krtlab validates the root one (src paths resolve from the root) and says KRE takes another
    assert project.manifest_name == "krt.yml" and project.manifest.version == "greeter-v1"
    (f,) = [f for f in project.validate().errors if f.code == "bundle.nested_manifest_first"]
    assert f.file == "docs/krt.yml" and f.kre == f"KRE 7: {failed}"
    assert "KRE takes 'docs/krt.yml'" in f.message and "root krt.yml krtlab validates" in f.message
    # rebuilt, the root one goes first, and every reader agrees on it
    write_krt(project.files, tmp_path / "rebuilt.krt")
    rebuilt = (tmp_path / "rebuilt.krt").read_bytes()
    assert set(_readers(rebuilt, tmp_path).values()) == {"greeter-v1"}


def test_a_root_krt_yml_before_a_nested_one_is_no_finding(tmp_path):
    entries = [("krt.yml", GREETER_YML.encode()), ("docs/", None)]
    data = _tar_gz([*entries, ("docs/krt.yml", OTHER_YML.encode()), *_rest()])
    assert set(_readers(data, tmp_path).values()) == {"greeter-v1"}
    codes = [f.code for f in load_project(tmp_path / "v.krt").validate().findings]
    assert "bundle.nested_manifest_first" not in codes and "file.manifest_like" in codes


def test_a_folder_named_like_krt_yml_is_not_the_krt_yml(tmp_path):
    # Go's reader keeps a folder entry's trailing '/', so KRE's regex never matches a folder;
    # Python's tarfile drops it, and the stand-in used to read the folder as an empty krt.yml
    data = _tar_gz(
        [("conf/", None), ("conf/krt.yml/", None), ("krt.yml", GREETER_YML.encode()), *_rest()]
    )
    assert krt_yml_member(["conf/", "conf/krt.yml/", "krt.yml"]) == "krt.yml"
    assert set(_readers(data, tmp_path).values()) == {"greeter-v1"}


def test_a_root_file_kres_unescaped_dot_matches_is_read_as_krt_yml():
    files = {"krtxyml": GREETER_YML.encode(), "public_input.proto": b""}
    assert Project(files).manifest_name == "krtxyml" == krt_yml_member(files)
    assert Project({"public_input.proto": b""}).manifest_name == "krt.yml"  # none: the default
    assert krt_yml_member(["docs/krt.yml", "krt.yml"], root_only=True) == "krt.yml"
    assert krt_yml_member(["docs/krt.yml"], root_only=True) is None


def test_a_krt_packed_with_its_folder_fails_in_kre_and_the_stand_in(tmp_path):
    data = _tar_gz([("greeter/", None), ("greeter/krt.yml", GREETER_YML.encode())])
    (tmp_path / "v.krt").write_bytes(data)
    failed = (
        "error on KRT Yaml extraction: error creating krt file "
        "/tmp/version<random>/greeter/krt.yml: open /tmp/version<random>/greeter/krt.yml: no "
        "such file or directory"
    )
    assert _stand_in(data) == failed
    (f,) = [
        f
        for f in load_project(tmp_path / "v.krt").validate().errors
        if f.code == "bundle.manifest_not_at_root"
    ]
    assert f.kre == f"KRE 7: {failed}"


def test_a_src_named_like_krt_yml_is_never_unpacked(tmp_path):
    yml = GREETER_YML.replace("src/py-greeter/main.py", "src/py-greeter/krt.yml")
    main_py = load_project(EXAMPLES / "greeter").files["src/py-greeter/main.py"]
    data = _tar_gz([("krt.yml", yml.encode()), *DIRS, ("src/py-greeter/krt.yml", main_py)])
    errors, _ = check_content(data, check_sync(data))
    # KRE's extractor skips every entry named like krt.yml, so the src does not exist
    kre = "error src File src/py-greeter/krt.yml for node py-greeter not exists "
    assert kre in errors
    (tmp_path / "v.krt").write_bytes(data)
    report = load_project(tmp_path / "v.krt").validate()
    (f,) = [f for f in report.errors if f.code == "src.manifest_like"]
    assert (f.path, f.kre) == ("nodes[0].src", f"KRE 7: {kre}")
    # the root krt.yml itself is on disk (extractKrtYaml wrote it): not refused as a src
    root = GREETER_YML.replace("src/py-greeter/main.py", "krt.yml")
    data = _tar_gz([("krt.yml", root.encode()), *DIRS])
    errors, _ = check_content(data, check_sync(data))
    assert not any("not exists" in e for e in errors)
    codes = [f.code for f in Project({"krt.yml": root.encode()}).validate().errors]
    assert "src.manifest_like" not in codes
