"""The runner each kre-py image gives a node: Python, packages, ctx; and the checks against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.spec.facts import NodeEnv
from krtlab.spec.pycompat import python_issues
from krtlab.spec.runners import known_tags, kre_py_runner
from tests.conftest import EXAMPLES, SHARED

TAGS = SHARED / "reference" / "kre-py-tags"


@pytest.mark.parametrize(
    ("tag", "python", "pins", "ctx"),
    [
        ("1.23.0", (3, 7), "1.23.x", set()),
        ("1.23.1", (3, 7), "1.23.x", set()),
        ("1.24.0", (3, 7), "1.24.0", set()),
        ("1.24.1", (3, 7), "1.24.1-2.0.0", set()),
        ("1.25.0", (3, 7), "1.24.1-2.0.0", {"reply"}),
        ("1.25.2", (3, 7), "1.24.1-2.0.0", {"reply"}),
        ("1.26.0", (3, 9), "1.24.1-2.0.0", {"reply"}),
        ("2.0.0", (3, 9), "1.24.1-2.0.0", {"reply"}),
        ("2.1.0", (3, 9), "2.1.x", {"early_reply"}),
        ("2.1.1", (3, 9), "2.1.x", {"early_reply"}),
        ("2.1.2", (3, 9), "2.1.x", {"early_reply", "early_exit"}),
        ("2.1.5", (3, 9), "2.1.x", {"early_reply", "early_exit"}),
    ],
)
def test_each_tag_gives_its_python_pins_and_ctx(tag, python, pins, ctx):
    runner = kre_py_runner(f"konstellation/kre-py:{tag}")
    assert (runner.tag, runner.python, runner.pins_file) == (tag, python, pins)
    base = {"logger", "path", "set", "get", "db", "measurement", "prediction"}
    assert runner.ctx == base | ctx
    reference = (TAGS / f"requirements-{pins}.txt").read_text().split()
    assert {f"{d.split('==')[0].lower()}=={d.split('==')[1]}" for d in reference} == {
        f"{d}=={v}" for d, v in runner.pins.items()
    }  # the shipped package data is the reference's


def test_unknown_images_have_no_runner():
    for image in ("konstellation/kre-py:latest", "konstellation/kre-py:3.0.0",
                  "konstellation/kre-py:1.22.0", "registry.example.com/team/x:1",
                  "konstellation/kre-go:1.11.0"):  # fmt: skip
        assert kre_py_runner(image) is None
    assert kre_py_runner("docker.io/konstellation/kre-py:1.23.0").tag == "1.23.0"
    assert len(known_tags()) == 23


def test_the_compression_refusal_reads_as_each_runner_writes_it():
    old = kre_py_runner("konstellation/kre-py:1.25.1")
    new = kre_py_runner("konstellation/kre-py:1.25.2")
    assert old.compression_error(2_000_000) == (
        "compressed message exceeds maximum size allowed of 1 MB."
    )
    assert new.compression_error(2_000_000) == (
        "compressed message 1953.12 KB exceeds maximum size allowed of 1024.00 KB."
    )


def test_import_names_of_the_pins():
    runner = kre_py_runner("konstellation/kre-py:1.23.0")
    assert {
        "numpy",
        "sklearn",
        "cv2",
        "PIL",
        "dateutil",
        "nats",
        "google",
        "bson",
    } <= runner.imports
    assert "yaml" not in runner.imports and "html2text" not in runner.imports
    assert "html2text" in kre_py_runner("konstellation/kre-py:1.24.0").imports


# ---- Python compatibility --------------------------------------------------------------------

CODE_39 = """\
import zoneinfo
from itertools import pairwise
from math import prod
x = "abc".removeprefix("a")
y = {"a": 1} | {"b": 2}
def f(a, /, b):
    return a
