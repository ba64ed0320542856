"""capture(): what ends up in an exported node module, for functions written in a script/module."""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from krtlab.authoring.capture import Captured, capture, location
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
