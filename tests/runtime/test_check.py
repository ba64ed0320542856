"""``v.check()`` / ``krtlab check``: nodes run for real on their runner image's Python (pyenv's
3.7 and 3.9 on these machines), in environments with protobuf 3.13.0 and the image's pins,
compared with local runs. Nothing is mocked: real interpreters, real pip, real processes."""

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import krtlab as krt
from krtlab.cli import main as cli
from krtlab.runtime import check_env
from krtlab.runtime.recent import KEEP, remembered
from krtlab.spec.runner_image import RUNNER_SHADOWED_MODULES
from tests.support import REPO

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; repeated double xs = 2; }
message Response { string greeting = 1; double mean = 2; string numpy = 3; }
service Entrypoint { rpc Greet (Request) returns (Response) {}; }
"""
#: environments built by these tests are kept here and reused by later runs (like .cache/venv-pb313)
CACHE = REPO / ".cache" / "krtlab"


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KRTLAB_CACHE_DIR", str(CACHE))
    return tmp_path


def greeter(image="konstellation/kre-py:1.23.0"):
    v = krt.Version("greeter-v1", description="Greets whoever asks")
    pb = v.proto(PROTO)

    @v.node(name="py-greeter", image=image)
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"{ctx.get('greeting')} {req.name}!")

    @greet.init
    def setup(ctx):
        ctx.set("greeting", "Hello")

    v.workflow("greeting", entrypoint="Greet", sequential=[greet])
    return v


def stripper(image):
    """A node whose handler uses ``str.removeprefix`` (Python 3.9+)."""
    v = krt.Version("stripper-v1")
    pb = v.proto(PROTO)

    @v.node(name="stripper", image=image)
    def strip(req: pb.Request) -> pb.Response:
        return pb.Response(greeting=req.name.removeprefix("Mr. "))

    v.workflow("strip", entrypoint="Greet", sequential=[strip])
    return v


def pyenv_python(version):
    found = check_env.find_interpreter(version)
    assert isinstance(found, check_env.Interpreter), f"pyenv's Python {version} is needed: {found}"
    return found


@pytest.mark.slow
def test_a_node_answers_the_same_on_python_37_as_locally():
    v = greeter()
    assert v.run("Greet", name="John").response.greeting == "Hello John!"
    v.run("Greet", name="Ann")
    result = v.check(progress=False)  # replays the two local runs
    assert result.ok and result.status == "ok" and result.exit_code == 0, str(result)
    (node,) = result.nodes
    assert node.python.startswith("3.7.") and node.found_by == "pyenv"
    assert node.interpreter == pyenv_python("3.7").path
    assert node.protobuf == "3.13.0" and node.installed == ["protobuf==3.13.0"]
    assert Path(node.venv).parent == CACHE / "check"
    assert [(r.request, r.status, r.runner) for r in result.requests] == [
        ({"name": "John"}, "same", {"greeting": "Hello John!", "mean": 0.0, "numpy": ""}),
        ({"name": "Ann"}, "same", {"greeting": "Hello Ann!", "mean": 0.0, "numpy": ""}),
    ]
    text = str(result)
    assert "greeter-v1: ok" in text and "Python 3.7" in text and node.venv in text
    assert "same" in result._repr_html_() and json.loads(result.to_json())["status"] == "ok"
    # the notebook's own run state is untouched, and the check's runs are not remembered
    assert v.run("Greet", name="Bob").ok
    assert [r["name"] for r in remembered(v)[0]["Greet"]] == ["John", "Ann", "Bob"]


@pytest.mark.slow
def test_python_39_code_fails_on_kre_py_1_23_and_passes_on_1_26():
    request = {"Greet": [{"name": "Mr. Smith"}]}
    old = stripper("konstellation/kre-py:1.23.0").check(request, progress=False)
    assert old.status == "failed" and old.exit_code == 1 and not old
    assert old.nodes[0].status == "ok" and old.nodes[0].python.startswith("3.7.")
    (rc,) = old.requests
    assert rc.status == "failed" and rc.node == "stripper" and rc.local == {
        "greeting": "Smith", "mean": 0.0, "numpy": ""}  # fmt: skip
    assert rc.runner_error == "error in 'stripper': 'str' object has no attribute 'removeprefix'"
    assert rc.where.startswith("src/stripper/main.py:") and "removeprefix" in rc.code
    assert "test_check.py" in rc.where  # the line of this file the node came from
    assert "removeprefix" in str(old) and "failed" in old._repr_html_()

    new = stripper("konstellation/kre-py:1.26.0").check(request, progress=False)
    assert new.ok, str(new)
    assert new.nodes[0].python.startswith("3.9.") and new.nodes[0].runner.endswith("(Python 3.9)")
    assert new.requests[0].runner["greeting"] == "Smith"


@pytest.mark.slow
def test_numpy_gets_the_images_pin():
    v = krt.Version("numpy-v1")
    pb = v.proto(PROTO)

    @v.node(name="mean", image="konstellation/kre-py:1.23.0")
    def mean(req: pb.Request) -> pb.Response:
        return pb.Response(mean=float(np.mean(list(req.xs))), numpy=np.__version__)

    v.workflow("mean", entrypoint="Greet", sequential=[mean])
    result = v.check({"Greet": {"xs": [1, 2, 4]}}, progress=False)
    (node,) = result.nodes
    assert node.installed == ["numpy==1.18.4", "protobuf==3.13.0"], str(result)
    (rc,) = result.requests
    assert rc.runner == {"greeting": "", "mean": 7 / 3, "numpy": "1.18.4"}  # seen in the venv
    assert rc.local == {"greeting": "", "mean": 7 / 3, "numpy": np.__version__}
    assert rc.status == "different" and result.exit_code == 1  # a different numpy answers
    assert '"numpy": "1.18.4"' in str(result) and f'"numpy": "{np.__version__}"' in str(result)


def test_no_interpreter_is_said_plainly_and_is_not_a_pass(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PYENV_ROOT", str(empty))
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.setenv("PATH", str(empty))  # no uv, no python3.7
    v = greeter()
    v.run("Greet", name="John")
    result = v.check(progress=False)
    assert result.status == "not checked" and result.exit_code == 2 and not result.ok
    (node,) = result.nodes
    assert node.status == "not checked" and node.interpreter is None
    assert node.reason.startswith("no Python 3.7 interpreter found (looked in ")
    assert f"{empty}/versions/3.7.*" in node.reason and "python3.7 on PATH" in node.reason
    assert "pyenv install 3.7" in node.reason and "uv python install 3.7" in node.reason
    assert result.requests[0].status == "not replayed"
    assert "NOT CHECKED" in str(result) and " ok" not in str(result).splitlines()[0]


def test_cli_python_that_does_not_exist_exits_2(tmp_path, capsys):
    greeter().export(tmp_path / "greeter")
    code = cli(["check", str(tmp_path / "greeter"), "--python", "/nonexistent"])
    out = capsys.readouterr().out
    assert code == 2
    assert "--python /nonexistent: no such file; the runner runs Python 3.7" in out
    assert "not checked" in out and "pyenv install 3.7" in out


@pytest.mark.slow
def test_cli_checks_a_folder_and_reports_an_import_failure_as_kre_py_logs_it(tmp_path, capsys):
    folder = greeter().export(tmp_path / "greeter")
    args = ["check", str(folder), "--request", "Greet", '{"name": "John"}', "--json"]
    assert cli(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["requests"][0]["status"] == "same"
    main = folder / "src" / "py-greeter" / "main.py"
    text = main.read_text()
    walrus = "    (n := 1)\n    return pb.Response("
    main.write_text(text.replace("    return pb.Response(", walrus))
    assert cli(["check", str(folder), "--request", "Greet", '{"name": "John"}']) == 1
    out = capsys.readouterr().out
    line = next(i for i, s in enumerate(main.read_text().splitlines(), 1) if ":=" in s)
    assert f"import failed at src/py-greeter/main.py:{line} `(n := 1)`: SyntaxError" in out
    assert "runner log: error loading handler script src/py-greeter/main.py: invalid syntax" in out
    assert "not replayed (node 'py-greeter' does not load on its runner)" in out


@pytest.mark.slow
def test_without_requests_nodes_are_still_imported_and_init_run():
    v = krt.Version("init-v1")
    pb = v.proto(PROTO)

    @v.node(name="suffix", image="konstellation/kre-py:1.23.0")
    def suffix(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=ctx.get("word"))

    @suffix.init
    def setup(ctx):
        ctx.set("word", "file.txt".removesuffix(".txt"))  # Python 3.9+: fails on 3.7

    v.workflow("suffix", entrypoint="Greet", sequential=[suffix])
    result = v.check(progress=False)
    (node,) = result.nodes
    assert node.status == "failed" and node.stage == "init", str(result)
    assert node.error == "AttributeError: 'str' object has no attribute 'removesuffix'"
    assert "removesuffix" in node.code and result.exit_code == 1
    assert result.requests == []
    assert any(n.startswith("no request was replayed") for n in result.notes)
    assert "init(ctx) failed at src/suffix/main.py:" in str(result)


@pytest.mark.slow
def test_the_environment_is_built_once_and_reused(tmp_path, monkeypatch):
    cache = REPO / ".cache" / "krtlab-reuse-test"  # a fresh build every time this test runs
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    monkeypatch.setenv("KRTLAB_CACHE_DIR", str(cache))
    lines = []
    v = greeter()
    started = time.perf_counter()
    first = v.check({"Greet": {"name": "A"}}, progress=lines.append)
    built = time.perf_counter() - started
    assert first.ok, str(first)
    assert any("building an environment" in line for line in lines)
    assert any("pip install protobuf==3.13.0" in line for line in lines)
    marker = Path(first.nodes[0].venv) / "krtlab-check.json"
    assert json.loads(marker.read_text())["install"] == ["protobuf==3.13.0"]
    stamp = marker.stat().st_mtime_ns
    lines.clear()
    started = time.perf_counter()
    second = v.check({"Greet": {"name": "B"}}, progress=lines.append)
    reused = time.perf_counter() - started
    assert second.ok and second.nodes[0].venv == first.nodes[0].venv
    assert marker.stat().st_mtime_ns == stamp
    assert not any("building" in line for line in lines)
    assert reused < built / 3, (built, reused)


def test_runs_remember_their_last_requests_for_later_checks(tmp_path):
    v = greeter()
    for name in ["a", "b", "a", "c", "d", "e", "f", "f"]:
        v.run("Greet", name=name)
    requests, path = remembered(v)
    assert [r["name"] for r in requests["Greet"]] == ["a", "c", "d", "e", "f"][-KEEP:]
    assert path == tmp_path / "data" / "greeter-v1" / "requests.json"
    assert json.loads(path.read_text())["requests"]["Greet"][-1] == {"name": "f"}
    # a script that runs the version and exits leaves its requests for `krtlab check`
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.runtime.test_check import greeter
        greeter().run("Greet", name="from a script")
    """))  # fmt: skip
    env = {**os.environ, "KRTLAB_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, str(script)], check=True, env=env, cwd=tmp_path)
    again, _ = remembered(greeter())
    assert again["Greet"][-1] == {"name": "from a script"}
    assert len(again["Greet"]) == KEEP


@pytest.mark.slow
def test_a_chain_across_runners_with_an_early_reply():
    v = krt.Version("chain-v1")
    pb = v.proto(PROTO)

    @v.node(name="first", image="konstellation/kre-py:1.23.0")
    def first(req: pb.Request) -> pb.Request:
        return pb.Request(name=req.name.upper())

    @v.node(name="second", image="konstellation/kre-py:1.26.0")
    async def second(ctx, req: pb.Request) -> pb.Request:
        await ctx.reply(pb.Response(greeting=f"Hi {req.name}"))
        return req

    @v.node(name="third", image="konstellation/kre-py:1.26.0")
    def third(req: pb.Request) -> pb.Response:
        raise ValueError("reaches no one: the request was answered")

    v.workflow("chain", entrypoint="Greet", sequential=[first, second, third])
    result = v.check({"Greet": [{"name": "ann"}]}, progress=False)
    assert result.ok, str(result)
    assert [n.python[:3] for n in result.nodes] == ["3.7", "3.9", "3.9"]
    (rc,) = result.requests
    assert rc.status == "same" and rc.runner["greeting"] == "Hi ANN" == rc.local["greeting"]


@pytest.mark.slow
def test_a_nodes_requirements_txt_is_installed_over_the_images_pins(tmp_path):
    folder = greeter().export(tmp_path / "greeter")
    node = folder / "src" / "py-greeter"
    (node / "requirements.txt").write_text("six==1.16.0  # beyond the image's six 1.15.0\n")
    main = node / "main.py"
    text = main.read_text().replace("import public_input_pb2", "import six, public_input_pb2")
    main.write_text(text.replace('greeting=f"{ctx.get(\'greeting\')} {req.name}!"',
                                 "greeting=six.__version__"))  # fmt: skip
    result = krt.load(folder).check({"Greet": {"name": "x"}}, progress=False)
    (n,) = result.nodes
    assert n.installed == ["protobuf==3.13.0", "six==1.16.0"], str(result)
    assert result.requests[0].runner["greeting"] == "1.16.0"


def test_the_harnesses_shadow_the_runners_own_modules():
    # the harnesses run without krtlab (in the image's Python), so each keeps its own list
    for path in (REPO / "krtlab/runtime/check_harness.py", REPO / "tests/data/kre_py_harness.py"):
        tree = ast.parse(path.read_text())
        (value,) = [
            n.value for n in tree.body
            if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "RUNNER_MODULES"
        ]  # fmt: skip
        assert set(ast.literal_eval(value)) == RUNNER_SHADOWED_MODULES, path