"""


@pytest.mark.parametrize(
    ("code", "line", "needs", "fragment"),
    [
        ("if (n := 3):\n    pass\n", 1, (3, 8), "cannot parse"),
        ("def f(a, /, b):\n    pass\n", 1, (3, 8), "Positional-only"),
        ('s = f"{x=}"\n', 1, (3, 8), "f-string"),
        ("import zoneinfo\n", 1, (3, 9), "'zoneinfo' is new in Python 3.9"),
        ("import tomllib\n", 1, (3, 11), "'tomllib' is new"),
        ("from importlib.metadata import version\n", 1, (3, 8), "importlib.metadata"),
        ("import math\nmath.prod([1])\n", 2, (3, 8), "math.prod is new in Python 3.8"),
        ("from itertools import pairwise\n", 1, (3, 10), "itertools.pairwise"),
        ("import functools as ft\n@ft.cache\ndef f(): pass\n", 2, (3, 9), "functools.cache"),
        ("x = 'a'.removeprefix('b')\n", 1, (3, 9), "str.removeprefix"),
        ("z = {'a': 1} | {'b': 2}\n", 1, (3, 9), "dict | dict"),
        ("d = {}\nd |= dict(a=1)\n", 2, (3, 9), "dict | dict"),
        ("list(zip([1], [2], strict=True))\n", 1, (3, 10), "zip(strict=...)"),
        ("def f(x: list[int]): pass\n", 1, (3, 9), "`list[...]` is evaluated"),
        ("def f() -> int | None: pass\n", 1, (3, 10), "`X | Y` types"),
        ("isinstance(1, int | str)\n", 1, (3, 10), "isinstance(x, A | B)"),
        ("match x:\n    case 1:\n        pass\n", None, (3, 10), "Pattern matching"),
    ],
)
def test_what_older_pythons_cannot_run(code, line, needs, fragment):
    older = (needs[0], needs[1] - 1)
    (issue,) = python_issues(code, older)
    assert fragment in issue.message
    if line is not None:
        assert issue.line == line
    assert python_issues(code, needs) == []  # the Python that has it


def test_annotations_are_not_evaluated_under_the_future_import():
    code = "from __future__ import annotations\ndef f(x: list[int]) -> int | None: pass\n"
    assert python_issues(code, (3, 7)) == []
    assert python_issues("def f(x: 'list[int]'): pass\n", (3, 7)) == []
    assert python_issues('s = f"{x!r} {{y=}} {a == b}"\n', (3, 7)) == []


# ---- the checks, on a node's image -----------------------------------------------------------


def greeter_with(code: bytes, image: str = "konstellation/kre-py:1.23.0", **extra: bytes):
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["src/py-greeter/main.py"] = code + files["src/py-greeter/main.py"]
    files["krt.yml"] = files["krt.yml"].replace(b"konstellation/kre-py:1.23.0", image.encode())
    files.update({f"src/py-greeter/{k}": v for k, v in extra.items()})
    return Project(files, "t")


def findings(project, code, **kw):
    return [f for f in project.validate(**kw).findings if f.code == code]


@pytest.mark.parametrize(
    ("member", "ok_on", "bad_on"),
    [
        ("reply", ["1.25.0", "2.0.0"], ["1.23.0", "1.24.1", "2.1.0"]),
        ("early_reply", ["2.1.0", "2.1.5"], ["1.23.0", "1.25.0", "2.0.0"]),
        ("early_exit", ["2.1.2"], ["2.1.1", "1.25.0"]),
    ],
)
def test_ctx_members_follow_the_image(member, ok_on, bad_on):
    code = f"async def helper(ctx):\n    await ctx.{member}(None)\n\n\n".encode()
    for tag in ok_on:
        assert findings(greeter_with(code, f"konstellation/kre-py:{tag}"), "src.ctx_member") == []
    for tag in bad_on:
        (f,) = findings(greeter_with(code, f"konstellation/kre-py:{tag}"), "src.ctx_member")
        assert f.is_error and (f.file, f.line) == ("src/py-greeter/main.py", 2)
        assert f"'HandlerContext' object has no attribute '{member}'" in f.message
        assert f"ctx.{member} exists from kre-py" in f.hint


def test_a_misspelled_ctx_member_gets_a_did_you_mean():
    code = b"def init(ctx):\n    ctx.lgger.info('x')\n\n\n"
    (f,) = findings(greeter_with(code), "src.ctx_member")
    assert "'logger'" in f.hint


def test_python_features_follow_the_image():
    project = greeter_with(CODE_39.encode() + b"\n\n")
    got = {(f.line, f.is_error) for f in findings(project, "src.python_version")}
    assert {line for line, _ in got} == {1, 2, 3, 4, 5, 6} and all(e for _, e in got)
    message = findings(project, "src.python_version")[0].message
    assert "konstellation/kre-py:1.23.0 runs Python 3.7" in message
    on_39 = findings(greeter_with(CODE_39.encode() + b"\n\n", "konstellation/kre-py:1.26.0"),
                     "src.python_version")  # fmt: skip
    assert [f.line for f in on_39] == [2]  # only itertools.pairwise (3.10)


def test_imports_follow_the_tags_packages_and_declared_requirements():
    project = greeter_with(b"import html2text\n")
    (f,) = findings(project, "src.import_not_in_image")
    assert f.is_error and "konstellation/kre-py:1.23.0 image does not have" in f.message
    assert findings(greeter_with(b"import html2text\n", "konstellation/kre-py:1.24.0"),
                    "src.import_not_in_image") == []  # fmt: skip
    project = greeter_with(b"import yaml\n")
    env = {"py-greeter": NodeEnv(provides=frozenset({"yaml"}), requirements=("PyYAML==6.0.2",))}
    assert findings(project, "src.import_not_in_image", envs=env) == []
    assert len(findings(project, "src.import_not_in_image")) == 1


def test_a_custom_image_is_checked_as_its_base():
    image = "registry.example.com/team/greeter:1"
    project = greeter_with(b"x = 'a'.removeprefix('b')\n", image)
    assert findings(project, "src.python_version") == []  # base unknown: nothing known
    env = {"py-greeter": NodeEnv(base="konstellation/kre-py:1.23.0")}
    assert len(findings(project, "src.python_version", envs=env)) == 1


def test_the_nodes_own_modules_are_checked_for_its_python():
    project = greeter_with(b"import helpers\n", helpers=b"")
    files = dict(project.files)
    files["src/py-greeter/helpers.py"] = b"import zoneinfo\n"
    (f,) = findings(Project(files, "t"), "src.python_version")
    assert f.file == "src/py-greeter/helpers.py"


def test_reference_files_exist():
    assert Path(TAGS / "README.md").is_file()


# ---- runner generations: each image's handler contract ------------------------------------------

V3_NODE = b"""\
async def default_handler(ctx, data):
    await ctx.send_output(data)
