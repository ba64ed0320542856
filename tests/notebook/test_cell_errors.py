"""krtlab's errors in a real kernel: one block, the user's line, no krtlab frames."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

SETUP = '''\
import krtlab as krt

v = krt.Version("wc-v1", description="x")
pb = v.proto("""
syntax = "proto3";
package entrypoint;
message Request { string text = 1; }
message Response { int32 count = 1; }
service Entrypoint { rpc CountWords (Request) returns (Response) {}; }
""")
WORDS = {}


@v.node(name="count")
def count(req: pb.Request) -> pb.Response:
    n = len(req.text.split())
    return pb.Response(count=WORDS[req.text])


v.workflow("wc", entrypoint="CountWords", sequential=[count])
'''

CELLS = {
    "setup": SETUP,
    "rpc": 'v.run("CountWord", text="a b")',
    "field": 'v.run("CountWords", txt="a b")',
    "proto": 'broken = v.proto("""\nsyntax = "proto3";\npackage entrypoint;\n'
    'message Request { string text = 1 }\n""")',
    "node": 'r = v.run("CountWords", text="a b")\nr.response',
    "bug": "import krtlab.notebook.tracebacks as t\nt.render(None)",  # not a krtlab error
}


@pytest.fixture(scope="module")
def errors(kernel_manager, tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS.values()]
    folder = str(tmp_path_factory.mktemp("e"))
    client = NotebookClient(nb, km=kernel_manager(), timeout=120, allow_errors=True,
                            resources={"metadata": {"path": folder}})  # fmt: skip
    client.execute()
    found = {}
    for name, cell in zip(CELLS, nb.cells, strict=True):
        outs = [o for o in cell.outputs if o.output_type == "error"]
        found[name] = (outs[0].ename, "\n".join(outs[0].traceback)) if outs else None
    return found


def test_setup_runs(errors):
    assert errors["setup"] is None


@pytest.mark.parametrize(
    ("cell", "ename", "lines"),
    [
        ("rpc", "SpecError", [
            "SpecError: wc-v1 has no rpc or workflow 'CountWord'; did you mean 'CountWords'?",
            '  called from cell In[2], line 1: v.run("CountWord", text="a b")',
        ]),
        ("field", "SpecError", [
            "SpecError: rpc CountWords: entrypoint.Request has no field 'txt'; did you mean "
            "'text'?",
            '  called from cell In[3], line 1: v.run("CountWords", txt="a b")',
        ]),
        ("proto", "ProtoError", [
            "ProtoError: public_input.proto does not compile",
            'cell In[4], line 4, column 35: Expected ";".',
            "  4 | message Request { string text = 1 }",
            "    |                                   ^",
            '  called from cell In[4], line 1: broken = v.proto("""',
        ]),
        ("node", "NodeFailed", [
            "NodeFailed: error in 'count': 'a b'",
            "  in node 'count' (KeyError), cell In[1], line 17: return "
            "pb.Response(count=WORDS[req.text])",
            "  called from cell In[5], line 2: r.response",
        ]),
    ],
)  # fmt: skip
def test_krtlab_errors_are_one_block_at_the_users_line(errors, cell, ename, lines):
    got_name, text = errors[cell]
    assert got_name == ename
    assert text.splitlines() == lines
    assert "krtlab/" not in text and "Traceback" not in text


def test_real_bugs_keep_their_traceback(errors):
    name, text = errors["bug"]
    assert name == "AttributeError" and "Traceback" in text and "tracebacks.py" in text
