"""The krtlab magics in a real Jupyter kernel: one notebook, one kernel, every magic."""

import re

import nbformat
import pytest
from nbclient import NotebookClient

import krtlab as krt

pytestmark = pytest.mark.slow

GOOD = """syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }"""
# proto line 3 (cell line 4) misses its ";" at column 35
SYNTAX = GOOD.replace("string name = 1; }", "string name = 1 }")
# an unknown type on proto line 5 (cell line 6)
UNKNOWN = GOOD.replace("returns (Response)", "returns (Resp)")

CELLS = {
    "setup": '%load_ext krtlab\nimport krtlab as krt\n\nv = krt.Version("greeter-v1", '
    'description="Greets whoever asks")\nnot_a_version = 3',
    "proto": f"%%krt_proto v --as pb\n{GOOD}",
    "syntax": f"%%krt_proto v\n{SYNTAX}",
    "unknown": f"%%krt_proto v\n{UNKNOWN}",
    "kept": "print(sorted(n for n in dir(pb) if n[0].isupper()), pb.Request(name='x').name)",
    "missing": f"%%krt_proto vv\n{GOOD}",
    "wrong_type": f"%%krt_proto not_a_version\n{GOOD}",
    "empty": "%%krt_proto v\n\n",
    "nodes": """@v.node(name="py-greeter")
def greet(ctx, req: pb.Request) -> pb.Response:
    return pb.Response(greeting=f"{ctx.get('greeting')} {req.name}!")


@greet.init
def setup(ctx):
    ctx.set("greeting", "Hello")


v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])""",
    "validate": "%krt_validate v",
    "run": '%krt_run v PyGreet {"name": "Ann"}',
    "run_expr": 'r = %krt_run v PyGreet dict(name="Bo")\nprint(r.ok, r.response.greeting)',
    "run_bad_rpc": "%krt_run v PyGret {}",
    "run_bad_request": "%krt_run v PyGreet {nope",
    "export": "%krt_export v out --krt out/../greeter-v1.krt",
    "invalid": 'bad = krt.Version("bad-v1", description="nothing yet")\n%krt_export bad bad-out',
    "refuse": "open('out/krt.yml', 'a').write('# mine\\n')\n%krt_export v out",
    "force": "%krt_export v out --force",
    "rename": 'w = krt.Version("w-v1", description="x")',
    "rename_proto": f"%%krt_proto w --name other.proto\n{GOOD}",
    "rename_files": "print(sorted(f for f in w.project().files if f.endswith('.proto')))",
    "unload": "%unload_ext krtlab",
    "gone": "%krt_validate v",
    "reload": "%load_ext krtlab\n%krt_validate v",
    "unbound": f"%%krt_proto w\n{GOOD}",
}


def _text(cell):
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type == "error":
            out.append("\n".join(o.traceback))
        elif "data" in o:
            out.append(o.data.get("text/plain", ""))
    return "".join(out)


@pytest.fixture(scope="module")
def ran(kernel_manager, tmp_path_factory):
    """Every cell of CELLS run once in one kernel, errors allowed; name -> (cell, text)."""
    workdir = tmp_path_factory.mktemp("magics")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS.values()]
    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    cells = dict(zip(CELLS, nb.cells, strict=True))
    return workdir, {name: (cell, _text(cell)) for name, cell in cells.items()}


