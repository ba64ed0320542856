"""``krtlab.spec.runner_checks.check_runner``: each finding a Python node gets against its
runner image (imports, package versions, Python version, ctx members), whole."""

from __future__ import annotations

import pytest

from krtlab.spec.checker import Checker
from krtlab.spec.facts import FileFacts, NodeEnv, SourceFacts
from krtlab.spec.pysource import read_python_source
from krtlab.spec.runner_checks import check_runner, node_runner
from krtlab.spec.runners import _import_names, kre_py_runner, normalize, requirement_name
from krtlab.spec.suggest import close_matches, did_you_mean

IMG = "konstellation/kre-py:1.23.0"
SRC = "src/my-node/main.py"
HELPERS = "src/my-node/helpers.py"
PKG = "src/my-node/pkg/__init__.py"
F = FileFacts("file")
FILES = {SRC: F, HELPERS: F, PKG: F, "src/other/x.py": F, "src/my-node-yaml/main.py": F}
DECLARE = (
    "declare it: @v.node(..., requirements=[...]) (krtlab then writes an image FROM "
    f"{IMG} that installs it), or use a custom image FROM {IMG}"
)
SHADOWED = "node 'my-node' imports 'config', but kre-py's own config.py comes first on sys.path"
RENAME = "rename the module, e.g. config_my_node"


def found(
    code: str,
    image: str = IMG,
    files: dict[str, FileFacts] | None = FILES,
    sources: dict[str, SourceFacts] | None = None,
    env: NodeEnv | None = None,
) -> list[tuple[object, ...]]:
    check = Checker(None)
    facts = read_python_source(code)
    check_runner(check, "my-node", image, SRC, facts, files, sources, env, ("nodes", 0))
    assert {f.loc for f in check.findings} <= {("nodes", 0)}
    return [(f.severity, f.code, f.message, f.file, f.line, f.hint) for f in check.findings]


def missing(module: str, line: int, certain: bool = True, path: str = SRC, hint: str = DECLARE):
    message = f"node 'my-node' imports {module!r}, which the {IMG} image does not have"
    return (
        "error" if certain else "warning",
        "src.import_not_in_image",
        message + ("; the node would fail to start" if certain else ""),
        path,
        line,
        hint,
    )


def test_imports_the_image_does_not_have():
    code = (
        "import config\nimport yaml\ntry:\n    import toml\nexcept ImportError:\n    pass\n"
        "import numpy, os, public_input_pb2\nimport helpers\nimport x\n"
    )
    assert found(code) == [
        ("warning", "src.shadowed_import", SHADOWED, SRC, 1, RENAME),
        missing("yaml", 2),
        missing("x", 9),
        missing("toml", 4, certain=False),
    ]  # fmt: skip


def test_the_hint_names_the_version_installed_here():
    env = NodeEnv(installed=(("yaml", "PyYAML", "6.0.1"),))
    hint = DECLARE.replace("[...]", "['PyYAML==6.0.1']")
    assert found("import yaml\n", env=env) == [missing("yaml", 1, hint=hint)]
    assert found("import yaml\n", env=NodeEnv(provides=frozenset({"yaml"}))) == []


def test_a_tag_krtlab_does_not_know_may_lack_an_import():
    image = "konstellation/kre-py:1.22.0"
    may = f"which the stock {image} image may not have (krtlab does not know this tag's packages)"
    hint = f"build a custom image FROM {image} that installs it"
    assert found("import yaml\nimport numpy\nimport toml\n", image=image) == [
        ("warning", "src.import_not_in_image", f"node 'my-node' imports 'yaml', {may}", SRC, 1,
         hint),
        ("warning", "src.import_not_in_image", f"node 'my-node' imports 'toml', {may}", SRC, 3,
         hint),
    ]  # fmt: skip


def test_a_custom_image_is_checked_against_its_base_only_when_known():
    custom = "registry.example.com/x:1"
    assert found("import yaml\nimport config\n", image=custom) == [
        ("warning", "src.shadowed_import", SHADOWED, SRC, 2, RENAME),
    ]  # fmt: skip
    assert found("import yaml\n", image=custom, env=NodeEnv(base=IMG)) == [missing("yaml", 1)]
    assert found("import yaml\nimport config\n", files=None) == [
        ("warning", "src.shadowed_import", SHADOWED, SRC, 2, RENAME),
    ]  # fmt: skip


