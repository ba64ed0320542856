"""What a project holds beside krt.yml: which krt.yml KRE reads, and the entrypoint proto file."""

from __future__ import annotations

import tarfile

from krtlab.bundle.archive import krt_yml_member, write_krt
from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.cli import main
from tests.support import tar_bytes

from ..conftest import EXAMPLES
from ..test_validate_rules import GREETER_YML, greeter

OTHER_YML = GREETER_YML.replace("version: greeter-v1", "version: other-v1")


def _folder(tmp_path, files):
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    return tmp_path


def _tar_gz(entries) -> bytes:
    return tar_bytes(entries)


def test_both_krt_yml_and_krt_yaml_validate_the_one_kre_reads(tmp_path):
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["krt.yaml"] = OTHER_YML.encode()
    project = load_project(_folder(tmp_path / "dir", files))
    # the one krtlab validates is the one `krtlab build` puts first, which KRE reads
    write_krt(project.files, tmp_path / "x.krt")
    with tarfile.open(tmp_path / "x.krt") as tar:
        first = krt_yml_member(tar.getnames())
    assert project.manifest_name == first
    report = project.validate()
    (f,) = [f for f in report.errors if f.code == "bundle.two_manifests"]
    assert f"KRE reads {first}" in f.message
    assert main(["build", str(tmp_path / "dir"), "-o", str(tmp_path / "y.krt")]) == 1
    # an archive's own order decides, as it does for KRE
    dirs = [("src/", None), ("src/py-greeter/", None)]
    rest = [(k, v) for k, v in files.items() if k not in ("krt.yml", "krt.yaml")]
    for order in (["krt.yml", "krt.yaml"], ["krt.yaml", "krt.yml"]):
        path = tmp_path / f"{order[0]}.krt"
        path.write_bytes(_tar_gz([(n, files[n]) for n in order] + dirs + rest))
        loaded = load_project(path)
        assert loaded.manifest_name == order[0]
        assert loaded.manifest.version == ("greeter-v1" if order[0] == "krt.yml" else "other-v1")
        assert "bundle.two_manifests" in [f.code for f in loaded.validate().errors]


def test_a_proto_that_is_a_folder_is_an_error():
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["public_input.proto/readme.txt"] = files.pop("public_input.proto")
    report = Project(files, "t").validate()
    (f,) = [f for f in report.errors if f.path == "entrypoint.proto"]
    assert f.code == "proto.not_file" and f.line == 4


def test_a_proto_naming_a_file_that_is_no_root_proto_is_a_finding(tmp_path, capsys):
    text = GREETER_YML.replace("proto: public_input.proto", "proto: src/py-greeter/main.py")
    report = greeter(text).validate()
    (f,) = [f for f in report.errors if f.path == "entrypoint.proto"]
    assert f.code == "entrypoint.proto_suffix" and f.line == 4
    files = dict(greeter(text).files)
    assert main(["validate", str(_folder(tmp_path / "a", files))]) == 1
    # a .proto below the root: krtlab compiles the root's protos, as KRE's entrypoint reads one
    nested = GREETER_YML.replace("proto: public_input.proto", "proto: protos/public_input.proto")
    files = dict(greeter(nested).files)
    files["protos/public_input.proto"] = files["public_input.proto"]
    report = Project(files, "t").validate()
    assert [(f.code, f.line) for f in report.errors] == [("proto.not_public_input", 4)]
    files["krt.yml"] = files["krt.yml"].replace(b"konstellation/kre-entrypoint", b"my/entry")
    report = Project(files, "t").validate()
    assert [(f.code, f.line) for f in report.at("entrypoint.proto")] == [("proto.not_at_root", 4)]
    assert report.ok
