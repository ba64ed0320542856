"""The proof of an export: each node imported in a fresh interpreter, the way kre-py loads it."""

from __future__ import annotations

import textwrap

import pytest

import krtlab as krt
from krtlab.bundle import prove
from krtlab.bundle.prove import prove_imports

GOOD = b"import json\n\n\nasync def handler(ctx, data):\n    return data\n"


def files_of(**nodes: bytes) -> dict[str, bytes]:
    return {f"src/{name}/main.py": text for name, text in nodes.items()}


def test_nodes_that_import_pass_and_each_starts_clean():
    files = files_of(
        a=b"import sys\nsys.modules['leak'] = 1\n" + GOOD,
        b=b"import sys\nassert 'leak' not in sys.modules\nprint('noise')\n" + GOOD,
    )
    assert prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"}) == []


def test_failures_are_located_findings():
    files = files_of(
        missing=b"import json\nimport not_installed_anywhere\n" + GOOD,
        raises=b"X = 1\n\n\ndef f():\n    return {}['k']\n\n\nY = f()\n" + GOOD,
        nohandler=b"X = 1\n",
        syntax=b"def broken(:\n",
        exits=b"import os\nos._exit(3)\n",
    )
    nodes = {n: f"src/{n}/main.py" for n in ("missing", "raises", "nohandler", "syntax", "exits")}
    found = {f.message.split("'")[1]: f for f in prove_imports(files, nodes)}
    assert set(found) == set(nodes)
    assert all(f.code == "src.import_failed" and f.is_error for f in found.values())
    f = found["missing"]
    assert (f.file, f.line) == ("src/missing/main.py", 2)
    assert f.message == (
        "node 'missing': main.py fails when kre-py imports it at line 2: "
        "ModuleNotFoundError: No module named 'not_installed_anywhere'"
    )
    assert "copied with the node" in f.hint
    assert (found["raises"].file, found["raises"].line) == ("src/raises/main.py", 5)
    assert "KeyError: 'k'" in found["raises"].message
    assert "defines no handler" in found["nohandler"].message
    assert found["syntax"].line == 1 and "SyntaxError" in found["syntax"].message
    assert "ended the interpreter" in found["exits"].message


def test_the_failing_line_is_traced_to_the_node_own_modules_and_the_notebook():
    files = files_of(n=b"import helper\n" + GOOD)
    files["src/n/helper.py"] = b"VALUE = 1\nBROKEN = 1 / 0\n"
    (f,) = prove_imports(files, {"n": "src/n/main.py"},
                         origin=lambda file, line: f"cell In[7], line {line + 1}")  # fmt: skip
    assert (f.file, f.line) == ("src/n/helper.py", 2)
    assert "helper.py fails when kre-py imports it at line 2 (from cell In[7], line 3)" in f.message


def test_unchanged_nodes_are_not_proven_twice(monkeypatch):
    files = files_of(once=b"ONCE = 'unique text for the cache test'\n" + GOOD)
    assert prove_imports(files, {"once": "src/once/main.py"}) == []

    def no_second_run(*args, **kwargs):
        raise AssertionError("proved again")

    monkeypatch.setattr(prove, "_Job", no_second_run)
    assert prove_imports(files, {"once": "src/once/main.py"}) == []
    files["src/once/extra.py"] = b""  # the folder changed: proven again
    with pytest.raises(AssertionError, match="proved again"):
        prove_imports(files, {"once": "src/once/main.py"})


def test_a_slow_import_is_reported(monkeypatch):
    monkeypatch.setattr(prove, "TIMEOUT_S", 1.0)
    files = files_of(slow=b"import time\ntime.sleep(5)\n" + GOOD)
    (f,) = prove_imports(files, {"slow": "src/slow/main.py"})
    assert "did not finish in 1 s" in f.message


def test_validate_proves_an_authored_version(tmp_path, monkeypatch):
    script = tmp_path / "only_here.py"
    script.write_text(
        textwrap.dedent('''\
        import os
        import re

        import krtlab as krt

        v = krt.Version("prove-v1", description="x")
        pb = v.proto("""
        syntax = "proto3";
        package entrypoint;
        message Request { string name = 1; }
        message Response { string greeting = 1; }
        service Entrypoint { rpc Go (Request) returns (Response) {}; }
        """)
        WORD = re.compile(os.environ["KRTLAB_TEST_ONLY_HERE"])  # set where the notebook runs


        @v.node(name="n")
        def n(req: pb.Request) -> pb.Response:
            return pb.Response(greeting=WORD.pattern)


        v.workflow("wf", entrypoint="Go", sequential=[n])
        ''')
    )
    monkeypatch.setenv("KRTLAB_TEST_ONLY_HERE", "[a-z]+")
    v = krt.load(script)
    monkeypatch.delenv("KRTLAB_TEST_ONLY_HERE")  # as on the runner
    report = v.validate()
    (f,) = report.errors
    assert f.code == "src.import_failed" and f.file == "src/n/main.py"
    main = v.project().files["src/n/main.py"].decode().splitlines()
    assert main[f.line - 1].startswith("WORD = re.compile(os.environ[")
    assert "only_here.py, line 14): KeyError: 'KRTLAB_TEST_ONLY_HERE'" in f.message
    with pytest.raises(krt.ValidationError, match="fails when kre-py imports it"):
        v.export(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
