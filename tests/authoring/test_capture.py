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

from krtlab.authoring.capture import Captured, capture
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
    with pytest.raises(CaptureError, match="not a protobuf message class"):
        cap.import_name_for(dict)


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
