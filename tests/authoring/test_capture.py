"""capture(): what ends up in an exported node module, for functions written in a script/module."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import linecache
import math
import os
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import pytest

from krtlab.authoring.capture import Captured, capture, location
from krtlab.authoring.capture_source import (
    Ref,
    class_source,
    function_source,
    rewrite,
    scan,
    statement_source,
)
from krtlab.errors import CaptureError

DATA = Path(__file__).parent / "data"
NODES_PY = DATA / "capture_nodes.py"


@pytest.fixture(scope="module")
def nodes():
    spec = importlib.util.spec_from_file_location("capture_nodes", NODES_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["capture_nodes"] = module  # classes are found through their module's file
    spec.loader.exec_module(module)
    yield module
    del sys.modules["capture_nodes"]


def mark(name: str) -> int:
    """Line number of the ``# mark: name`` comment in capture_nodes.py."""
    lines = NODES_PY.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# mark: {name}"))


def def_names(captured: Captured) -> list[str]:
    """Top-level names the definitions bind, in order."""
    names = []
    for block in captured.definitions:
        for stmt in ast.parse(block).body:
            if isinstance(stmt, ast.Assign):
                names += [t.id for t in stmt.targets]
            else:
                names.append(stmt.name)
    return names


def module_text(captured: Captured) -> str:
    return captured.import_block() + "\n\n\n" + "\n\n\n".join(captured.definitions) + "\n"


def run_module(captured: Captured) -> dict:
    """Execute the captured code as a module and return its namespace."""
    ns: dict = {}
    exec(compile(module_text(captured), "exported.py", "exec"), ns)
    return ns


# ---- imports ---------------------------------------------------------------------------------


def test_imports_use_the_users_names_and_shortest_public_paths(nodes):
    cap = capture([nodes.uses_imports], node="imports")
    assert cap.imports == (
        "from __future__ import annotations",
        "import functools",
        "import json",
        "import math",
        "import os.path as osp",
        "from concurrent.futures import ThreadPoolExecutor",  # defined in concurrent.futures.thread
        "from io import StringIO",  # defined in _io
        "from json import JSONDecoder",  # defined in json.decoder
        "from math import sqrt as square_root",
        "from os import getcwd",  # defined in posix
    )
    assert cap.modules == {"concurrent", "functools", "io", "json", "math", "os"}
    assert cap.protos == frozenset()
    ns = run_module(cap)
    assert ns["uses_imports"](nodes.Request(name="/a/b.txt")).startswith('["b.txt", 3.14159')


def test_only_what_the_root_uses_transitively(nodes):
    cap = capture([nodes.uses_helpers], node="helpers")
    assert def_names(cap) == ["clamp", "score", "uses_helpers"]  # dependencies first, root last
    text = module_text(cap)
    assert "unused_helper" not in text and "UNUSED_CONSTANT" not in text
    assert cap.roots == ("uses_helpers",)
    line = nodes.clamp.__code__.co_firstlineno
    assert cap.names["clamp"].endswith(f"capture_nodes.py, line {line}")
    assert cap.where == cap.names["uses_helpers"]
    assert run_module(cap)["uses_helpers"](nodes.Request(amount=0.5)) == pytest.approx(
        nodes.uses_helpers(nodes.Request(amount=0.5))
    )


def test_a_function_used_under_two_names_is_defined_once(nodes):
    cap = capture([nodes.uses_alias], node="alias")
    assert def_names(cap) == ["clamp", "limit", "uses_alias"]
    # the user's own statement, comment included
    assert "limit = clamp  # the same function under a second name" in cap.definitions
    assert run_module(cap)["uses_alias"](nodes.Request(amount=3)) == (1.0, 1.0)


def test_classes_and_dataclasses_come_with_their_imports_and_constants(nodes):
    cap = capture([nodes.uses_classes], node="classes")
    assert def_names(cap) == ["RATES", "LABELS", "Quote", "Labeler", "uses_classes"]
    assert "from dataclasses import dataclass, field" in cap.imports
    assert "@dataclass\nclass Quote:" in module_text(cap)
    result = run_module(cap)["uses_classes"](nodes.Request(amount=10, currency="EUR"))
    assert result == (9.2, "low")


def test_constants_round_trip_including_nan_and_infinities(nodes):
    cap = capture([nodes.uses_constants], node="constants")
    block = cap.definitions[0]
    assert 'MISSING = float("nan")' in block
    assert 'LIMITS = (-float("inf"), 0, float("inf"))' in block
    assert "SIZES = frozenset({1, 2, 3})" in block  # sorted: same text on every run
    assert all(len(line) <= 100 for line in block.splitlines())  # BIG is wrapped
    rates, missing, labels, greeting, limits, sizes, big = run_module(cap)["uses_constants"](None)
    assert (rates, labels, greeting, limits, sizes, big) == (
        nodes.RATES, nodes.LABELS, nodes.GREETING, nodes.LIMITS, nodes.SIZES, nodes.BIG
    )  # fmt: skip
    assert list(rates) == list(nodes.RATES)  # dict order kept
    assert math.isnan(missing)


# ---- protobuf --------------------------------------------------------------------------------


def test_proto_namespaces_and_message_classes(nodes):
    cap = capture([nodes.uses_protos], node="protos")
    assert cap.imports[1:] == (
        "import public_input_pb2 as pb",
        "from public_input_pb2 import Color, Response",  # a message and an enum
        "from public_input_pb2 import Request as Req",
    )
    # nested types (messages, enums) go through their top-level class
    assert cap.definitions[0] == "Kind = Req.Kind\nItem = Req.Item"
    assert cap.protos == {"public_input_pb2"} and cap.modules == frozenset()
    # the handler generator asks for more message names without clashing with the user's
    assert cap.import_name_for(nodes.Response) == "Response"
    assert cap.import_name_for(nodes.Request) == "Req"
    assert cap.import_name_for(nodes.Request.Item) == "Req.Item"


def test_import_name_for_adds_an_import_or_reuses_a_namespace(nodes):
    cap = capture([nodes.decorated], node="decorated")
    assert cap.import_name_for(nodes.Request) == "pb.Request"
    cap = capture([nodes.uses_helpers], node="helpers")
    assert cap.import_name_for(nodes.Request) == "Request"
    assert cap.imports[-1] == "from public_input_pb2 import Request"
    assert cap.protos == {"public_input_pb2"}
    with pytest.raises(CaptureError) as info:
        cap.import_name_for(dict)
    assert str(info.value) == "node 'helpers': <class 'dict'> is not a protobuf message class"
    assert info.value.node == "helpers"


# ---- decorators, annotations and scoping -----------------------------------------------------


def test_krtlab_decorators_are_dropped_and_others_kept(nodes):
    cap = capture([nodes.decorated, nodes.decorated_setup], node="decorated")
    text = module_text(cap)
    assert "@v.node" not in text and "@decorated.init" not in text
    assert text.count("async def decorated(ctx, req: pb.Request) -> pb.Response:") == 1
    assert cap.roots == ("decorated", "decorated_setup")
    cap = capture([nodes.uses_imports], node="imports")
    assert "@functools.lru_cache(maxsize=8)\ndef parse(text):" in module_text(cap)


def test_wrapped_nodes_are_captured_as_their_function(nodes):
    wrapper = nodes.FakeNode(nodes.uses_helpers)
    assert capture([wrapper], node="helpers") == capture([nodes.uses_helpers], node="helpers")


def test_scoping_keeps_locals_out(nodes):
    cap = capture([nodes.scoping], node="scoping")
    assert def_names(cap) == [
        "LABELS",
        "GREETING",
        "LIMIT_IN_INNER",
        "LABELS_IN_METHOD",
        "scoping",
    ]  # fmt: skip  (constants in the order the module binds them)
    assert cap.imports == ("from __future__ import annotations", "from typing import Optional")


def test_krtlab_names_in_annotations_are_dropped(nodes):
    cap = capture([nodes.annotated], node="annotated")
    text = module_text(cap)
    assert "FakeNode" in text and "class FakeNode" not in text  # annotation left as written
    assert def_names(cap) == ["Quote", "annotated"]  # the string annotation "Quote" is a class
    ns = run_module(cap)
    assert ns["annotated"](None, None, None) is None  # annotations are never evaluated


def test_reserved_names_are_renamed_with_their_uses(nodes):
    cap = capture([nodes.calls_reserved], node="reserved")
    text = module_text(cap)
    assert "def user_handler(req):" in text and "def user_init(ctx):" in text
    assert "return user_handler(req), user_init(ctx), obj.handler, dict(handler=2)" in text
    assert "handler=1" in text
    assert def_names(cap) == ["user_handler", "user_init", "calls_reserved"]
    # an init root may keep its name: it is the runner's entry point
    cap = capture([nodes.uses_helpers, nodes.init], node="n", keep=[nodes.init])
    assert cap.roots == ("uses_helpers", "init")


def test_functions_defined_inside_a_function_take_their_closure_along(nodes, monkeypatch):
    made = nodes.make_node("Hi")  # a krtlab node wrapper around the inner function
    cap = capture([made], node="made")
    assert "local_v" not in module_text(cap)  # the node decorator, a local of make_node
    assert def_names(cap) == ["suffix", "greeting", "helper", "made"]
    assert cap.definitions[0] == 'suffix = "!"\ngreeting = "Hi"'
    assert cap.definitions[-1].startswith("def made(req: pb.Request) -> pb.Response:\n")
    monkeypatch.setitem(sys.modules, "public_input_pb2", nodes.pb)
    ns = run_module(cap)
    assert ns["made"](nodes.Request(name="Ann")).text == "Hi Ann!"
    with pytest.raises(CaptureError, match="nonlocal"):
        capture([nodes.make_counter()], node="counter")


def test_capture_is_deterministic(nodes):
    first = capture([nodes.uses_imports, nodes.uses_classes], node="n")
    second = capture([nodes.uses_imports, nodes.uses_classes], node="n")
    assert first == second and first.imports == second.imports


# ---- what cannot be exported -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "statement", "expected"),
    [
        ("uses_lambda", "scale = lambda x: x * 2", 6),
        ("uses_bad_helper", "scale = lambda x: x * 2", 6),
        ("uses_instance", "MODEL = Labeler(1)", "mid"),
        ("uses_dynamic_class", 'Dynamic = type("Dynamic", (), {})', "Dynamic"),
        ("uses_unliteral", "UNLITERAL = [1, Labeler(2)]", 2),
    ],
)
def test_values_without_source_form_are_captured_as_their_statement(
    nodes, func, statement, expected
):
    cap = capture([getattr(nodes, func)], node="n")
    lines = module_text(cap).splitlines()
    assert any(line.startswith(statement) for line in lines)  # the user's statement, as written
    answer = run_module(cap)[func](nodes.Request(amount=3))
    if func == "uses_dynamic_class":
        assert type(answer).__name__ == expected
    elif func == "uses_unliteral":
        assert answer[0] == 1 and type(answer[1]).__name__ == "Labeler"
    else:
        assert answer == expected


def test_values_that_cannot_travel_are_refused(nodes):
    with pytest.raises(CaptureError) as info:
        capture([nodes.uses_live_object], node="bad-node")
    err = info.value
    where = f"capture_nodes.py, line {mark('uses_live_object')}"
    assert (err.node, err.name) == ("bad-node", "LOG")
    assert err.where.endswith(where)
    assert "'LOG'" in str(err) and "'bad-node'" in str(err) and where in str(err)
    assert "it is an open file; open it inside the function" in str(err)
    assert "v.asset(" in err.reason and "ctx.path(" in err.reason
    with pytest.raises(CaptureError, match="krtlab is not installed on the runner") as info:
        capture([nodes.uses_krtlab], node="bad-node")
    assert info.value.where.endswith(f"capture_nodes.py, line {mark('uses_krtlab')}")


