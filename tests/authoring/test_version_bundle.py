"""A version's bundle: assets never replace what krtlab writes, and a loaded .krt keeps its
archive's problems."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

import krtlab as krt
from krtlab.bundle.load import load_project
from krtlab.errors import SpecError

from ..conftest import EXAMPLES
from ..test_version import GREETER_PROTO


def _version() -> krt.Version:
    v = krt.Version("greeter-v1", description="d")
    pb = v.proto(GREETER_PROTO)

    @v.node(name="py-greeter", requirements=["pyyaml==6.0.2"])
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=req.name)

    v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])
    return v


@pytest.mark.parametrize(
    ("dest", "named"),
    [
        ("krt.yml", "krt.yml"),
        ("krt.yaml", "krt.yml"),
        ("./krt.yml", "krt.yml"),
        ("public_input.proto", "proto"),
        ("src/py-greeter/main.py", "py-greeter"),
        ("src/py-greeter/public_input_pb2.py", "public_input.proto"),
        ("src/py-greeter/requirements.txt", "py-greeter"),
    ],
)
def test_an_asset_may_not_replace_a_file_krtlab_writes(dest, named):
    v = _version()
    with pytest.raises(SpecError, match=r"asset") as info:
        v.asset(dest, data=b"mine")
    assert named in str(info.value)
    assert v.project().files.get(dest.removeprefix("./"), b"") != b"mine"


def test_an_asset_given_before_the_node_that_writes_it_is_refused_when_assembled():
    v = krt.Version("greeter-v1", description="d")
    pb = v.proto(GREETER_PROTO)
    v.asset("src/py-greeter/main.py", data=b"mine")

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=req.name)

    with pytest.raises(SpecError, match=r"src/py-greeter/main\.py.*py-greeter"):
        v.project()


def test_assets_krtlab_does_not_write_are_kept():
    v = _version()
    v.asset("models/m.bin", data=b"\0model")
    v.asset("docs/README.md", data=b"# mine\n")  # the user's README: krtlab then writes none
    files = v.project().files
    assert files["models/m.bin"] == b"\0model" and files["docs/README.md"] == b"# mine\n"


def test_a_version_loaded_from_a_krt_reports_the_archives_own_problems(tmp_path):
    files = load_project(EXAMPLES / "greeter").files
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:  # no folder entries: KRE cannot unpack it
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "flat.krt"
    path.write_bytes(gzip.compress(buf.getvalue()))
    expected = [f.code for f in load_project(path).validate().errors]
    assert "bundle.no_dir_entries" in expected
    assert [f.code for f in krt.load(path).validate().errors] == expected
