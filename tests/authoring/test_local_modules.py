"""Local modules: where an import comes from, and the files that travel with a node."""

from __future__ import annotations

import importlib
import sys

import pytest

from krtlab.authoring import local_modules
from krtlab.authoring.local_modules import local_files, module_origin
from krtlab.errors import CaptureError


@pytest.fixture
def beside(tmp_path, monkeypatch):
    """A folder on sys.path, like the notebook's; modules imported from it are forgotten."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_where_modules_come_from(beside):
    (beside / "mine.py").write_text("X = 1\n")
    assert module_origin("json") == "stdlib"
    assert module_origin("os.path") == "stdlib"
    assert module_origin("yaml") == "installed"  # PyYAML, a distribution
    assert module_origin("google.protobuf") == "installed"
    assert module_origin("mine") == "local"
    assert module_origin("no_such_module_anywhere") == "missing"


def test_a_module_and_the_local_modules_it_imports(beside):
    (beside / "textutils.py").write_text("import re\nimport shared\nfrom json import dumps\n")
    (beside / "shared.py").write_text("import yaml\nVALUE = 1\n")
    (beside / "unrelated.py").write_text("X = 1\n")
    files = local_files(["textutils"])
    assert set(files) == {"textutils.py", "shared.py"}
    assert files["shared.py"] == b"import yaml\nVALUE = 1\n"


def test_a_package_travels_whole_without_caches(beside):
    pkg = beside / "helpers"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .text import shout\n")
    (pkg / "text.py").write_text("def shout(t):\n    return t.upper()\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "data.json").write_text("{}")  # package data goes along
    (pkg / "sub" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (pkg / ".hidden").write_text("")
    assert set(local_files(["helpers.text"])) == {
        "helpers/__init__.py", "helpers/text.py", "helpers/sub/__init__.py",
        "helpers/sub/data.json",
    }  # fmt: skip


def test_generated_protobuf_modules_are_not_copied(beside):
    (beside / "uses_pb.py").write_text("import public_input_pb2\n")
    (beside / "public_input_pb2.py").write_text("")
    assert set(local_files(["uses_pb"])) == {"uses_pb.py"}


def test_local_modules_are_limited_in_size(beside, monkeypatch):
    (beside / "big.py").write_text("X = 1\n" * 100)  # 600 bytes
    monkeypatch.setattr(local_modules, "MAX_LOCAL_BYTES", 600)
    assert "big.py" in local_files(["big"])
    monkeypatch.setattr(local_modules, "MAX_LOCAL_BYTES", 599)
    with pytest.raises(CaptureError, match=r"node 'n': the local modules .*v\.asset"):
        local_files(["big"], node="n")


def test_compiled_local_modules_are_refused(beside):
    (beside / "fast.so").write_bytes(b"\0")
    (beside / "fast.py").unlink(missing_ok=True)
    with pytest.raises(CaptureError, match=r"not a \.py file"):
        local_files(["fast"])
