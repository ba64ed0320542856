"""Imports: what a captured node imports, where an import comes from, and the local modules
(files) that travel with a node."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from krtlab.authoring import local_modules
from krtlab.authoring.capture import Captured, capture, location
from krtlab.authoring.local_modules import local_files, module_origin
from krtlab.errors import CaptureError


@pytest.fixture
def beside(tmp_path, monkeypatch):
    """A folder on sys.path, like the notebook's; modules imported from it are forgotten."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:  # not the libraries they imported (numpy loads once)
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
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


# ---- imports: what capture() imports, and which local modules travel -------------------------


def _modules(beside, files: dict[str, str], *names: str) -> list:
    """Write ``files`` (relative path -> text) beside the notebook, then import ``names``."""
    for rel, text in files.items():
        (beside / rel).parent.mkdir(parents=True, exist_ok=True)
        (beside / rel).write_text(text)
    return [importlib.import_module(n) for n in names]


def _run(cap: Captured) -> dict:
    ns: dict = {}
    text = cap.import_block() + "\n\n\n" + "\n\n\n".join(cap.definitions) + "\n"
    exec(compile(text, "exported.py", "exec"), ns)
    return ns


MARKS_PY = """\
import re

PUNCT = re.compile(r"[!?.]")


def shout(text):
    return text.upper()
"""

WORDS_PY = """\
from marks import shout, PUNCT
from textkit.spaces import SPACES


def clean(req):
    return shout(SPACES.sub(" ", PUNCT.sub("", req)))
"""


def test_objects_a_local_module_made_are_imported_from_it_and_the_module_travels(beside):
    files = {
        "marks.py": MARKS_PY,
        "textkit/__init__.py": "",
        "textkit/spaces.py": 'import re\n\nSPACES = re.compile(r"\\s+")\n',
        "words.py": WORDS_PY,
    }
    (words,) = _modules(beside, files, "words")
    cap = capture([words.clean], node="n")
    assert cap.imports == (  # PUNCT and SPACES have no public path: the user's import statement
        "from __future__ import annotations",
        "from marks import PUNCT, shout",
        "from textkit.spaces import SPACES",
    )
    assert cap.definitions == (
        'def clean(req):\n    return shout(SPACES.sub(" ", PUNCT.sub("", req)))',
    )
    assert cap.local_modules == {"marks", "textkit"}  # a package travels as its top-level name
    assert _run(cap)["clean"]("the  cat!") == "THE CAT"


USE_PUNCT = "\n\ndef split(req):\n    return PUNCT.split(req)\n"


def test_one_name_imported_from_two_local_modules_for_two_roots_is_refused(beside):
    files = {
        "marks_a.py": MARKS_PY,
        "marks_b.py": 'import re\n\nPUNCT = re.compile(r"[,;]")\n',
        "words_a.py": f"from marks_a import PUNCT\n{USE_PUNCT}",
        "words_b.py": "from marks_b import PUNCT\n"
        + USE_PUNCT.replace("split(req)", "cut(req)", 1),
    }
    a, b = _modules(beside, files, "words_a", "words_b")
    with pytest.raises(CaptureError) as info:
        capture([a.split, b.cut], node="n")
    assert str(info.value) == (
        f"cannot export 'PUNCT', used by node 'n' ({location(b.__file__, 5)}): the exported "
        "module would need this name for two different objects (also used at "
        f"{location(a.__file__, 5)}); rename one of them"
    )


def test_a_local_module_named_like_the_runners_own_is_refused_where_it_is_used(beside, monkeypatch):
    monkeypatch.delitem(sys.modules, "config", raising=False)
    files = {
        "config.py": MARKS_PY,
        "uses_config.py": f"from config import PUNCT\n{USE_PUNCT}",
    }
    (module,) = _modules(beside, files, "uses_config")
    with pytest.raises(CaptureError) as info:
        capture([module.split], node="n")
    where = location(module.__file__, 5)
    assert str(info.value) == (
        f"cannot export 'PUNCT', used by node 'n' ({where}): the kre-py runner has its own module "
        "'config', which would be imported instead; rename your module"
    )
    assert (info.value.name, info.value.where) == ("PUNCT", where)


def test_an_import_a_statement_used_before_the_name_changed_is_kept(beside):
    files = {
        "counts.py": """\
import json as j
import os.path
from decimal import Decimal
from math import sqrt

COUNT = Decimal(len(j.dumps([1, 2])))
DEPTH = Decimal(len(os.path.join("a", "b")))
ROOT = Decimal(sqrt(9))
j = os = sqrt = None


def node(req):
    return COUNT, DEPTH, ROOT
"""
    }
    (module,) = _modules(beside, files, "counts")
    cap = capture([module.node], node="n")
    assert cap.imports == (  # `import os.path` binds os (and loads os.path, kept as written)
        "from __future__ import annotations",
        "import json as j",
        "import os",
        "import os.path",
        "from decimal import Decimal",
        "from math import sqrt",
    )
    assert cap.definitions == (
        'COUNT = Decimal(len(j.dumps([1, 2])))\nDEPTH = Decimal(len(os.path.join("a", "b")))\n'
        "ROOT = Decimal(sqrt(9))",
        "def node(req):\n    return COUNT, DEPTH, ROOT",
    )
    assert _run(cap)["node"](None) == (6, 3, 3)