"""
JSON_NODE = b"""\
def handler(ctx, data):
    return {"greeting": "Hello " + data["name"]}
"""


def project_with(code: bytes, image: str) -> Project:
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["src/py-greeter/main.py"] = code
    files["krt.yml"] = files["krt.yml"].replace(b"konstellation/kre-py:1.23.0", image.encode())
    return Project(files, "t")


@pytest.mark.parametrize(
    ("image", "generation"),
    [("konstellation/kre-py:1.1.0", "json"), ("konstellation/kre-py:1.2.0", "json"),
     ("konstellation/kre-py:1.3.0", "v1"), ("konstellation/kre-py:1.23.0", "v1"),
     ("konstellation/kre-py:2.1.5", "v1"), ("konstellation/kre-py:3.0.0", "v3"),
     ("konstellation/kre-py:latest", None), ("registry/x:1", None)],
)  # fmt: skip
def test_generations(image, generation):
    from krtlab.spec.generations import runner_generation

    assert runner_generation(image) == generation


def test_each_generation_is_checked_against_its_own_contract():
    assert project_with(V3_NODE, "konstellation/kre-py:3.0.0").validate().ok
    assert project_with(JSON_NODE, "konstellation/kre-py:1.1.0").validate().ok  # sync, dict
    v1 = project_with(V3_NODE, "konstellation/kre-py:1.23.0").validate()
    assert [f.code for f in v1.errors] == ["src.no_handler"]
    v1_on_3 = project_with(load_project(EXAMPLES / "greeter").files["src/py-greeter/main.py"],
                           "konstellation/kre-py:3.0.0").validate()  # fmt: skip
    (f,) = [f for f in v1_on_3.errors if f.code == "src.no_handler"]
    assert "neither default_handler nor custom_handlers" in f.message
    assert "renamed handler to default_handler" in f.hint


def test_a_kre_py_3_handler_that_returns_its_result_sends_nothing():
    code = b"def default_handler(ctx, data):\n    return data\n"
    report = project_with(code, "konstellation/kre-py:3.0.0").validate()
    assert {f.code for f in report.findings} >= {"src.handler_not_async", "src.result_ignored"}
    (w,) = [f for f in report.warnings if f.code == "src.result_ignored"]
    assert w.line == 2 and w.hint == "await ctx.send_output(result)"


def test_runs_refuse_plainly_what_they_cannot_run_faithfully(tmp_path):
    import krtlab as krt

    project_with(V3_NODE, "konstellation/kre-py:3.0.0")
    folder = tmp_path / "g3"
    files = project_with(V3_NODE, "konstellation/kre-py:3.0.0").files
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    result = krt.load(folder).run("PyGreet", name="x")
    assert str(result.error) == (
        "error in 'py-greeter': it runs on konstellation/kre-py:3.0.0, a KRT v2 runner "
        "(default_handler, ctx.send_output): krtlab runs kre-py 1.2x–2.x nodes; validate, build "
        "and deploy still work"
    )