def test_modules_the_runner_shadows_are_refused(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("VALUE = 1\n")
    (tmp_path / "shadowed_nodes.py").write_text(
        "import config\n\n\ndef node(req):\n    return config.VALUE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "config", raising=False)
    module = importlib.import_module("shadowed_nodes")
    try:
        with pytest.raises(CaptureError, match="runner has its own module 'config'") as info:
            capture([module.node], node="n")
        assert info.value.where.endswith("shadowed_nodes.py, line 5")
    finally:
        del sys.modules["shadowed_nodes"], sys.modules["config"]


def test_undefined_names_are_reported_with_their_line(nodes):
    with pytest.raises(CaptureError) as info:
        capture([nodes.uses_undefined], node="n")
    message = str(info.value)
    assert message.startswith("name 'NOT_DEFINED' used by node 'n' (")
    assert message.endswith(f"capture_nodes.py, line {mark('uses_undefined')}) is not defined")
    assert (info.value.node, info.value.name) == ("n", "NOT_DEFINED")


def test_roots_must_be_top_level_defs(nodes):
    with pytest.raises(CaptureError, match="top level"):
        capture([nodes.scale], node="n")
    with pytest.raises(CaptureError, match="nothing to capture"):
        capture([], node="n")


# ---- a script run as __main__ ----------------------------------------------------------------


def test_script_run_as_main(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """\
            import sys
            from dataclasses import dataclass

            from krtlab.authoring.capture import capture
            from krtlab.errors import CaptureError


            @dataclass
            class Point:
                x: int = 0


            def node(req):
                return Point(req)


            def broken(req):
                return model.predict(req)


            model = (line for line in open(__file__))
            print("\\n\\n\\n".join(capture([node], node="n").definitions))
            try:
                capture([broken], node="n")
            except CaptureError as exc:
                print("ERROR", exc.where)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert "@dataclass\nclass Point:\n    x: int = 0\n\n\ndef node(req):" in out
    assert out.strip().endswith("ERROR train.py, line 18")  # the use; the message says why


# --- the capture corpus, in this process --------------------------------------------------------
# test_capture_corpus.py sends every pattern through a real kernel and the kre-py harness (slow,
# out of process). Here the same patterns run as scripts in this interpreter: exported without the
# validation step, loaded back from the folder and run, so every mutation of capture shows as a
# wrong answer, a failed import or a refusal that no longer names the line.

from tests.authoring.corpus import PATTERNS, notebook_cells, script_text  # noqa: E402

SCRIPTED = [p for p in PATTERNS if not p.notebook_only]


def _script_line(p, cell: int, line: int) -> int:
    """Line of ``script.py`` that line ``line`` of pattern cell ``cell`` lands on."""
    cells = notebook_cells(p)
    return "\n\n".join(cells[: cell + 1]).count("\n") + 2 + line


@pytest.fixture
def scripted(tmp_path, monkeypatch):
    """Run a pattern as ``script.py`` in this process; forget its modules afterwards."""
    from krtlab.authoring.script import pick_version, run_script

    before = set(sys.modules)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def run(p):
        for rel, text in p.files.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
        (tmp_path / "script.py").write_text(script_text(p, "answer.json"))
        name = f"corpus_{p.name.replace('-', '_')}"
        module = run_script(tmp_path / "script.py", module_name=name)
        return pick_version(vars(module), None, source="script.py")[1]

    yield run
    for name in set(sys.modules) - before:  # the script and its local modules, not numpy
        file = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith("corpus_") or file.startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.mark.parametrize("p", [p for p in SCRIPTED if p.refuse is None], ids=lambda p: p.name)
def test_corpus_pattern_exports_and_answers_like_the_script(scripted, tmp_path, p):
    import json

    from google.protobuf.json_format import MessageToDict

    import krtlab as krt
    from krtlab.bundle.write import export_dir

    v = scripted(p)
    answer = json.loads((tmp_path / "answer.json").read_text())
    if p.expect is not None:
        assert answer == p.expect
    out = export_dir(v.project(), tmp_path / "exported")
    main = (out / "src" / "n" / "main.py").read_text()
    compile(main, "main.py", "exec")
    assert "krtlab" not in main.split('"""', 2)[2] and "pickle" not in main
    got = krt.load(out).run("Go", **p.request)
    assert MessageToDict(got.response, preserving_proto_field_name=True) == answer


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the patterns' own open files
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("p", [p for p in SCRIPTED if p.refuse is not None], ids=lambda p: p.name)
def test_corpus_pattern_refused_with_the_script_line(scripted, tmp_path, p):
    import re

    from krtlab.errors import KrtlabError

    v = scripted(p)
    # capture refuses most; a module the runner image lacks is a validation error of export
    with pytest.raises(KrtlabError) as info:
        v.export(tmp_path / "exported")
    assert not (tmp_path / "exported").exists()
    message = " ".join(str(info.value).split())
    assert re.search(p.refuse, message), message
    if p.refuse_at is not None:
        assert f"script.py, line {_script_line(p, *p.refuse_at)}" in message, message


_FROM_FILE = (
    'the runner has no such file. Attach the file with v.asset("data/...", "path/here"), load '
    'it in init(ctx) from ctx.path("data/...") and keep it with ctx.set(...)'
)
_CHANGED = (
    "the runner would only re-run the first. Make the change part of the statement that creates "
    "it (or do it in init(ctx) with ctx.set(...)) and export again"
)
#: pattern -> (the whole message, the line it points at): what a user reads, word for word
EXACT_REFUSALS = {
    "refuse-mutated-attribute": (
        "cannot export 'TOK', used by node 'n' (script.py, line 33): it is made by script.py, "
        "line 25 (`TOK = Tokenizer()`), and script.py, line 28 may change it afterwards "
        f"(`TOK.lower = False`); {_CHANGED}",
        "script.py, line 28",
    ),
    "refuse-fitted-model": (
        "cannot export 'MODEL', used by node 'n' (script.py, line 32): it is made by script.py, "
        "line 26 (`MODEL = Model()`), and script.py, line 27 may change it afterwards "
        f"(`MODEL.fit([1.0, 2.0, 6.0])`); {_CHANGED}",
        "script.py, line 27",
    ),
    "refuse-reads-file": (
        "cannot export 'PRICES', used by node 'n' (script.py, line 23): it is made by script.py, "
        "line 18 (`PRICES = np.loadtxt('prices.txt')`), which reads np.loadtxt(...) from a file "
        f"beside the notebook; {_FROM_FILE}",
        "script.py, line 18",
    ),
    "refuse-depends-on-refused": (
        "cannot export 'SCALED', used by node 'n' (script.py, line 24): it is made by script.py, "
        "line 19 (`SCALED = BASE * 2`) from 'BASE', which cannot be exported: it is made by "
        "script.py, line 18 (`BASE = np.loadtxt('prices.txt')`), which reads np.loadtxt(...) "
        f"from a file beside the notebook; {_FROM_FILE}",
        "script.py, line 18",
    ),
}


@pytest.mark.parametrize("name", sorted(EXACT_REFUSALS))
def test_corpus_refusal_messages_word_for_word(scripted, name):
    p = next(p for p in SCRIPTED if p.name == name)
    v = scripted(p)
    with pytest.raises(CaptureError) as info:
        v.project()
    message, where = EXACT_REFUSALS[name]
    assert str(info.value) == message
    assert (info.value.name, info.value.node, info.value.where) == (
        message[15:].split("'")[0],
        "n",
        where,
    )


# ---- constants: written as literals, wrapped to 100 columns, at most 100,000 characters ---------

LONG = "A_CONSTANT_WITH_A_NAME_OF_SIXTY_CHARACTERS_FOR_THE_WRAP_RULE"
CONSTANTS_PY = f"""\
ROW = [10] + [1] * 30
ROWS = [10] + [1] * 30
{LONG} = [10] + [1] * 12
{LONG[:-1]}Z_ = [10, 10] + [1] * 11
FITS = "x" * 99_998
TOO_BIG = "x" * 99_999


def rows(req):
    return ROW, ROWS, {LONG}, {LONG[:-1]}Z_


def fits(req):
    return FITS


def too_big(req):
    return TOO_BIG
"""


@pytest.fixture
def constants(tmp_path, monkeypatch):
    (tmp_path / "capture_constants.py").write_text(CONSTANTS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_constants")
    yield module
    del sys.modules["capture_constants"]


def test_constants_fill_a_line_of_100_columns_then_wrap(constants):
    assert len(LONG) == 60
    ones = ", ".join(["1"] * 30)
    assert (
        capture([constants.rows], node="n").definitions[0]
        == "\n".join(
            [
                f"ROW = [10, {ones}]",  # 100 columns
                "ROWS = [",  # 101 would be one too many
                "    10, " + ", ".join(["1"] * 28) + ",",  # filled to 93 - 4 columns
                "    1, 1,",
                "]",
                f"{LONG} = [10, {', '.join(['1'] * 12)}]",  # a long name still gets 40 columns
                f"{LONG[:-1]}Z_ = [",
                "    10, 10, " + ", ".join(["1"] * 9) + ",",
                "    1, 1,",
                "]",
            ]
        )
    )
    assert len(f"ROW = [10, {ones}]") == 100


def test_constants_up_to_100000_characters_are_inlined(constants):
    text = capture([constants.fits], node="n").definitions[0]
    assert text == "FITS = " + repr("x" * 99_998).replace("'", '"')
    with pytest.raises(CaptureError) as info:
        capture([constants.too_big], node="n")
    assert info.value.name == "TOO_BIG"
    assert info.value.reason == (
        "its value is too large to inline (100001 characters); save it to a file, attach it as "
        "an asset and load it in init(ctx) with ctx.path()"
    )
    assert info.value.where.endswith("capture_constants.py, line 18")  # where it is used


def test_imports_added_for_the_generated_code_take_free_names():
    from krtlab.authoring.handler_py import ImportLine

    records = frozenset({ImportLine("numpy", "", "np"), ImportLine("os.path")})
    c = Captured("n", ("sys = 2\nx = 1",), _records=records)
    assert c.module_name_for("sys") == "sys_2"  # the node's code binds `sys` already
    assert c.module_name_for("sys") == "sys_2"  # added once
    assert c.module_name_for("json") == "json"
    assert c.module_name_for("xml.etree") == "etree"
    assert c.module_name_for("numpy") == "np"  # the node's own import, as it is
    assert c.module_name_for("os.path") == "os.path"  # `import os.path` binds `os`
    assert c.module_name_for("os") == "os_2"
    assert c.module_name_for("handler") == "handler_2"  # the runner's entry points
    assert c.imports == (
        "import json",
        "import os as os_2",
        "import os.path",
        "import sys as sys_2",
        "import xml.etree as etree",
        "import handler as handler_2",
        "import numpy as np",
    )


def test_a_module_added_for_the_generated_code_is_named_by_its_last_part():
    c = Captured("n", ("ElementTree = 1",))
    assert c.module_name_for("xml.etree.ElementTree") == "ElementTree_2"
    assert c.imports == ("import xml.etree.ElementTree as ElementTree_2",)


def test_fresh_names_count_from_2():
    from krtlab.authoring.capture_common import _fresh

    assert _fresh("x", set()) == "x"
    assert _fresh("x", {"x"}) == "x_2"
    assert _fresh("x", {"x", "x_2", "x_3"}) == "x_4"
    assert _fresh("x", {"x", *(f"x_{i}" for i in range(2, 1200))}) == "x_1200"


def test_statement_snippets_in_messages_stop_at_60_characters():
    from krtlab.authoring.capture_common import _snippet
    from tests.authoring.test_capture_history import history

    def snippet(code):
        return _snippet(history(code).binding("X").stmt)

    sixty = "X = " + "f" * 54 + "()"
    assert len(sixty) == 60 and snippet(sixty) == sixty
    assert snippet(sixty + "\nY = 1") == sixty
    assert snippet("X = " + "f" * 55 + "()") == "X = " + "f" * 53 + "..."
    assert snippet("X = [\n    1,\n]") == "X = [1]"  # as one line


# ---- which names a block takes from the module's globals (capture_source.scan) -----------------


def _globals_of(code: str, *, stores: bool = False) -> list[tuple]:
    from krtlab.authoring.capture_source import scan, statement_source

    refs = scan(statement_source("f", textwrap.dedent(code), "nodes.py", 1), stores=stores)
    return [(r.name, r.line, r.col, r.annotation, r.store, r.global_stmt, r.deferred) for r in refs]


def test_scan_comprehensions_bind_their_targets_and_read_the_first_iterable_outside():
    assert _globals_of("def f():\n    return [y for x in A for y in x if y > B]\n") == [
        ("A", 2, 23, False, False, False, True),  # once: in the function, not the comprehension
        ("B", 2, 43, False, False, False, True),
    ]
    assert _globals_of("def f():\n    return {x: y for x in A for y in B}\n") == [
        ("A", 2, 26, False, False, False, True),
        ("B", 2, 37, False, False, False, True),  # a later iterable, in the comprehension
    ]


def test_scan_walrus_binds_in_the_enclosing_function_or_module():
    assert _globals_of("def f():\n    [y := x for x in A]\n    return y\n") == [
        ("A", 2, 21, False, False, False, True),  # y is the function's local
    ]
    # at the top level of a statement, := binds a module name: renamed with the statement's
    assert _globals_of("T = [last := x for x in A]\n", stores=True) == [
        ("T", 1, 0, False, True, False, False),
        ("last", 1, 5, False, True, False, False),
        ("A", 1, 24, False, False, False, False),
    ]


def test_scan_global_statements_lambdas_classes_annotations_and_handlers():
    code = """\
        def f():
            global G
            G = 1
            return lambda: H
        """
    assert _globals_of(code) == [
        ("G", 2, -1, False, True, True, False),  # the `global` statement: renamed by token
        ("G", 3, 4, False, True, False, False),
        ("H", 4, 19, False, False, False, True),
    ]
    code = """\
        class K:
            A = 1

            def m(self) -> None:
                x: T = A  # the class's A is not visible here
                return x
        """
    assert _globals_of(code) == [
        ("T", 5, 11, True, False, False, True),
        ("A", 5, 15, False, False, False, True),
    ]
    code = """\
        def f(value):
            try:
                pass
            except E as e:
                return e
            match value:
                case [*rest]:
                    return rest
                case {**others}:
                    return others
                case _:
                    pass
            try:
                pass
            except F:
                pass
        """
    assert _globals_of(code) == [
        ("E", 4, 11, False, False, False, True),
        ("F", 15, 11, False, False, False, True),
    ]
    assert _globals_of("F = lambda: H\n") == [("H", 1, 12, False, False, False, True)]


def test_a_statement_that_does_not_parse_is_refused_with_its_line():
    from krtlab.authoring.capture_source import statement_source

    for text in ["X = (\n", "# only a comment\n"]:
        with pytest.raises(CaptureError) as info:
            statement_source("X", text, "nodes.py", 3)
        assert str(info.value) == "cannot read the statement that defines 'X' (nodes.py, line 3)"
        assert (info.value.name, info.value.where) == ("X", "nodes.py, line 3")


def test_renaming_a_global_changes_each_global_statement_on_its_own_line():
    from krtlab.authoring.capture_source import rewrite, scan, statement_source

    text = "def f():\n    global A, B\n    global B\n    B = A\n"
    source = statement_source("f", text, "nodes.py", 1)
    assert rewrite(source, scan(source), {"B": "B_2"}, []) == (
        "def f():\n    global A, B_2\n    global B_2\n    B_2 = A"
    )


# ---- nested protobuf types and names two roots would both need --------------------------------

PROTO_USERS_PY = """\
from fractions import Fraction

from capture_nodes import Kind, Request as Message

Request = 5
Item = Message.Item
Response = 3


def node(req):
    return Request, Item(x=1), Kind.Name(0)


def uses_response(req):
    return Response


for _k in range(1):  # no single statement made TYPES: written back from its value
    TYPES = {0: Message, 1: Fraction}
Request_2 = 7


def uses_types(req):
    return Item, TYPES


def uses_request_2(req):
    return Request_2
"""


@pytest.fixture
def proto_users(nodes, tmp_path, monkeypatch):
    (tmp_path / "proto_users.py").write_text(PROTO_USERS_PY)
    (tmp_path / "proto_other.py").write_text("Item = 3\n\n\ndef uses_item(req):\n    return Item\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("proto_users"), importlib.import_module("proto_other")
    del sys.modules["proto_users"], sys.modules["proto_other"]


def test_nested_proto_types_import_their_top_level_class_under_a_free_name(proto_users):
    users, _ = proto_users
    cap = capture([users.node], node="n")
    # the script's `Request` is 5: the message class it reaches Item through becomes Request_2
    assert cap.imports == (
        "from __future__ import annotations",
        "from public_input_pb2 import Request as Request_2",
    )
    assert cap.definitions == (
        "Item = Request_2.Item\nKind = Request_2.Kind\nRequest = 5",
        "def node(req):\n    return Request, Item(x=1), Kind.Name(0)",
    )


def test_a_value_written_back_names_the_message_class_a_nested_type_is_reached_through(
    nodes, proto_users, monkeypatch
):
    users, _ = proto_users
    monkeypatch.setitem(sys.modules, "public_input_pb2", nodes.pb)
    cap = capture([users.uses_types], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "from fractions import Fraction",
        "from public_input_pb2 import Request",
    )
    assert cap.definitions == (
        "Item = Request.Item\nTYPES = {0: Request, 1: Fraction}",
        "def uses_types(req):\n    return Item, TYPES",
    )
    # the import Item needs took the name Request_2 first (where Item is used, line 11)
    with pytest.raises(CaptureError) as info:
        capture([users.node, users.uses_request_2], node="n")
    assert str(info.value) == (
        f"cannot export 'Request_2', used by node 'n' ({location(users.__file__, 28)}): the "
        "exported module would need this name for two different objects (also used at "
        f"{location(users.__file__, 11)}); rename one of them"
    )


def test_a_name_two_roots_need_for_different_objects_is_refused(nodes, proto_users):
    users, other = proto_users
    start = nodes.uses_protos.__code__.co_firstlineno
    for root, name, line, first in [
        (users.uses_response, "Response", 15, 0),  # a message class, in the def line
        (other.uses_item, "Item", 5, 2),  # a nested type: Request.Item
    ]:
        with pytest.raises(CaptureError) as info:
            capture([nodes.uses_protos, root], node="n")
        message = str(info.value)
        where = f"{Path(root.__code__.co_filename).name}, line {line}"
        assert message.startswith(f"cannot export {name!r}, used by node 'n' (")
        assert message.endswith(
            f"{where}): the exported module would need this name for two different objects "
            f"(also used at {location(nodes.__file__, start + first)}); rename one of them"
        )
        assert (info.value.name, info.value.where.endswith(where)) == (name, True)


def test_a_library_object_is_imported_from_its_shortest_public_module(monkeypatch):
    import types

    from krtlab.authoring.capture_imports import Imports

    imports = Imports()
    imports.home = {"capture_home": {}}  # a module whose objects are captured as source

    class K:
        pass

    K.__qualname__ = "K"  # a top-level class of its module

    def fake(name, **attrs):
        module = types.ModuleType(name)
        vars(module).update(attrs)
        monkeypatch.setitem(sys.modules, name, module)

    K.__module__ = "pkgx._impl.core"
    fake("pkgx")
    fake("pkgx._impl", K=K)
    fake("pkgx._impl.core", K=K)
    assert imports._importable(K) == ("pkgx._impl.core", "K")  # no private package in between
    fake("pkgx", K=K)
    assert imports._importable(K) == ("pkgx", "K")
    K.__module__ = "_Xfoo"  # like _io -> io
    fake("Xfoo", K=K)
    fake("foo", K=K)
    assert imports._importable(K) == ("Xfoo", "K")
    for module in ["__main__", "capture_home"]:  # the notebook or script itself
        K.__module__ = module
        monkeypatch.setattr(sys.modules.setdefault(module, types.ModuleType(module)), "K", K,
                            raising=False)  # fmt: skip
        assert imports._importable(K) is None
    K.__module__ = None
    assert imports._importable(K) is None
    assert imports._importable(len) == ("builtins", "len")


# ---- decorators and the user's own defs and classes -----------------------------------------

DEFS_PY = """\
import functools


class Wrapper:
    # like krtlab's node wrapper (it has __krt_node__), from a module that is not krtlab

    __krt_node__ = True

    def __init__(self, fn):
        self.__wrapped__ = fn

    def __call__(self, *args):
        return self.__wrapped__(*args)

    def init(self, fn):
        return fn


@Wrapper
def node(req):
    return helper(req)


@node.init
def setup(ctx):
    return 2


@(lambda fn: fn)
def helper(req):
    return req


def make():
    deco = functools.lru_cache

    @functools.lru_cache(maxsize=2)
    def kept(x):
        return x

    @deco
    def lost(x):
        return x

    def inner(req):
        return kept(req)

    def broken(req):
        return lost(req)

    return inner, broken


def countdown(req):
    return step(req)


# one step down
def step(req):
    return countdown(req - 1) if req else 0


# How loud the node is.
class Settings:
    level = 1


def uses_settings(req):
    return Settings.level
"""


@pytest.fixture
def defs(tmp_path, monkeypatch):
    (tmp_path / "capture_defs.py").write_text(DEFS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("capture_defs")
    del sys.modules["capture_defs"]


def test_decorators_of_node_wrappers_are_dropped_and_others_kept(defs):
    cap = capture([defs.node, defs.setup], node="n")  # Wrapper has __krt_node__, like krtlab's
    assert cap.definitions == (
        "@(lambda fn: fn)\ndef helper(req):\n    return req",  # no name to start from: kept
        "def node(req):\n    return helper(req)",
        "def setup(ctx):\n    return 2",
    )
    lines = [location(defs.__file__, n) for n in range(32)]
    assert cap.origins == (tuple(lines[29:32]), tuple(lines[20:22]), tuple(lines[25:27]))
    inner, broken = defs.make()
    cap = capture([inner], node="n")  # a def inside a function, decorated with a global
    assert cap.definitions == (
        "@functools.lru_cache(maxsize=2)\ndef kept(x):\n    return x",
        "def inner(req):\n    return kept(req)",
    )
    with pytest.raises(CaptureError) as info:  # ... or with a local of that function
        capture([broken], node="n")
    assert str(info.value) == (
        f"name 'deco' used by node 'n' ({location(defs.__file__, 41)}) is not defined"
    )


def test_own_defs_and_classes_are_their_def_statements(defs):
    cap = capture([defs.countdown], node="n")  # each calls the other
    assert cap.definitions == (  # a def is its block alone, a class has its comments too
        "def step(req):\n    return countdown(req - 1) if req else 0",
        "def countdown(req):\n    return step(req)",
    )
    cap = capture([defs.uses_settings], node="n")
    assert cap.definitions == (
        "# How loud the node is.\nclass Settings:\n    level = 1",  # the comment above, too
        "def uses_settings(req):\n    return Settings.level",
    )
    assert cap.names["Settings"] == location(defs.__file__, 63)


def test_roots_from_two_modules_may_share_a_constant_only_if_it_is_the_same(tmp_path, monkeypatch):
    (tmp_path / "limits_a.py").write_text("LIMIT = 5\n\n\ndef node(req):\n    return LIMIT\n")
    (tmp_path / "limits_b.py").write_text("LIMIT = 4\n\n\ndef setup(ctx):\n    return LIMIT\n")
    (tmp_path / "limits_c.py").write_text("LIMIT = 5\n\n\ndef setup(ctx):\n    return LIMIT\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b, c = (importlib.import_module(f"limits_{x}") for x in "abc")
    try:
        cap = capture([a.node, c.setup], node="n")
        assert cap.definitions == (
            "LIMIT = 5",
            "def node(req):\n    return LIMIT",
            "def setup(ctx):\n    return LIMIT",
        )
        with pytest.raises(CaptureError) as info:  # was: setup silently got LIMIT = 5
            capture([a.node, b.setup], node="n")
        assert str(info.value) == (
            f"cannot export 'LIMIT', used by node 'n' ({location(b.__file__, 5)}): the exported "
            "module would need this name for two different objects (also used at "
            f"{location(a.__file__, 5)}); rename one of them"
        )
    finally:
        for x in "abc":
            del sys.modules[f"limits_{x}"]


CHANGED_PY = """\
import re

WORD = re.compile("[a-z]+")
WORD.fullmatch("text")  # a pattern never changes


class Box:
    def __init__(self):
        self.items = []

    def put_everything(self, *values):
        self.items.extend(values)


BOX = Box()
BOX.put_everything("first value", "second value", "third value", "fourth")


def words(req):
    return WORD.findall(req)


def box(req):
    return BOX.items
"""


def test_later_calls_are_judged_by_the_object_they_are_made_on(tmp_path, monkeypatch):
    (tmp_path / "capture_changed.py").write_text(CHANGED_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_changed")
    try:
        assert capture([module.words], node="n").definitions == (
            'WORD = re.compile("[a-z]+")',
            "def words(req):\n    return WORD.findall(req)",
        )
        with pytest.raises(CaptureError) as info:
            capture([module.box], node="n")
        at = location(module.__file__, 16)
        assert str(info.value) == (
            f"cannot export 'BOX', used by node 'n' ({location(module.__file__, 24)}): it is made "
            f"by {location(module.__file__, 15)} (`BOX = Box()`), and {at} may change it "
            "afterwards (`BOX.put_everything('first value', 'second value', 'third ...`); the "
            "runner would only re-run the first. Make the change part of the statement that "
            "creates it (or do it in init(ctx) with ctx.set(...)) and export again"
        )
        assert (info.value.name, info.value.where) == ("BOX", at)
    finally:
        del sys.modules["capture_changed"]


def test_a_file_beside_the_module_is_found_from_another_working_folder(tmp_path, monkeypatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "rates.txt").write_text("1.5\n")
    (folder / "capture_reads.py").write_text(
        "from decimal import Decimal\nfrom pathlib import Path\n\n\n"
        "def parse(name):\n    return Decimal(Path(__file__).with_name(name).read_text())\n\n\n"
        "RATE = parse('rates.txt')\n\n\n"
        "def node(req):\n    return RATE\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(tmp_path)  # rates.txt is not in the working folder
    module = importlib.import_module("capture_reads")
    try:
        with pytest.raises(CaptureError) as info:
            capture([module.node], node="n")
        assert info.value.reason.startswith(
            f"it is made by {location(module.__file__, 9)} (`RATE = parse('rates.txt')`), which "
            "reads 'rates.txt' from a file beside the "
            "notebook; the runner has no such file."
        )
        assert info.value.where == location(module.__file__, 9)
    finally:
        del sys.modules["capture_reads"]


STATEMENTS_PY = """\
from decimal import Decimal

FACTOR = 2
TABLE = Decimal((lambda: FACTOR * 10)())
FACTOR = 3
init = handler = Decimal("1.5")


def scale(x):
    return x * FACTOR


SCALED = Decimal(scale(10))


def scale(x):  # noqa: F811
    return -x


def node(req):
    return TABLE, FACTOR, init, handler, SCALED, scale(1)
"""


def test_statements_come_with_what_they_used_as_it_was_then(tmp_path, monkeypatch):
    (tmp_path / "capture_statements_mod.py").write_text(STATEMENTS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_statements_mod")
    try:
        cap = capture([module.node], node="n")
    finally:
        del sys.modules["capture_statements_mod"]
    assert cap.definitions == (
        # the lambda ran while FACTOR was 2; the reserved names are renamed where they are bound
        "FACTOR = 2\nTABLE = Decimal((lambda: FACTOR * 10)())\nFACTOR = 3\n"
        'user_init = user_handler = Decimal("1.5")',
        "def scale(x):\n    return x * FACTOR",  # the scale SCALED was made with
        "SCALED = Decimal(scale(10))",
        "def scale(x):  # noqa: F811\n    return -x",
        "def node(req):\n    return TABLE, FACTOR, user_init, user_handler, SCALED, scale(1)",
    )
    assert cap.names == {
        "FACTOR": location(module.__file__, 3),
        "TABLE": location(module.__file__, 4),
        "user_handler": location(module.__file__, 6),
        "user_init": location(module.__file__, 6),
        "scale": location(module.__file__, 16),
        "SCALED": location(module.__file__, 13),
        "node": location(module.__file__, 20),
    }
    lines = [location(module.__file__, n) for n in range(22)]
    assert cap.origins == (
        (lines[3], lines[4], "", lines[6]),  # FACTOR = 3 is written from its value
        (lines[9], lines[10]),
        (lines[13],),
        (lines[16], lines[17]),
        (lines[20], lines[21]),
    )
    ns = run_module(cap)
    assert ns["node"](None) == (20, 3, 1.5, 1.5, 30, -1)


def test_roots_from_two_modules_may_not_share_a_name_two_statements_make(tmp_path, monkeypatch):
    for x, pattern in [("a", "[a-z]+"), ("b", "[0-9]+")]:
        (tmp_path / f"words_{x}.py").write_text(
            f"import re\n\nWORD = re.compile({pattern!r})\n\n\ndef use_{x}(req):\n    return WORD\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b = (importlib.import_module(f"words_{x}") for x in "ab")
    try:
        with pytest.raises(CaptureError) as info:
            capture([a.use_a, b.use_b], node="n")
    finally:
        del sys.modules["words_a"], sys.modules["words_b"]
    assert str(info.value) == (
        f"cannot export 'WORD', used by node 'n' ({location(b.__file__, 7)}): the exported "
        "module would need this name for two different objects (also used at "
        f"{location(a.__file__, 7)}); rename one of them"
    )


def test_a_statement_that_used_a_name_deleted_since_is_refused_with_that_name(
    tmp_path, monkeypatch
):
    (tmp_path / "capture_deleted.py").write_text(
        "from decimal import Decimal\n\nTMP = 5\nTOK = Decimal(TMP)\ndel TMP\n\n\n"
        "def node(req):\n    return TOK\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_deleted")
    try:
        with pytest.raises(CaptureError) as info:
            capture([module.node], node="n")
    finally:
        del sys.modules["capture_deleted"]
    where = location(module.__file__, 4)
    assert str(info.value) == f"name 'TMP' used by node 'n' ({where}) is not defined"
    assert (info.value.name, info.value.where, info.value.reason) == ("TMP", where, "")


# ---- the order of the module's pieces (capture_order) ------------------------------------------


def _items(*specs):
    from krtlab.authoring.capture_common import Item

    return {
        key: Item(key, kind, names, pos, needs=set(needs), root=root)
        for key, kind, names, pos, needs, root in specs
    }


def _order(items, uses=()):
    from krtlab.authoring.capture_order import order_items

    return [item.key for item in order_items(items, list(uses))]


def test_constants_first_then_the_notebooks_order_then_the_roots():
    items = _items(
        ("R", "def", ("node",), (0, 9), {"S"}, True),
        ("S", "stmt", ("S",), (0, 5), {"C2"}, False),
        ("C2", "const", ("C2",), (0, 7), (), False),
        ("D", "def", ("helper",), (0, 3), (), False),
        ("C1", "const", ("C1",), (0, 1), (), False),
        ("V", "value", ("V",), (0, 2), (), False),
        ("R0", "def", ("early",), (0, 0), (), True),
    )
    assert _order(items) == ["C1", "C2", "V", "D", "S", "R0", "R"]


def test_a_name_bound_twice_keeps_the_notebooks_order_and_its_uses_between():
    items = _items(
        ("X2", "const", ("X",), (0, 6), (), False),
        ("U", "stmt", ("Y",), (0, 4), {"X1"}, False),
        ("X1", "stmt", ("X",), (0, 2), (), False),
        ("R", "def", ("node",), (1, 0), {"U", "X2"}, True),
    )
    # U used the first X: the second one comes after it, though constants usually come first
    assert _order(items, [("U", "X", "X1"), ("R", "X", "X2")]) == ["X1", "U", "X2", "R"]
    assert _order(items) == ["X1", "X2", "U", "R"]
    # at one position, a statement's binding before a constant's, then the order they came in
    items = _items(
        ("C", "const", ("X",), (0, 1), (), False),
        ("S", "stmt", ("X",), (0, 1), (), False),
        ("T", "stmt", ("X",), (0, 1), (), False),
    )
    assert _order(items) == ["S", "T", "C"]


def test_functions_that_need_each_other_come_in_the_notebooks_order():
    items = _items(
        ("B", "def", ("b",), (0, 5), {"A"}, False),
        ("A", "def", ("a",), (0, 3), {"B", "A"}, False),
        ("C", "stmt", ("c",), (0, 9), {"B"}, False),
        ("R", "def", ("node",), (0, 1), {"A", "C"}, True),
    )
    assert _order(items) == ["A", "B", "C", "R"]


def test_order_edges_between_bindings_and_their_users():
    # what an item needs comes first, also against the usual order
    items = _items(
        ("S", "stmt", ("S",), (0, 2), {"D"}, False),
        ("D", "def", ("helper",), (0, 4), (), False),
    )
    assert _order(items) == ["D", "S"]
    # an item that needs itself (a recursive decorator's use) still comes in its turn
    items = _items(
        ("X", "stmt", ("X",), (0, 1), {"X"}, False),
        ("Y", "stmt", ("Y",), (0, 2), (), False),
    )
    assert _order(items) == ["X", "Y"]
    # a value and a statement binding one name at one position: the statement first
    items = _items(
        ("V", "value", ("X",), (0, 1), (), False),
        ("S", "stmt", ("X",), (0, 1), (), False),
    )
    assert _order(items, [("S", "h", "V")]) == ["S", "V"]  # a use under a name nobody binds
    # a later binding at the used one's position, or at the user's, is not "later"
    items = _items(
        ("S", "stmt", ("X",), (0, 1), (), False),
        ("T", "stmt", ("X",), (0, 1), (), False),
        ("C", "const", ("X",), (0, 1), (), False),
        ("U", "stmt", ("Y",), (0, 2), {"S"}, False),
    )
    assert _order(items, [("U", "X", "S")]) == ["S", "T", "C", "U"]
    items = _items(
        ("S", "stmt", ("X",), (0, 1), (), False),
        ("T", "stmt", ("X",), (0, 1), (), False),
        ("R", "def", ("node",), (0, 0), {"S"}, True),
    )
    assert _order(items, [("R", "X", "S")]) == ["S", "T", "R"]
    items = _items(
        ("X1", "stmt", ("X",), (0, 2), (), False),
        ("U", "stmt", ("Y",), (0, 4), {"X1"}, False),
        ("X2", "const", ("X",), (0, 4), (), False),
    )
    assert _order(items, [("U", "X", "X1")]) == ["X1", "X2", "U"]
    # a root placed early in the notebook that used the last binding
    items = _items(
        ("X2", "const", ("X",), (0, 6), (), False),
        ("U", "stmt", ("Y",), (0, 4), {"X1"}, False),
        ("X1", "stmt", ("X",), (0, 2), (), False),
        ("R", "def", ("node",), (0, 0), {"U", "X2"}, True),
    )
    assert _order(items, [("U", "X", "X1"), ("R", "X", "X2")]) == ["X1", "U", "X2", "R"]


def test_a_helper_whose_file_changed_since_it_ran_is_refused_where_it_is_used(
    tmp_path, monkeypatch
):
    import linecache

    path = tmp_path / "capture_stale.py"
    path.write_text(
        "def node(req):\n    return helper(req)\n\n\ndef helper(req):\n    return req\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_stale")
    path.write_text(
        "def node(req):\n    return helper(req)\n\n\n\ndef helper(req):\n    return 1\n"
    )
    linecache.checkcache(str(path))
    try:
        with pytest.raises(CaptureError) as info:
            capture([module.node], node="n")
    finally:
        del sys.modules["capture_stale"]
    assert str(info.value) == (
        f"node 'n': cannot find the source of function 'helper' ({location(str(path), 5)}); was "
        "the file changed after it ran? Run the cell or module that defines it again, used at "
        f"{location(str(path), 2)}"
    )
    assert (info.value.name, info.value.where) == ("helper", location(str(path), 5))


LOOPS_PY = """\
class Box:
    def peek(self, x):
        return x


for _ in range(1):
    scale = lambda x: x * 2  # noqa: E731
    inner = Box.peek

    def helper(x):
        return x + 1


def uses_scale(req):
    return scale(req)


def uses_inner(req):
    return inner(None, req)


def uses_helper(req):
    return helper(req)
"""


def test_functions_made_in_a_loop(tmp_path, monkeypatch):
    (tmp_path / "capture_loops.py").write_text(LOOPS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_loops")
    try:
        errors = []
        for root in [module.uses_scale, module.uses_inner]:
            with pytest.raises(CaptureError) as info:
                capture([root], node="n")
            errors.append((str(info.value), info.value.name, info.value.where))
        cap = capture([module.uses_helper], node="n")
    finally:
        del sys.modules["capture_loops"]
    lines = [location(module.__file__, n) for n in range(24)]
    assert errors == [
        (
            f"cannot export 'scale', used by node 'n' ({lines[15]}): it is a lambda made without "
            "a single statement (in a loop or block); define it with def instead",
            "scale",
            lines[15],
        ),
        (
            f"cannot export 'inner', used by node 'n' ({lines[19]}): it is defined inside a "
            "function or class; move it to the top level of a cell or module",
            "inner",
            lines[19],
        ),
    ]
    assert cap.definitions == (
        "def helper(x):\n    return x + 1",
        "def uses_helper(req):\n    return helper(req)",
    )


def test_a_function_made_in_a_loop_whose_file_changed_is_refused_where_it_is_used(
    tmp_path, monkeypatch
):
    import linecache

    path = tmp_path / "capture_stale_loop.py"
    text = (
        "def node(req):\n    return looped(req)\n\n\nfor _ in range(1):\n\n    def looped(req):\n"
    )
    path.write_text(text + "        return req\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("capture_stale_loop")
    path.write_text(text.replace("\n\n\nfor", "\n\n\n# moved\nfor") + "        return 1\n")
    linecache.checkcache(str(path))
    try:
        with pytest.raises(CaptureError) as info:
            capture([module.node], node="n")
    finally:
        del sys.modules["capture_stale_loop"]
    assert str(info.value) == (
        f"node 'n': cannot find the source of function 'looped' ({location(str(path), 7)}); was "
        "the file changed after it ran? Run the cell or module that defines it again, used at "
        f"{location(str(path), 2)}"
    )


def test_krtlab_objects_builtins_and_identifiers_are_recognised():
    import builtins
    import functools

    import krtlab.errors
    from krtlab.authoring.capture_common import _identifiers, _is_krtlab, _shadows_builtin

    wrapped = krtlab.errors.CaptureError("x")
    wrapped.__module__ = "user_module"  # like a node wrapper that took its function's module
    assert [
        _is_krtlab(x)
        for x in [krtlab.errors, krtlab.errors.CaptureError, wrapped, json_module(), len, None]
    ] == [True, True, True, False, False, False]

    @functools.wraps(builtins.open)
    def ipython_open(*args, **kwargs):  # IPython's wrapper over open
        return builtins.open(*args, **kwargs)

    assert [
        _shadows_builtin("open", builtins.open),
        _shadows_builtin("open", ipython_open),
        _shadows_builtin("open", print),
        _shadows_builtin("not_a_builtin", print),
    ] == [True, True, False, False]
    assert _identifiers(["sys = 2", "x = y_1"]) == {"sys", "x", "y_1"}


def json_module():
    import json

    return json


def test_imports_of_submodules_the_module_itself_and_the_runners_own(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "config" / "settings.py").write_text("LEVEL = 2\n")
    (tmp_path / "capture_selfref.py").write_text(
        "import os.path as path\nimport xml.etree.ElementTree as ElementTree\n\n"
        "import capture_selfref\n\n\ndef node(req):\n    return ElementTree.__name__, path.sep\n"
        "\n\ndef selfref(req):\n    return capture_selfref.node\n"
        "\n\nimport __main__  # noqa: E402\n\n\ndef main(req):\n    return __main__\n"
    )
    (tmp_path / "capture_runner_pkg.py").write_text(
        "import config.settings as cs\n\n\ndef node(req):\n    return cs.LEVEL\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ["config", "config.settings"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    own = importlib.import_module("capture_selfref")
    runner = importlib.import_module("capture_runner_pkg")
    try:
        imports = capture([own.node], node="n").imports
        errors = []
        for root in [own.selfref, own.main, runner.node]:
            with pytest.raises(CaptureError) as info:
                capture([root], node="n")
            errors.append((str(info.value), info.value.name, info.value.where))
    finally:
        for name in ["capture_selfref", "capture_runner_pkg", "config", "config.settings"]:
            sys.modules.pop(name, None)
    assert imports == (
        "from __future__ import annotations",
        "from os import path",  # import os.path as path
        "from xml.etree import ElementTree",  # import xml.etree.ElementTree as ElementTree
    )
    at_self, at_main = location(own.__file__, 12), location(own.__file__, 19)
    at_runner = location(runner.__file__, 5)
    assert errors == [
        (
            f"cannot export 'capture_selfref', used by node 'n' ({at_self}): it is the "
            "notebook/script module itself",
            "capture_selfref",
            at_self,
        ),
        (
            f"cannot export '__main__', used by node 'n' ({at_main}): it is the "
            "notebook/script module itself",
            "__main__",
            at_main,
        ),
        (
            f"cannot export 'cs', used by node 'n' ({at_runner}): the kre-py runner has its "
            "own module 'config', which would be imported instead; rename your module",
            "cs",
            at_runner,
        ),
    ]


# ---- how each name is resolved (capture_resolve) -----------------------------------------------


@pytest.fixture
def load(tmp_path, monkeypatch):
    """``load(name, text)``: write ``text`` as ``name.py`` in tmp_path and import it; the modules
    of tmp_path are forgotten afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(name: str, text: str, **files: str):
        for stem, body in files.items():
            (tmp_path / f"{stem}.py").write_text(body)
        (tmp_path / f"{name}.py").write_text(text)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    yield load
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


CLOSURES_PY = """\
from decimal import Decimal

FACTOR = 2


def scale(x):
    return x * FACTOR


def twice(x):
    return scale(x) * 2


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


A = Decimal(scale(1))
FACTOR = 3
B = Decimal(twice(1)) + fact(3)
FACTOR = 4


def node(req):
    return A, B, FACTOR
"""


def test_statements_get_what_the_functions_they_call_used_as_it_was_then(load):
    module = load("cr_closures", CLOSURES_PY)
    cap = capture([module.node], node="n")
    assert cap.definitions == (
        "FACTOR = 2",  # what scale(1) used when A was made
        "def scale(x):\n    return x * FACTOR",
        "def twice(x):\n    return scale(x) * 2",  # B calls scale through twice
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)",  # calls itself
        "A = Decimal(scale(1))\nFACTOR = 3\nB = Decimal(twice(1)) + fact(3)\nFACTOR = 4",
        "def node(req):\n    return A, B, FACTOR",
    )
    assert run_module(cap)["node"](None) == (2, 12, 4)
    # a function only the node calls uses the name as it is now
    module = load(
        "cr_closures_later",
        "FACTOR = 2\n\n\ndef scale(x):\n    return x * FACTOR\n\n\nFACTOR = 3\n\n\n"
        "def node(req):\n    return scale(req)\n",
    )
    assert capture([module.node], node="n").definitions == (
        "FACTOR = 3",
        "def scale(x):\n    return x * FACTOR",
        "def node(req):\n    return scale(req)",
    )


def test_a_statement_that_calls_a_root_comes_after_that_root(load):
    module = load(
        "cr_root_call",
        "from decimal import Decimal\n\n\ndef node(req):\n    return req * 2\n\n\n"
        "def helper(x):\n    return node(x) + 1\n\n\nCACHE = Decimal(helper(1))\n\n\n"
        "def other(req):\n    return CACHE\n",
    )
    cap = capture([module.node, module.other], node="n")
    assert cap.definitions == (
        "def helper(x):\n    return node(x) + 1",
        "def node(req):\n    return req * 2",  # a root, yet CACHE calls it through helper
        "CACHE = Decimal(helper(1))",
        "def other(req):\n    return CACHE",
    )
    assert cap.roots == ("node", "other")
    assert run_module(cap)["other"](None) == 3


def test_statements_that_ran_after_the_last_root_come_after_it(load):
    module = load(
        "cr_trailing",
        "def node(req):\n    return sorted(REGISTRY), len(ALIASES)\n\n\n"
        'REGISTRY = {"node": node}\nALIASES = [node]\n',
    )
    cap = capture([module.node], node="n")
    assert cap.definitions == (
        "def node(req):\n    return sorted(REGISTRY), len(ALIASES)",
        'REGISTRY = {"node": node}\nALIASES = [node]',
    )
    lines = [location(module.__file__, n) for n in range(8)]
    assert cap.origins == ((lines[1], lines[2]), (lines[5], lines[6]))
    assert cap.where == lines[1]
    assert run_module(cap)["node"](None) == (["node"], 1)


def test_defaults_and_class_bodies_use_names_as_they_were_when_they_ran(load, tmp_path):
    module = load(
        "cr_then",
        "X = 2\n\n\ndef node(req, x=X):\n    return x, X, Settings.level\n\n\n"
        "class Settings:\n    level = X\n\n\nX = 3\n",
    )
    cap = capture([module.node], node="n")
    assert cap.definitions == (
        "X = 2",
        "class Settings:\n    level = X",
        "def node(req, x=X):\n    return x, X, Settings.level",  # its default used X = 2
        "X = 3",
    )
    assert run_module(cap)["node"](None) == (2, 3, 2)
    # what such a name was then is refused for what it was then
    (tmp_path / "rates.txt").write_text("1.5\n")
    module = load(
        "cr_then_read",
        "from pathlib import Path\n\n"
        'TEXT = Path(__file__).with_name("rates.txt").read_text()\n\n\n'
        "def node(req, text=TEXT):\n    return text\n\n\n"
        'TEXT = "2"\n',
    )
    with pytest.raises(CaptureError) as info:
        capture([module.node], node="n")
    made = location(module.__file__, 3)
    reason = (
        f"it is made by {made} (`TEXT = Path(__file__).with_name('rates.txt').read_text()`), "
        "which reads Path(__file__).with_name('rates.txt').read_text(...) from a file beside "
        f"the notebook; {_FROM_FILE}"
    )
    assert str(info.value) == (
        f"cannot export 'TEXT', used by node 'n' ({location(module.__file__, 6)}): {reason}"
    )
    assert (info.value.name, info.value.where, info.value.reason) == ("TEXT", made, reason)


def test_a_name_a_loop_made_and_a_later_statement_changed_is_refused(load):
    import re

    module = load(
        "cr_loop_then",
        "for X in [2]:\n    pass\n\n\ndef node(req, x=X):\n    return x\n\n\nX = 5\n",
    )
    closure = load(
        "cr_loop_then_call",
        "from decimal import Decimal\n\nfor FACTOR in [2]:\n    pass\n\n\n"
        "def scale(x):\n    return x * FACTOR\n\n\nA = Decimal(scale(1))\nFACTOR = 3\n\n\n"
        "def node(req):\n    return A\n",
    )
    for root, name, line in [(module.node, "X", 5), (closure.node, "FACTOR", 8)]:
        with pytest.raises(CaptureError) as info:
            capture([root], node="n")
        used = location(root.__code__.co_filename, line)
        # (which statement it names as the change is not pinned here)
        pattern = (
            re.escape(f"cannot export {name!r}, used by node 'n' ({used}): a statement used it "
                      f"({used}) before ")
            + re.escape(location(root.__code__.co_filename, 1)[:-1])
            + r"\d+"
            + re.escape(
                " changed it, and krtlab cannot tell what it was then; restart the kernel, run "
                "all cells in order and export again"
            )
        )  # fmt: skip
        assert re.fullmatch(pattern, str(info.value)), str(info.value)
        assert (info.value.name, info.value.where) == (name, used)


def test_an_import_a_statement_used_before_its_name_was_bound_again(load):
    module = load(
        "cr_import_then",
        "from decimal import Decimal\nimport fractions as F\n\nHALF = F.Fraction(1, 2)\n"
        'F = Decimal("0.5")\n\n\ndef node(req):\n    return HALF, F\n',
    )
    cap = capture([module.node], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "import fractions as F",  # for HALF, which ran before F was bound again
        "from decimal import Decimal",
    )
    assert cap.definitions == (
        'HALF = F.Fraction(1, 2)\nF = Decimal("0.5")',
        "def node(req):\n    return HALF, F",
    )
    assert [str(x) for x in run_module(cap)["node"](None)] == ["1/2", "0.5"]


DECORATED_ROOTS_PY = """\
import functools

LIMIT = 3


class Wrapper:
    # like krtlab's node wrapper (it has __krt_node__), from a module that is not krtlab
    __krt_node__ = True

    def __init__(self, fn):
        self.__wrapped__ = fn

    def init(self, fn):
        return fn

    @classmethod
    def named(cls, name):
        return cls


@Wrapper.named(
    "node",
)
def node(req):
    return req


@functools.lru_cache(maxsize=2)
@node.init
def setup(ctx):
    return LIMIT
"""


def test_roots_behind_wrappers_lose_only_the_node_decorators(load):
    import inspect

    module = load("cr_decorated_roots", DECORATED_ROOTS_PY)
    assert not inspect.isfunction(module.setup)  # the lru_cache wrapper
    cap = capture([module.node, module.setup], node="n")
    assert cap.definitions == (
        "LIMIT = 3",
        "def node(req):\n    return req",  # all three lines of @Wrapper.named(...) are gone
        "@functools.lru_cache(maxsize=2)\ndef setup(ctx):\n    return LIMIT",
    )
    assert cap.imports == ("from __future__ import annotations", "import functools")
    lines = [location(module.__file__, n) for n in range(32)]
    assert cap.origins == (("",), (lines[24], lines[25]), (lines[28], lines[30], lines[31]))
    assert cap.roots == ("node", "setup")


def test_roots_that_are_no_def_are_refused_with_their_name(load):
    import functools

    module = load("cr_bad_roots", "scale = lambda x: x * 2  # noqa: E731\n")
    for root, name in [(module.scale, "<lambda>"), (functools.partial(max, 1), "")]:
        with pytest.raises(CaptureError) as info:
            capture([root], node="n")
        assert str(info.value) == (
            f"node 'n': {root!r} must be a function defined with def at the top level of a cell "
            "or module"
        )
        assert (info.value.node, info.value.name) == ("n", name)


def test_a_root_whose_file_changed_since_it_ran_is_refused(load, tmp_path):
    import linecache

    module = load("cr_stale_root", "def node(req):\n    return req\n")
    path = tmp_path / "cr_stale_root.py"
    path.write_text("\n\ndef node(req):\n    return 1\n")
    linecache.checkcache(str(path))
    with pytest.raises(CaptureError) as info:
        capture([module.node], node="n")
    reason = (
        f"cannot find the source of function 'node' ({location(str(path), 1)}); was the file "
        "changed after it ran? Run the cell or module that defines it again"
    )
    assert str(info.value) == f"node 'n': {reason}"  # a root: no "used at"
    err = info.value
    assert (err.node, err.name, err.where, err.reason) == ("n", "node", location(str(path), 1),
                                                           reason)  # fmt: skip


def test_state_kept_with_nonlocal_is_refused_naming_every_name(load):
    module = load(
        "cr_nonlocal",
        "def make_counter():\n    count = total = 0\n\n    def counter(req):\n"
        "        nonlocal count, total\n        count += 1\n        total += req\n"
        "        return count, total\n\n    return counter\n",
    )
    with pytest.raises(CaptureError) as info:
        capture([module.make_counter()], node="n")
    where = location(module.__file__, 4)
    assert str(info.value) == (
        f"cannot export 'count, total', used by node 'n' ({where}): it is assigned with "
        "nonlocal; keep such state in ctx.set(...) or a global"
    )
    assert (info.value.name, info.value.where) == ("count, total", where)


def test_code_run_from_text_without_a_file_or_with_its_own_builtins(tmp_path):
    import builtins
    import types

    path = tmp_path / "cr_text.py"
    text = "LIMIT = 3\n\n\ndef node(req):\n    return min(req, LIMIT)\n"
    path.write_text(text)

    def run(name, **namespace):
        module = types.ModuleType(name)
        vars(module).update(namespace)
        exec(compile(text, str(path), "exec"), vars(module))
        return module

    plain = run("cr_no_file")  # no __file__: no history to read
    bare = run("cr_no_builtins")
    del vars(bare)["__builtins__"]  # the function keeps the builtins it was made with
    main = run("cr_main_like", __file__=str(path), __builtins__=builtins)  # as in __main__
    lines = [location(str(path), n) for n in range(6)]
    for module in [plain, bare, main]:
        cap = capture([module.node], node="n")
        assert cap.definitions == ("LIMIT = 3", "def node(req):\n    return min(req, LIMIT)")
        assert cap.origins == (("",), (lines[4], lines[5]))
    # builtins are what the module's own __builtins__ holds
    restricted = run("cr_restricted", __builtins__={"max": max})
    with pytest.raises(CaptureError) as info:
        capture([restricted.node], node="n")
    assert str(info.value) == f"name 'min' used by node 'n' ({lines[5]}) is not defined"


def test_a_class_made_in_a_block_is_its_class_statement(load):
    module = load(
        "cr_block_class",
        "if True:\n    # not part of the class\n    class Settings:\n        level = 1\n\n\n"
        "def node(req):\n    return Settings.level\n",
    )
    cap = capture([module.node], node="n")
    assert cap.definitions == (
        "class Settings:\n    level = 1",
        "def node(req):\n    return Settings.level",
    )
    assert cap.names["Settings"] == location(module.__file__, 3)


def test_a_name_two_roots_need_as_a_def_and_a_constant_is_refused(load):
    a = load(
        "cr_two_a", "def helper(x):\n    return x\n\n\ndef node(req):\n    return helper(req)\n"
    )
    b = load("cr_two_b", "helper = 2\n\n\ndef setup(ctx):\n    return helper\n")
    with pytest.raises(CaptureError) as info:
        capture([a.node, b.setup], node="n")
    assert str(info.value) == (
        f"cannot export 'helper', used by node 'n' ({location(b.__file__, 5)}): the exported "
        "module would need this name for two different objects (also used at "
        f"{location(a.__file__, 1)}); rename one of them"
    )


def test_a_wrapper_over_a_builtin_is_the_builtin(load):
    module = load(
        "cr_open",
        "import builtins\nimport functools\n\n"
        "open = functools.wraps(builtins.open)(lambda *a, **k: builtins.open(*a, **k))\n\n\n"
        "def node(req):\n    with open(req) as f:\n        return f.read()\n",
    )
    cap = capture([module.node], node="n")  # like IPython's open
    assert cap.definitions == ("def node(req):\n    with open(req) as f:\n        return f.read()",)
    assert cap.imports == ("from __future__ import annotations",)


def test_names_of_an_inner_function_come_from_its_closure_then_its_module(load):
    module = load(
        "cr_closure_names",
        'from decimal import Decimal\n\nRATE = Decimal("2")\nTABLE = Decimal(sum([1, 2]))\n\n\n'
        'def make():\n    RATE = Decimal("3")\n\n'
        "    def inner(req):\n        return RATE, TABLE\n\n    return inner\n",
    )
    cap = capture([module.make()], node="n")
    assert cap.definitions == (
        # the closure's RATE, written from its value; the module's TABLE, as its statement
        'RATE = Decimal("3")\nTABLE = Decimal(sum([1, 2]))',
        "def inner(req):\n    return RATE, TABLE",
    )
    assert cap.origins == (("", location(module.__file__, 4)), (
        location(module.__file__, 10), location(module.__file__, 11)))  # fmt: skip


RESERVED_PY = """\
from decimal import Decimal

import cr_hooks
from cr_handlers import handler as init

for _ in range(1):
    HOOKS = {0: cr_hooks.user_handler}  # no single statement: written from its value


def renamed(fn):
    fn.__name__ = "score_v2"
    return fn


@renamed
def score(x):
    return x


def handler(req):
    return req


TEMP = Decimal("1.5")
DOUBLE = TEMP * 2
TEMP = 0


def node(req):
    return score(req), HOOKS, handler(req), init(req)
"""


def test_reserved_names_are_renamed_clear_of_every_name_the_module_binds(load):
    module = load(
        "cr_reserved",
        RESERVED_PY,
        cr_hooks="def user_handler(x):\n    return x + 1\n",
        cr_handlers="def handler(x):\n    return x * 10\n",
    )
    cap = capture([module.node], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "from cr_handlers import handler as user_init",  # an import named init
        "from cr_hooks import user_handler",  # for HOOKS: the renamed handler avoids it
    )
    assert cap.definitions == (
        "HOOKS = {0: user_handler}",
        'def renamed(fn):\n    fn.__name__ = "score_v2"\n    return fn',
        "@renamed\ndef score(x):\n    return x",
        "def user_handler_2(req):\n    return req",
        "def node(req):\n    return score(req), HOOKS, user_handler_2(req), user_init(req)",
    )
    assert cap.local_modules == {"cr_hooks", "cr_handlers"}
    assert run_module(cap)["node"](4) == (4, {0: sys.modules["cr_hooks"].user_handler}, 4, 40)
    # a reserved name only an earlier statement used is renamed too
    module = load(
        "cr_reserved_then",
        'from decimal import Decimal\n\ninit = Decimal("1.5")\nTOTAL = init * 2\ninit = 0\n\n\n'
        "def node(req):\n    return TOTAL\n",
    )
    assert capture([module.node], node="n").definitions == (
        'user_init = Decimal("1.5")\nTOTAL = user_init * 2',
        "def node(req):\n    return TOTAL",
    )


def test_a_class_only_an_annotation_names_keeps_the_notebooks_order(load):
    module = load(
        "cr_annotated",
        "from __future__ import annotations\n\n\ndef describe(box: Box) -> str:\n"
        '    return "box"\n\n\nclass Box:\n    label = "b"\n\n\n'
        "def node(req):\n    return describe(None)\n",
    )
    assert capture([module.node], node="n").definitions == (
        'def describe(box: Box) -> str:\n    return "box"',
        'class Box:\n    label = "b"',
        "def node(req):\n    return describe(None)",
    )


WRAPPED_PY = """\
import functools


def deep(fn):
    for _ in range({depth}):
        fn = functools.wraps(fn)(lambda *a, _f=fn: _f(*a))
    return fn


# wrapped {depth} times
@deep
def helper(x):
    return x


def node(req):
    return helper(req)
"""


def test_a_def_is_found_behind_at_most_19_wrappers(load):
    cap = capture([load("cr_wrapped_19", WRAPPED_PY.format(depth=19)).node], node="n")
    assert cap.definitions[1] == "@deep\ndef helper(x):\n    return x"  # the def itself
    # deeper: its statement, which makes the same value (with the comment above it)
    cap = capture([load("cr_wrapped_20", WRAPPED_PY.format(depth=20)).node], node="n")
    assert cap.definitions[1] == "# wrapped 20 times\n@deep\ndef helper(x):\n    return x"


def test_a_function_under_a_second_name_changed_later_is_refused(load):
    module = load(
        "cr_alias_changed",
        "def scale(x):\n    return x * 2\n\n\nh = scale\nh.calls = 0\n\n\n"
        "def node(req):\n    return h(req)\n",
    )
    with pytest.raises(CaptureError) as info:
        capture([module.node], node="n")
    lines = [location(module.__file__, n) for n in range(11)]
    assert str(info.value) == (
        f"cannot export 'h', used by node 'n' ({lines[10]}): it is made by {lines[5]} "
        f"(`h = scale`), and {lines[6]} may change it afterwards (`h.calls = 0`); {_CHANGED}"
    )


# ---- how a global is bound: modules, krtlab objects, literals, decorated defs (Capturer._bind) --


def test_a_module_bound_without_an_import_statement_is_imported(load):
    mod = load("bind_mod", textwrap.dedent("""\
        import importlib

        codec = importlib.import_module("json")


        def node(req):
            return codec.dumps(req)
        """))  # fmt: skip
    cap = capture([mod.node], node="n")
    assert cap.imports == ("from __future__ import annotations", "import json as codec")
    assert cap.definitions == ("def node(req):\n    return codec.dumps(req)",)


def test_a_krtlab_object_used_at_run_time_is_refused(load):
    mod = load("bind_krt", textwrap.dedent("""\
        import krtlab as krt

        v = krt.Version("x")


        def node(req):
            return v.name
        """))  # fmt: skip
    with pytest.raises(CaptureError) as info:
        capture([mod.node], node="n")
    assert str(info.value) == (
        f"cannot export 'v', used by node 'n' ({location(mod.__file__, 7)}): it is a krtlab "
        "object, and krtlab is not installed on the runner; use krtlab names only in annotations "
        "(they are never evaluated there)"
    )


def test_a_literal_is_written_as_its_value_not_the_statement_that_made_it(load):
    mod = load("bind_literal", textwrap.dedent("""\
        WORDS = "a b c".split()
        COUNT = len(WORDS)


        def node(req):
            return COUNT
        """))  # fmt: skip
    cap = capture([mod.node], node="n")
    assert cap.definitions == ("COUNT = 3", "def node(req):\n    return COUNT")


def test_an_object_answering_every_attribute_is_not_taken_for_a_proto_module(load):
    mod = load("bind_any_attr", textwrap.dedent("""\
        class Defaults:
            def __getattr__(self, name):  # any setting not given: its own name
                return name


        SETTINGS = Defaults()


        def node(req):
            return SETTINGS.colour
        """))  # fmt: skip
    cap = capture([mod.node], node="n")
    assert "import" not in cap.import_block().replace("from __future__ import annotations", "")
    assert cap.definitions[-2:] == (
        "SETTINGS = Defaults()",
        "def node(req):\n    return SETTINGS.colour",
    )


def test_a_function_or_class_changed_after_its_statement_is_refused(load):
    mod = load("bind_changed", textwrap.dedent("""\
        import functools


        def twice(fn):
            @functools.wraps(fn)
            def wrapper(x):
                return fn(fn(x))
            return wrapper


        @twice
        def add_one(x):
            return x + 1


        add_one.calls = 0


        class Settings:
            level = 1


        Settings.level = 2


        def counts(req):
            return add_one.calls


        def levels(req):
            return Settings.level
        """))  # fmt: skip
    where = functools.partial(location, mod.__file__)
    with pytest.raises(CaptureError) as info:
        capture([mod.counts], node="n")
    assert str(info.value) == (
        f"cannot export 'add_one', used by node 'n' ({where(27)}): it is made by {where(12)} "
        f"(`def add_one(x):`), and {where(16)} may change it afterwards (`add_one.calls = 0`); "
        "the runner would only re-run the first. Make the change part of the statement that "
        "creates it (or do it in init(ctx) with ctx.set(...)) and export again"
    )
    assert info.value.where == where(16)
    with pytest.raises(CaptureError) as info:
        capture([mod.levels], node="n")
    assert str(info.value).startswith(
        f"cannot export 'Settings', used by node 'n' ({where(31)}): it is made by {where(19)} "
        f"(`class Settings:`), and {where(23)} may change it afterwards (`Settings.level = 2`)"
    )


def test_a_name_for_the_proto_module_and_for_another_object_clashes(load):
    mod = load("bind_pb_node", textwrap.dedent("""\
        import krtlab as krt

        v = krt.Version("clash")
        pb = v.proto('syntax = "proto3"; message Request { string text = 1; }')


        def node(req):
            return pb.Request(text=req)
        """))  # fmt: skip
    other = load("bind_pb_other", textwrap.dedent("""\
        import pickle as pb


        def init(ctx):
            return pb.dumps(ctx)
        """))  # fmt: skip
    with pytest.raises(CaptureError) as info:
        capture([mod.node, other.init], node="n")
    assert str(info.value) == (
        f"cannot export 'pb', used by node 'n' ({location(other.__file__, 5)}): the exported "
        "module would need this name for two different objects (also used at "
        f"{location(mod.__file__, 8)}); rename one of them"
    )


@pytest.mark.parametrize(
    ("imported", "line"),
    [("threshold", "def threshold():\n    return 0.5\n"), ("SETTINGS", "SETTINGS = object()\n")],
)
def test_a_name_from_a_module_named_like_the_runners_is_refused_where_used(
    load, monkeypatch, imported, line
):
    monkeypatch.delitem(sys.modules, "context", raising=False)
    load("context", line)
    mod = load(f"bind_runner_{imported.lower()}", textwrap.dedent(f"""\
        from context import {imported}


        def node(req):
            return {imported}
        """))  # fmt: skip
    with pytest.raises(CaptureError) as info:
        capture([mod.node], node="n")
    where = location(mod.__file__, 5)
    assert str(info.value) == (
        f"cannot export {imported!r}, used by node 'n' ({where}): the kre-py runner has its own "
        "module 'context', which would be imported instead; rename your module"
    )


def test_an_object_imported_from_a_local_module_keeps_its_import(load):
    load("bind_settings", "class S:\n    pass\n\n\nSETTINGS = S()\n")
    mod = load("bind_uses_settings", textwrap.dedent("""\
        from bind_settings import SETTINGS


        def node(req):
            return SETTINGS
        """))  # fmt: skip
    cap = capture([mod.node], node="n")
    assert cap.imports == (
        "from __future__ import annotations",
        "from bind_settings import SETTINGS",
    )
    assert cap.definitions == ("def node(req):\n    return SETTINGS",)


def test_a_clashing_name_used_only_in_an_annotation_leaves_nothing_behind(load):
    first = load("bind_ann_a", textwrap.dedent("""\
        class Config:
            level = 1


        def node(req):
            return Config.level
        """))  # fmt: skip
    second = load("bind_ann_b", textwrap.dedent("""\
        class Config:
            level = 2


        def setup(ctx: Config):
            return 0
        """))  # fmt: skip
    cap = capture([first.node, second.setup], node="n")
    assert cap.definitions == (  # the second Config would have replaced the first at run time
        "class Config:\n    level = 1",
        "def node(req):\n    return Config.level",
        "def setup(ctx: Config):\n    return 0",
    )
    assert run_module(cap)["node"](None) == 1


def test_a_node_behind_the_users_own_wraps_decorator_is_its_decorated_def(load):
    mod = load("bind_timed_root", textwrap.dedent("""\
        import functools

        import krtlab as krt

        v = krt.Version("timed")


        def timed(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args)
            return wrapper


        @v.node(name="n")
        @timed
        def node(req):
            return req * 2
        """))  # fmt: skip
    cap = capture([mod.node], node="n")
    assert cap.roots == ("node",)
    assert cap.definitions[-1] == "@timed\ndef node(req):\n    return req * 2"
    assert run_module(cap)["node"](21) == 42


# ---- source of functions, classes and statements (capture_source) ----
# capture_source: the exact text of defs, classes and statements, where they are, which globals
# they use and how they are renamed. (No `from __future__` import: this part is appended to a file.)


@pytest.fixture
def src_files(tmp_path, monkeypatch):
    """Run code (as it is) from a file in tmp_path as a module; ``register`` puts it in
    sys.modules (its classes are then found through the module's file, else only through their
    methods)."""

    def load(name: str, code: str, *, register: bool = True) -> types.ModuleType:
        path = tmp_path / f"{name}.py"
        path.write_text(code)
        module = types.ModuleType(name)
        if register:
            module.__file__ = str(path)
            monkeypatch.setitem(sys.modules, name, module)
        exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
        return module

    return load


@pytest.fixture
def src_cells(monkeypatch):
    """A stand-in for a running IPython shell: ``run(count, code)`` executes a cell the way
    IPython does (its text in linecache, its pseudo file mapped to the execution count)."""
    counts: dict[str, int] = {}
    shell = types.SimpleNamespace(compile=types.SimpleNamespace(_filename_map=counts))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    ns: dict = {"__name__": "src_notebook"}  # like Jupyter's __main__: a module without a file

    def run(count: int, code: str) -> str:
        filename = f"/tmp/ipykernel_4242/src_cell_{count}.py"
        text = textwrap.dedent(code)
        entry = (len(text), None, text.splitlines(True), filename)
        monkeypatch.setitem(linecache.cache, filename, entry)
        counts[filename] = count
        exec(compile(text, filename, "exec"), ns)
        return filename

    run.ns = ns  # type: ignore[attr-defined]
    return run


def src_fields(source) -> tuple:
    return (source.name, source.text, source.filename, source.first_line)


def src_refs(source, **kwargs) -> list[tuple]:
    return [
        (r.name, r.line, r.col, r.annotation, r.store, r.global_stmt, r.deferred)
        for r in scan(source, **kwargs)
    ]


# ---- locations ----------------------------------------------------------------------------------


def test_src_cells_are_located_by_their_execution_count(src_cells):
    cell = src_cells(7, "x = 1\n\n\ndef greet(name):\n    return 'hi ' + name\n")
    assert location(cell, 3) == "cell In[7], line 3"
    assert function_source(src_cells.ns["greet"]).where(2) == "cell In[7], line 5"
    assert location("<string>", 3) == "<string>, line 3"  # not a cell of this shell


def test_src_files_are_located_relative_below_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert location(str(tmp_path / "work" / "pkg" / "nodes.py"), 4) == "pkg/nodes.py, line 4"
    outside = str(tmp_path / "other" / "nodes.py")
    assert location(outside, 5) == f"{outside}, line 5"
    # pseudo file names are kept as they are, even when they look like a path
    assert location("<https://example.com//tools/./gen.py>", 1) == (
        "<https://example.com//tools/./gen.py>, line 1"
    )


def test_src_files_on_another_drive_keep_their_full_name(monkeypatch):
    def other_drive(path, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(os.path, "relpath", other_drive)  # what Windows does
    assert location("/data/nodes.py", 2) == "/data/nodes.py, line 2"


# ---- functions -------------------------------------------------------------------------------


def test_src_a_function_keeps_its_text_exactly(src_files, tmp_path):
    # a line of only spaces inside a string is part of the string: it must stay as it is
    code = (
        'def keep(f):\n    return f\n\n\n@keep\ndef banner():\n    return """top\n    \n'
        'bottom"""  \n\n\nX = 1\n'
    )
    module = src_files("src_banner", code)
    source = function_source(module.banner)
    text = '@keep\ndef banner():\n    return """top\n    \nbottom"""\n'
    assert src_fields(source) == ("banner", text, str(tmp_path / "src_banner.py"), 5)
    assert source.is_def and source.node.name == "banner"


def test_src_a_function_from_a_zip_archive_is_read_through_its_loader(tmp_path, monkeypatch):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("src_zipped.py", "import math\n\n\ndef area(r):\n    return math.pi * r * r\n")
    monkeypatch.syspath_prepend(str(archive))
    try:
        module = importlib.import_module("src_zipped")
        source = function_source(module.area)
    finally:
        sys.modules.pop("src_zipped", None)
    text = "def area(r):\n    return math.pi * r * r\n"
    assert src_fields(source) == ("area", text, str(archive / "src_zipped.py"), 4)


def test_src_a_nested_function_keeps_the_text_of_its_strings(src_files, tmp_path, monkeypatch):
    code = (
        "def outer():\n"
        "    def inner(x):\n"
        '        text = """top\n'
        "        indented\n"
        "\n"
        'flush left"""\n'
        '        return text + f"""\n'
        '    {x}"""\n'
        "\n"
        "    return inner\n"
    )
    module = src_files("src_nested", code)
    monkeypatch.chdir(tmp_path)
    source = function_source(module.outer())
    assert source.text == (  # the block moves left; the strings' own lines stay as they are
        'def inner(x):\n    text = """top\n        indented\n\nflush left"""\n'
        '    return text + f"""\n    {x}"""\n'
    )
    ns: dict = {}
    exec(source.text, ns)
    assert ns["inner"](1) == module.outer()(1) == "top\n        indented\n\nflush left\n    1"


# ---- classes ---------------------------------------------------------------------------------


SRC_SHAPES = """\
class Factory:
    unit: str = "m"

    @classmethod
    def make(cls):
        return cls()


class Sized:
    size: int = 2

    @property
    def area(self):
        return self.size**2


class Greeter:
    parse = float  # callable, but no code of its own
    greeting = "hi"

    def greet(self, name): return f"{self.greeting} {name}"
"""


def test_src_classes_are_found_through_their_methods(src_files, tmp_path):
    module = src_files("src_shapes", SRC_SHAPES, register=False)  # no module file to go by
    path = str(tmp_path / "src_shapes.py")
    factory = (
        'class Factory:\n    unit: str = "m"\n\n    @classmethod\n    def make(cls):\n'
        "        return cls()\n"
    )
    assert src_fields(class_source(module.Factory)) == ("Factory", factory, path, 1)
    sized = (
        "class Sized:\n    size: int = 2\n\n    @property\n    def area(self):\n"
        "        return self.size**2\n"
    )
    assert src_fields(class_source(module.Sized)) == ("Sized", sized, path, 9)
    greeter = textwrap.dedent(SRC_SHAPES.split("\n\n\n")[-1])
    assert src_fields(class_source(module.Greeter)) == ("Greeter", greeter, path, 17)
    assert class_source(module.Greeter).where(4) == f"{path}, line 20"


def test_src_classes_without_methods_are_found_through_their_modules_file(src_files, tmp_path):
    code = """\
        from dataclasses import dataclass


        @dataclass
        class Point:
            x: int = 0
            y: int = 0
        """
    module = src_files("src_points", textwrap.dedent(code))
    text = "@dataclass\nclass Point:\n    x: int = 0\n    y: int = 0\n"
    path = str(tmp_path / "src_points.py")
    assert src_fields(class_source(module.Point)) == ("Point", text, path, 4)


def test_src_a_redefined_class_is_matched_by_its_fields(src_files):
    code = """\
        class Box:
            size: int = 1


        Old = Box


        class Box:
            size: int = 2
            label: str = ""
        """
    module = src_files("src_boxes", textwrap.dedent(code))
    assert class_source(module.Old).text == "class Box:\n    size: int = 1\n"
    assert class_source(module.Box).text == 'class Box:\n    size: int = 2\n    label: str = ""\n'


def test_src_classes_of_cells_come_from_the_newest_cell_that_defines_them(src_cells):
    src_cells(1, "class Box:\n    size: int = 1\n")
    cell = src_cells(2, "class Box:\n    size: int = 2\n\n\nclass Crate:\n    size: int = 3\n")
    source = class_source(src_cells.ns["Box"])
    assert src_fields(source) == ("Box", "class Box:\n    size: int = 2\n", cell, 1)
    assert source.where() == "cell In[2], line 1"


def test_src_a_class_without_source_is_refused(src_files, tmp_path, monkeypatch):
    ghost = type("Ghost", (), {"__module__": "src_nowhere"})
    # made by exec from generated text: linecache knows it, but it is no cell or module
    generated = "class Made:\n    def run(self):\n        return 1\n"
    filename = "<src generated code>"
    entry = (len(generated), None, generated.splitlines(True), filename)
    monkeypatch.setitem(linecache.cache, filename, entry)
    ns: dict = {"__name__": "src_nowhere"}
    exec(compile(generated, filename, "exec"), ns)
    # a class whose module file no longer parses (edited since it ran)
    module = src_files("src_edited", "class Edited:\n    size: int = 1\n")
    (tmp_path / "src_edited.py").write_text("class Edited(:\n")
    linecache.checkcache(str(tmp_path / "src_edited.py"))
    for cls in [ghost, ns["Made"], module.Edited]:
        with pytest.raises(CaptureError) as info:
            class_source(cls)
        assert str(info.value) == (
            f"cannot find the source of class {cls.__name__!r}; define it at the top level "
            "of a cell or module and run that again"
        )
        assert (info.value.name, info.value.where) == (cls.__name__, "")


@pytest.mark.skipif(sys.version_info < (3, 13), reason="classes have __firstlineno__ from 3.13")
def test_src_of_two_alike_classes_the_one_asked_for_is_found_by_its_first_line(src_files):
    code = """\
        class Box:
            size: int = 1


        Old = Box


        class Box:
            size: int = 2
        """
    module = src_files("src_alike", textwrap.dedent(code))
    assert class_source(module.Old).text == "class Box:\n    size: int = 1\n"
    assert class_source(module.Box).text == "class Box:\n    size: int = 2\n"


@pytest.mark.skipif(sys.version_info < (3, 14), reason="annotations are lazy from 3.14")
def test_src_a_class_whose_annotations_fail_is_still_found(src_files):
    module = src_files("src_lazy", "class Box:\n    size: Missing = 1\n")
    assert class_source(module.Box).text == "class Box:\n    size: Missing = 1\n"


# ---- statements, globals and renames ---------------------------------------------------------


def test_src_scan_reports_loads_by_default_and_stores_when_asked():
    total = statement_source("total", "total = total + 1\n", "nodes.py", 1)
    assert src_refs(total) == [("total", 1, 8, False, False, False, False)]
    assert src_refs(total, stores=True) == [
        ("total", 1, 0, False, True, False, False),
        ("total", 1, 8, False, False, False, False),
    ]
    # `global` at the top level of a cell changes nothing: no global statement to rename
    counter = statement_source("counter", "global counter\n", "nodes.py", 1)
    assert src_refs(counter) == []
    assert src_refs(counter, stores=True) == [("counter", 1, -1, False, True, True, False)]


def test_src_scan_string_annotations_and_strings_in_annotations():
    code = """\
        @register
        def f(t: Annotated[float, "unit: K"]) -> "Reading":
            x: "Limit" = t
            return x
        """
    source = statement_source("f", textwrap.dedent(code), "nodes.py", 1)
    assert src_refs(source) == [
        ("register", 1, 1, False, False, False, False),
        ("Reading", 2, -1, True, False, False, False),  # in a string: never renamed in place
        ("Annotated", 2, 9, True, False, False, False),
        ("float", 2, 19, True, False, False, False),
        ("Limit", 3, -1, True, False, False, True),
    ]


def test_src_scan_imports_and_nonlocal_names_inside_functions_are_local():
    code = """\
        def f(path):
            import os.path
            import numpy as np
            from json import loads as parse, dumps

            def g():
                nonlocal path
                path = parse(path)
                return path

            return os, np, parse, dumps, path, g, sqrt
        """
    source = statement_source("f", textwrap.dedent(code), "nodes.py", 1)
    assert src_refs(source) == [("sqrt", 11, 42, False, False, False, True)]


def test_src_rewrite_renames_a_def_or_class_with_its_uses():
    code = "def init(n):\n    return init(n - 1) if n else LIMIT\n"
    source = statement_source("init", code, "nodes.py", 1)
    assert rewrite(source, scan(source), {"init": "user_init", "LIMIT": "LIMIT_2"}, []) == (
        "def user_init(n):\n    return user_init(n - 1) if n else LIMIT_2"
    )
    code = "class Node:\n    def copy(self) -> Node:\n        return Node()\n"
    source = statement_source("Node", code, "nodes.py", 1)
    assert rewrite(source, scan(source), {"Node": "Node_2"}, []) == (
        "class Node_2:\n    def copy(self) -> Node_2:\n        return Node_2()"
    )


def test_src_rewrite_drops_lines_and_trailing_blank_lines():
    source = statement_source("X", "# the sizes\nX = [\n    1,\n]   \n\n\n", "nodes.py", 1)
    assert rewrite(source, scan(source, stores=True), {}, []) == "# the sizes\nX = [\n    1,\n]"
    assert rewrite(source, [], {}, [range(1, 2)]) == "X = [\n    1,\n]"


def test_src_rewrite_never_corrupts_code():
    source = statement_source("X", "Y = 1\nX = Y\n", "nodes.py", 3)
    with pytest.raises(CaptureError) as info:
        rewrite(source, [Ref("Y", 2, 0)], {"Y": "Y_2"}, [])  # col 0 of line 2 is X, not Y
    assert str(info.value) == "internal error renaming 'Y' at nodes.py, line 4"