VALUES_PY = """\
import json
import os.path
import uuid
import xml.etree.ElementTree
from collections import namedtuple
from fractions import Fraction

import numpy

Pair = namedtuple("Pair", "left right")
path = "/data"


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


# no statement the history knows made these: they are written back from their values
exec("NS = uuid.UUID('12345678-1234-5678-1234-567812345678')")
exec("KINDS = (int, str, len)")
exec("MODULES = (os.path, xml.etree.ElementTree, numpy, json)")
exec("TABLE = {'double': double, 'triple': triple, 'pair': Pair(1, 2)}")
exec("THIRD = Fraction(1, 3)")
del triple


def ids(req):
    return uuid.uuid5(NS, req), KINDS


def modules(req):
    return path, MODULES, json.dumps(req)


def libraries(req):
    return MODULES


def table(req):
    return TABLE


def third(req):
    return THIRD
"""


@pytest.fixture
def values(beside):
    (module,) = _modules(beside, {"values.py": VALUES_PY}, "values")
    return module


def test_values_name_library_objects_through_the_modules_the_node_imports(values):
    cap = capture([values.ids], node="n")
    assert cap.imports == ("from __future__ import annotations", "import uuid")
    assert cap.definitions == (
        'NS = uuid.UUID("12345678-1234-5678-1234-567812345678")\nKINDS = (int, str, len)',
        "def ids(req):\n    return uuid.uuid5(NS, req), KINDS",
    )


def test_modules_in_values_are_imported_under_a_free_name(values):
    cap = capture([values.modules], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "import json",  # the value's import and the function's are one
        "import os.path as path_2",  # path is the node's constant
        "from xml.etree import ElementTree",
        "import numpy as np",
    )
    assert cap.definitions == (
        'path = "/data"\nMODULES = (path_2, ElementTree, np, json)',
        "def modules(req):\n    return path, MODULES, json.dumps(req)",
    )


def test_own_functions_and_classes_in_values_come_before_the_value(values):
    cap = capture([values.table], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "from collections import namedtuple",
    )
    assert cap.definitions == (
        'Pair = namedtuple("Pair", "left right")',
        "def double(x):\n    return 2 * x",
        "def triple(x):\n    return 3 * x",  # deleted since: its def makes it again
        'TABLE = {"double": double, "triple": triple, "pair": Pair(left=1, right=2)}',
        "def table(req):\n    return TABLE",
    )
    assert _run(cap)["table"](None)["pair"] == (1, 2)


def test_names_values_need_are_claimed_where_the_value_is_used(values, beside):
    files = {
        "elsewhere.py": """\
path = "/elsewhere"
Fraction = Pair = None


def uses_path(req):
    return path


def uses_fraction(req):
    return Fraction


def uses_pair(req):
    return Pair
"""
    }
    (other,) = _modules(beside, files, "elsewhere")
    for value_root, name, root, line in [
        (values.libraries, "path", other.uses_path, 6),  # from os import path
        (values.third, "Fraction", other.uses_fraction, 10),  # from fractions import Fraction
        (values.table, "Pair", other.uses_pair, 14),  # Pair = namedtuple(...)
    ]:
        with pytest.raises(CaptureError) as info:
            capture([value_root, root], node="n")
        at = location(values.__file__, value_root.__code__.co_firstlineno + 1)
        assert str(info.value) == (
            f"cannot export {name!r}, used by node 'n' ({location(other.__file__, line)}): the "
            "exported module would need this name for two different objects (also used at "
            f"{at}); rename one of them"
        )


def test_a_relative_import_in_a_package_is_exported_by_its_full_name(beside):
    files = {
        "rel/__init__.py": "",
        "rel/data.py": 'import re\n\nWORD = re.compile("[a-z]+")\n',
        "rel/words.py": "from .data import WORD\n\n\ndef node(req):\n"
        "    return WORD.findall(req)\n",
        "rel/count.py": (
            "from decimal import Decimal\n\nfrom . import data\nfrom .data import WORD\n\n"
            "SIZE = Decimal(len(WORD.pattern))\nWORD = None  # rebound after SIZE used it\n\n\n"
            "def node(req):\n    return SIZE, data.WORD.pattern\n"
        ),
    }
    words, count = _modules(beside, files, "rel.words", "rel.count")
    cap = capture([words.node], node="n")
    assert cap.imports == ("from __future__ import annotations", "from rel.data import WORD")
    assert cap.definitions == ("def node(req):\n    return WORD.findall(req)",)
    assert cap.local_modules == {"rel"}  # the package travels with the node
    assert _run(cap)["node"]("ab cd") == ["ab", "cd"]
    cap = capture([count.node], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "from decimal import Decimal",
        "from rel import data",
        "from rel.data import WORD",
    )
    assert _run(cap)["node"](None) == (count.SIZE, "[a-z]+")


def test_a_dotted_import_keeps_the_submodule_it_loads(beside):
    files = {
        "dotted_use.py": (
            "import urllib.request\nimport xml.etree.ElementTree\n\n\ndef node(req):\n"
            '    return xml.etree.ElementTree.fromstring(req).tag, urllib.request.quote(" ")\n'
        ),
    }
    (module,) = _modules(beside, files, "dotted_use")
    cap = capture([module.node], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "import urllib",
        "import urllib.request",
        "import xml",
        "import xml.etree.ElementTree",
    )
    code = cap.import_block() + "\n\n\n" + "\n\n\n".join(cap.definitions) + "\nprint(node('<a/>'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout == "('a', '%20')\n"  # a fresh interpreter: nothing else loaded them