def test_the_nodes_own_modules_are_checked_too():
    sources = {
        HELPERS: read_python_source(
            "import pkg\nimport zoneinfo\nimport requests2\nx = ctx.nope\n"
        ),
        PKG: read_python_source("import helpers\nimport lightgbm\n"),
    }
    assert found("import helpers\n", sources=sources) == [
        missing("requests2", 3, path=HELPERS),
        ("error", "src.python_version",
         f"node 'my-node': module 'zoneinfo' is new in Python 3.9; {IMG} runs Python 3.7",
         HELPERS, 2,
         "write it for Python 3.7, or use an image with Python 3.9+ (kre-py 1.26.0 and later "
         "run Python 3.9)"),
        missing("lightgbm", 2, path=PKG),
    ]  # fmt: skip
    broken = {HELPERS: read_python_source("import yaml\ndef (\n")}
    assert found("import helpers\n", sources=broken) == []
    assert found("import helpers\n", sources=None) == []


def test_each_own_module_is_checked_once_and_the_runners_own_never():
    files = {**FILES, "src/my-node/config.py": F}
    sources = {
        HELPERS: read_python_source("import os\n"),
        PKG: read_python_source("import lightgbm\n"),
        "src/my-node/config.py": read_python_source("import yaml2\n"),
    }
    code = "import config\nimport pkg\nimport helpers\nfrom helpers import x\n"
    assert found(code, files=files, sources=sources) == [
        ("warning", "src.shadowed_import", SHADOWED, SRC, 1, RENAME),
        missing("lightgbm", 1, path=PKG),
    ]


def test_packages_at_another_version_on_the_image():
    env = NodeEnv(
        requirements=("NumPy[extra]>=1.0",),
        installed=(("yaml", "PyYAML", "6.0"), ("numpy", "numpy", "1.26.4"),
                   ("pandas", "pandas", "2.2.3"), ("six", "six", "1.15.0")),
    )  # fmt: skip
    assert found("x = 1\n", env=env) == [
        ("warning", "deps.version",
         f"node 'my-node' imports 'pandas': pandas 2.2.3 here, 1.0.3 in {IMG}", SRC, None,
         "the node runs with pandas 1.0.3 on KRE: check it there (krtlab check), or declare "
         "requirements=['pandas==2.2.3'] to install yours"),
    ]  # fmt: skip
    declared = NodeEnv(requirements=("pandas ==2.2.3",), installed=env.installed[2:3])
    assert found("x = 1\n", env=declared) == []


def test_ctx_members_the_runner_does_not_give():
    code = (
        "async def handler(ctx, data):\n    ctx.reply(1)\n    ctx.lgger.info(1)\n    ctx.zzz\n"
        "    ctx.__class__\n    ctx.early_exit()\n    ctx.logger.info(1)\n"
    )
    no = (
        f"which the {IMG} runner's context does not have: AttributeError: 'HandlerContext' "
        "object has no attribute"
    )
    assert found(code) == [
        ("error", "src.ctx_member", f"node 'my-node' uses ctx.reply, {no} 'reply'", SRC, 2,
         "ctx.reply exists from kre-py 1.25.0 to 2.0.0 (renamed ctx.early_reply in 2.1.0)"),
        ("error", "src.ctx_member", f"node 'my-node' uses ctx.lgger, {no} 'lgger'", SRC, 3,
         "did you mean 'logger'?"),
        ("error", "src.ctx_member", f"node 'my-node' uses ctx.zzz, {no} 'zzz'", SRC, 4,
         "its ctx has: db, get, logger, measurement, path, prediction, set"),
        ("error", "src.ctx_member", f"node 'my-node' uses ctx.early_exit, {no} 'early_exit'",
         SRC, 6, "ctx.early_exit exists from kre-py 2.1.2"),
    ]  # fmt: skip