def _error(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    return errors[0] if errors else None


def test_proto_cell_lists_messages_and_rpcs_and_binds_only_when_asked(ran):
    _, cells = ran
    cell, text = cells["proto"]
    assert _error(cell) is None
    assert "public_input.proto: Request, Response" in text
    assert "rpc PyGreet(Request) → Response" in text
    assert "(bound to pb)" in text


def test_a_proto_cell_without_as_says_how_to_reach_the_classes(ran):
    _, cells = ran
    cell, text = cells["unbound"]
    assert _error(cell) is None
    assert "w.protos['other.proto'].Request" in text and "%%krt_proto w --as pb" in text


def test_syntax_error_is_shown_at_its_cell_line_with_a_caret(ran):
    _, cells = ran
    cell, text = cells["syntax"]
    err = _error(cell)
    assert err is not None and err.ename == "ProtoError"  # the cell fails: "Run all" stops
    assert "Traceback" not in text and "File " not in text
    lines = text.splitlines()
    assert lines[0] == "ProtoError: public_input.proto does not compile"
    assert lines[1] == 'cell line 4, column 35: Expected ";".'
    assert lines[2] == "  4 | message Request { string name = 1 }"
    caret = lines[3]
    assert caret.endswith("^") and caret.index("^") == lines[2].index("}")
    # and that really is line 4 of the cell (line 1 is the magic)
    assert CELLS["syntax"].splitlines()[3] == "message Request { string name = 1 }"


def test_unknown_type_is_located_too(ran):
    _, cells = ran
    cell, text = cells["unknown"]
    assert _error(cell).ename == "ProtoError"
    assert re.search(r"cell line 6, column \d+: .*Resp", text), text
    assert "  6 | service Entrypoint" in text


def test_a_failed_proto_cell_keeps_the_previous_proto(ran):
    _, cells = ran
    assert cells["kept"][1].strip() == "['DESCRIPTOR', 'Request', 'Response'] x"


def test_unknown_variables_get_one_line_with_a_suggestion(ran):
    _, cells = ran
    text = cells["missing"][1]
    assert text.strip() == "UsageError: no variable 'vv' in this notebook; did you mean 'v'?"
    text = cells["wrong_type"][1]
    assert text.strip() == (
        "UsageError: 'not_a_version' is not a krtlab Version (type int); Versions here: v"
    )
    assert "the cell is empty" in cells["empty"][1]


def test_validate_shows_the_report(ran):
    _, cells = ran
    cell, text = cells["validate"]
    assert text.strip() == "greeter-v1: valid, no findings"
    assert any("text/html" in o.get("data", {}) for o in cell.outputs)


def test_run_returns_the_result_from_json_or_a_python_expression(ran):
    _, cells = ran
    text = cells["run"][1]
    assert "<RunResult PyGreet (py-greeting) ok" in text
    assert '"greeting": "Hello Ann!"' in text
    assert cells["run_expr"][1].strip() == "True Hello Bo!"


def test_run_errors_are_short(ran):
    _, cells = ran
    cell, text = cells["run_bad_rpc"]
    assert _error(cell).ename == "SpecError" and "PyGreet" in text and "Traceback" not in text
    text = cells["run_bad_request"][1]
    assert text.startswith("UsageError: REQUEST is neither JSON")


def test_export_writes_the_folder_and_the_krt(ran):
    workdir, cells = ran
    text = cells["export"][1]
    assert "exported greeter-v1 (v) to out (5 files)" in text
    assert "built out/../greeter-v1.krt" in text
    assert krt.load(workdir / "out").validate().ok
    assert krt.load(workdir / "greeter-v1.krt").name == "greeter-v1"


def test_export_of_an_invalid_version_shows_the_report_and_writes_nothing(ran):
    workdir, cells = ran
    cell, text = cells["invalid"]
    assert _error(cell).ename == "ValidationError"
    assert text.startswith("ValidationError: bad-v1: ") and "error:" in text
    assert text.rstrip().endswith("nothing written")
    assert not (workdir / "bad-out").exists()


def test_export_refuses_hand_edits_unless_forced(ran):
    workdir, cells = ran
    cell, text = cells["refuse"]
    assert _error(cell).ename == "OverwriteError" and "krt.yml" in text and "--force" in text
    assert "exported greeter-v1" in cells["force"][1]
    assert "# mine" not in (workdir / "out" / "krt.yml").read_text()


def test_name_renames_the_public_proto(ran):
    _, cells = ran
    assert cells["rename_proto"][1].startswith("other.proto: Request, Response")
    assert cells["rename_files"][1].strip() == "['other.proto']"


def test_unload_and_reload(ran):
    _, cells = ran
    assert "UsageError: Line magic function `%krt_validate` not found" in cells["gone"][1]
    assert "greeter-v1: valid" in cells["reload"][1]
