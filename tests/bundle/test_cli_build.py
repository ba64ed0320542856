"""krtlab build/validate on hand-written projects: krt.yml under other names, --version,
generated _pb2 files said aloud, JSON even when the input cannot be read."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from krtlab.cli import main
from tests.conftest import EXAMPLES


@pytest.fixture
def greeter(tmp_path):
    folder = tmp_path / "greeter"
    shutil.copytree(EXAMPLES / "greeter", folder)
    return folder


@pytest.mark.parametrize("name", ["kre.yaml", ".krt.yaml", "krt-prod.yml"])
def test_a_krt_yml_under_another_name_is_read_as_the_krt_yml(greeter, tmp_path, capsys, name):
    (greeter / "krt.yml").rename(greeter / name)
    assert main(["validate", str(greeter / name), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in data["findings"]] == ["bundle.manifest_name"]
    out = tmp_path / "g.krt"
    assert main(["build", str(greeter / name), "-o", str(out)]) == 0
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert names[0] == "krt.yml" and name not in names
        assert tar.extractfile("krt.yml").read() == (greeter / name).read_bytes()


def test_build_says_which_files_it_generates_and_renames_like_kli(greeter, tmp_path, capsys):
    text = (greeter / "krt.yml").read_text()
    (greeter / "krt.yml").write_text(
        text.replace("version: greeter-v1", "version: greeter-v1  # x")
    )
    out = tmp_path / "g.krt"
    assert main(["build", str(greeter), "-o", str(out), "--version", "greeter-v7"]) == 0
    printed = capsys.readouterr().out
    assert "added src/py-greeter/public_input_pb2.py" in printed
    with tarfile.open(out) as tar:
        krt_yml = tar.extractfile("krt.yml").read().decode()
    assert krt_yml.startswith("version: greeter-v7  # x\n")  # the rest as written
    assert main(["build", str(greeter), "-o", str(out), "-f", "--version", "Greeter_V7"]) == 2
    assert "try 'greeter-v7'" in capsys.readouterr().err


def test_validate_json_is_json_even_when_the_input_cannot_be_read(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing"), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "does not exist" in data["error"]