def test_python_features_newer_than_the_images():
    code = "def f(x: int | None): pass\n"
    union = (
        "`X | Y` types are evaluated here and need Python 3.10; add `from __future__ import "
        "annotations` or use Optional/Union"
    )
    assert found(code) == [
        ("error", "src.python_version", f"node 'my-node': {union}; {IMG} runs Python 3.7", SRC,
         1, "write it for Python 3.7, or use an image with Python 3.10+ (kre-py 1.26.0 and "
         "later run Python 3.9)"),
    ]  # fmt: skip
    image = "konstellation/kre-py:2.1.5"
    assert found(code, image=image) == [
        ("error", "src.python_version", f"node 'my-node': {union}; {image} runs Python 3.9", SRC,
         1, "write it for Python 3.9"),
    ]  # fmt: skip
    assert found("def f(x: list[int]): pass\n", image=image) == []


def test_the_runner_of_a_node_is_its_base_images():
    base = kre_py_runner(IMG)
    assert node_runner("registry.example.com/x:1", NodeEnv(base=IMG)) == base
    assert node_runner(IMG, None) == base
    assert node_runner(IMG, NodeEnv()) == base
    assert node_runner("registry.example.com/x:1", NodeEnv()) is None


def test_runner_facts():
    runner = kre_py_runner("konstellation/kre-py:1.23.1@sha256:abc")
    assert runner is not None
    assert (str(runner), runner.user, runner.python_text) == (
        "kre-py:1.23.1 (Python 3.7)",
        "root",
        "3.7",
    )
    assert kre_py_runner("konstellation/kre-py:1.24.0").user == "kre"
    names = runner.import_names()
    assert set(names) == set(runner.pins)
    assert names["scikit-learn"] == frozenset({"sklearn"})
    assert names["numpy"] == frozenset({"numpy"})
    assert names["pymongo"] == frozenset({"pymongo", "bson", "gridfs"})
    assert _import_names("lightgbm-extra") == ("lightgbm_extra",)
    assert {"pip", "setuptools", "pkg_resources", "sklearn"} <= runner.imports
    assert normalize("Smart_Open") == "smart-open"
    assert normalize("zope.interface") == "zope-interface"
    assert normalize("a-_.b") == "a-b"


def test_close_matches_gives_the_best_three_unless_asked():
    words = ["logger1", "logger2", "logger3", "logger4", "other"]
    assert close_matches("logger", words) == ["logger4", "logger3", "logger2"]
    assert close_matches("logger", words, n=1) == ["logger4"]
    assert did_you_mean("logger", words) == "did you mean 'logger4', 'logger3' or 'logger2'?"
    assert did_you_mean("GPU", ["gpu", "cpu"]) == "did you mean 'gpu'?"
    assert did_you_mean("abcdefgh", ["abcdxxxx"]) is None


def test_the_tag_of_a_kre_py_image():
    from krtlab.spec.runners import kre_py_tag

    assert kre_py_tag("konstellation/kre-py:1.23.0") == "1.23.0"
    assert kre_py_tag("docker.io/library/konstellation/kre-py:1.1.0@sha256:a@b") == "1.1.0"
    assert kre_py_tag("konstellation/kre-py") == ""
    assert kre_py_tag("konstellation/kre-py:x:1") == "x:1"
    assert kre_py_tag("konstellation/kre-py:1 x:2") == "1 x:2"
    assert kre_py_tag("registry.example.com/x:1") is None
    assert kre_py_runner("konstellation/kre-py") is None


# -- the distribution a requirements.txt line names (spec.runners.requirement_name) --------


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("lightgbm==4.5.0", "lightgbm"),
        ("  scikit-learn >= 1.0", "scikit-learn"),
        ("requests[socks]==2.31", "requests"),
        ("zope.interface", "zope.interface"),
        ("Pillow", "Pillow"),
        ("x", "x"),
        ("torch @ https://example.com/torch.whl", "torch"),
        ("six; python_version < '3'", "six"),
        ("pkg (>=1.0)", "pkg"),
        ("a.b_c-d", "a.b_c-d"),
    ],
)
def test_requirement_name(line, name):
    assert requirement_name(line) == name


@pytest.mark.parametrize(
    "line",
    ["-r other.txt", "./local/pkg", "", "  # comment", "git+https://example.com/x.git", "pkg-"],
)
def test_a_line_that_is_not_a_requirement(line):
    assert requirement_name(line) is None
