"""Custom node images: the names and Dockerfiles krtlab writes, what a bundle's Dockerfiles and
requirements.txt files say each node runs on, and which runner a node gets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from krtlab.bundle import images
from krtlab.bundle.images import (
    custom_image,
    dockerfile,
    envs_from_files,
    provides,
    read_dockerfiles,
    runner_of,
)
from krtlab.spec.facts import NodeEnv
from krtlab.spec.model import Manifest, NodeSpec
from krtlab.spec.runners import kre_py_runner

PY_123 = "konstellation/kre-py:1.23.0"
PY_124 = "konstellation/kre-py:1.24.0"


# -- requirement names and the imports they provide ---------------------------------------------


@pytest.fixture
def installed(monkeypatch):
    """What is installed here: import name -> distributions (importlib.metadata's view)."""
    found = {
        "yaml": ["PyYAML"],
        "_yaml": ["PyYAML"],
        "google": ["protobuf", "googleapis-common-protos"],
        "attr": ["attrs"],
        "attrs": ["attrs"],
    }
    monkeypatch.setattr(images, "distributions_of_imports", lambda: found)
    return found


def test_provides_reads_installed_metadata(installed):
    assert provides(["pyyaml==6.0.2"]) == {"yaml", "_yaml"}
    assert provides(["PyYAML"]) == {"yaml", "_yaml"}
    assert provides(["googleapis_common_protos==1.6"]) == {"google"}
    assert provides(["attrs>=23", "pyyaml"]) == {"attr", "attrs", "yaml", "_yaml"}


def test_provides_of_distributions_not_installed(installed):
    assert provides(["scikit-learn==1.5"]) == {"sklearn"}  # well known
    assert provides(["Scikit_Learn"]) == {"sklearn"}
    assert provides(["my-own-pkg==1", "lightgbm==4.5.0"]) == {"my_own_pkg", "lightgbm"}
    assert provides(["My.Pkg"]) == {"my_pkg"}
    assert provides(["-r base.txt", "./local", "six"]) == {"six"}  # lines naming nothing
    assert provides([]) == frozenset()


def test_provides_skips_a_line_that_is_not_a_requirement(installed):
    assert provides(["pyyaml", "-r x.txt"]) == {"yaml", "_yaml"}


# -- the images krtlab writes --------------------------------------------------------------------


def test_custom_image_name_folder_and_requirements():
    image = custom_image("price-v1", PY_123, ["Zeta==1", " alpha==2 ", "", "  ", "Zeta==1"], None)
    assert image.name == "price-v1-runner:1.23.0-72b43104"
    assert image.folder == "images/1.23.0-72b43104"
    assert image.runner == kre_py_runner(PY_123)
    assert image.requirements == ("alpha==2", "Zeta==1")  # sorted whatever the case, deduplicated


def test_custom_image_name_depends_on_base_and_pins_only():
    a = custom_image("v1", PY_123, ["b==1", "a==1"], None)
    assert a == custom_image("v1", PY_123, ["a==1", "b==1", "a==1"], None)
    assert a.name == "v1-runner:1.23.0-b6df6308"
    assert custom_image("v1", PY_124, ["a==1", "b==1"], None).name == "v1-runner:1.24.0-66da9792"
    assert custom_image("v1", PY_123, ["a==1"], None).name == "v1-runner:1.23.0-966f912a"
    assert custom_image("v1", PY_123, [], None).name == "v1-runner:1.23.0-17f33876"


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("registry.example.com/team", "registry.example.com/team/v1-runner:1.23.0-966f912a"),
        ("registry.example.com/team//", "registry.example.com/team/v1-runner:1.23.0-966f912a"),
        ("LOCALBOX/", "LOCALBOX/v1-runner:1.23.0-966f912a"),
        ("", "v1-runner:1.23.0-966f912a"),
        (None, "v1-runner:1.23.0-966f912a"),
    ],
)
def test_custom_image_prefix(prefix, name):
    image = custom_image("v1", PY_123, ["a==1"], prefix)
    assert image.name == name
    assert image.folder == "images/1.23.0-966f912a"


@pytest.mark.parametrize("base", ["konstellation/kre-go:1.11.0", "python:3.11", "x/kre-py:latest"])
def test_custom_image_needs_a_known_kre_py_base(base):
    with pytest.raises(ValueError) as info:
        custom_image("v1", base, ["a==1"], None)
    assert info.value.args == (base,)


def test_dockerfile_on_a_root_runner():
    image = custom_image("v1", PY_123, ["numpy==1.21", "Lightgbm==4.5.0"], "reg/team")
    expected = (
        "# image: reg/team/v1-runner:1.23.0-41bb6820\n"
        "# krtlab: the image of node(s) etl, model of version v1; build and push it before "
        "deploying:\n"
        "#   docker build -t reg/team/v1-runner:1.23.0-41bb6820 images/1.23.0-41bb6820 && "
        "docker push reg/team/v1-runner:1.23.0-41bb6820\n"
        "FROM konstellation/kre-py:1.23.0\n"
        "RUN python3 -m pip install --no-cache-dir \\\n"
        "        Lightgbm==4.5.0 \\\n"
        "        numpy==1.21\n"
    )
    assert dockerfile(image, ["etl", "model"], "v1") == expected
    assert image.dockerfile(iter(["etl", "model"]), "v1") == expected


def test_dockerfile_on_a_runner_that_runs_as_kre():
    image = custom_image("v2", PY_124, ["a==1"], None)
    assert image.dockerfile(["one"], "v2") == (
        "# image: v2-runner:1.24.0-1ad6890e\n"
        "# krtlab: the image of node(s) one of version v2; build and push it before deploying:\n"
        "#   docker build -t v2-runner:1.24.0-1ad6890e images/1.24.0-1ad6890e && "
        "docker push v2-runner:1.24.0-1ad6890e\n"
        "FROM konstellation/kre-py:1.24.0\n"
        "USER root\n"
        "RUN python3 -m pip install --no-cache-dir \\\n"
        "        a==1\n"
        "USER kre\n"
    )


# -- reading a bundle's Dockerfiles and requirements ---------------------------------------------

DOCKERFILE = b"# image: reg/v1-runner:1.24.0-abc\nFROM konstellation/kre-py:1.24.0\nUSER root\n"


def test_written_dockerfiles_are_read_back():
    image = custom_image("v1", PY_124, ["a==1"], "reg")
    files = {f"{image.folder}/Dockerfile": image.dockerfile(["n"], "v1").encode()}
    assert read_dockerfiles(files) == {"reg/v1-runner:1.24.0-1ad6890e": PY_124}


def test_read_dockerfiles_reads_only_images_dockerfiles():
    files = {
        "src/n/main.py": b"x",
        "images/a/README.md": DOCKERFILE.replace(b"-abc", b"-readme"),
        "other/Dockerfile": DOCKERFILE.replace(b"-abc", b"-other"),
        "images/dockerfile": DOCKERFILE.replace(b"-abc", b"-lower"),
        "images/a/Dockerfile": DOCKERFILE,
        "images/b/Dockerfile": (
            "# edited by hand: ü \xff\n".encode("latin-1")
            + b"# image: reg/v1-runner:1.23.0-def extra\n"
            + b"FROM   konstellation/kre-py:1.23.0 AS base\nRUN true\n"
        ),
        "images/c/Dockerfile": b"FROM konstellation/kre-py:1.23.0\n",  # no name: ignored
        "images/d/Dockerfile": b"# image: reg/v1-runner:1.23.0-ghi\n",  # no FROM: ignored
        "images/e/Dockerfile": b"# IMAGE: x:1\nfrom konstellation/kre-py:1.23.0\n",
    }
    assert read_dockerfiles(files) == {
        "reg/v1-runner:1.24.0-abc": PY_124,
        "reg/v1-runner:1.23.0-def": PY_123,
    }


def _manifest(*nodes: NodeSpec) -> Manifest:
    return Manifest(version="v1", description="d", nodes=nodes)


def test_envs_from_files(installed):
    files = {
        "images/x/Dockerfile": DOCKERFILE,
        "src/etl/requirements.txt": (
            b"pyyaml==6.0.2  # config\n\n   \n# a comment line\nlightgbm==4.5.0#no space\n"
            b"  my-pkg==1 # one # two\n"
        ),
        "src/model/requirements.txt": b"",
        "lib/deep/go/requirements.txt": b"a==1\n",
        "requirements.txt": b"attrs  # at the root, beside a root main.py\n",
    }
    manifest = _manifest(
        NodeSpec("etl", "reg/v1-runner:1.24.0-abc", "src/etl/main.py"),
        NodeSpec("model", "reg/v1-runner:1.24.0-abc", "src/model/main.py"),
        NodeSpec("plain", PY_123, "src/plain/main.py"),
        NodeSpec("deep", PY_123, "lib/deep/go/main.py"),
        NodeSpec("root", PY_123, "main.py"),
        NodeSpec("dotted", PY_123, "./lib/deep/go/main.py"),  # the same folder, written longer
    )
    assert envs_from_files(files, manifest) == {
        "etl": NodeEnv(
            base=PY_124,
            requirements=("pyyaml==6.0.2", "lightgbm==4.5.0", "my-pkg==1"),
            provides=frozenset({"yaml", "_yaml", "lightgbm", "my_pkg"}),
        ),
        "model": NodeEnv(base=PY_124, requirements=(), provides=frozenset()),
        "deep": NodeEnv(base=None, requirements=("a==1",), provides=frozenset({"a"})),
        "root": NodeEnv(base=None, requirements=("attrs",), provides=frozenset({"attr", "attrs"})),
        "dotted": NodeEnv(base=None, requirements=("a==1",), provides=frozenset({"a"})),
    }


def test_envs_from_files_keeps_lines_it_cannot_read(installed):
    files = {
        "images/x/Dockerfile": DOCKERFILE,
        "src/etl/requirements.txt": b"pyyaml\n-r more.txt  # \xff\n",
    }
    manifest = _manifest(NodeSpec("etl", "reg/v1-runner:1.24.0-abc", "src/etl/main.py"))
    env = envs_from_files(files, manifest)["etl"]
    # the pip option is kept as written and promises nothing; the lines beside it still do
    assert env == NodeEnv(
        base=PY_124, requirements=("pyyaml", "-r more.txt"), provides=frozenset({"yaml", "_yaml"})
    )


def test_envs_from_files_of_requirements_without_a_dockerfile(installed):
    files = {"src/n/requirements.txt": b"pyyaml\n"}
    manifest = _manifest(NodeSpec("n", "somewhere/else:1", "src/n/main.py"))
    assert envs_from_files(files, manifest) == {
        "n": NodeEnv(base=None, requirements=("pyyaml",), provides=frozenset({"yaml", "_yaml"}))
    }
    files = {"src/n/requirements.txt": b"-e .\n"}
    assert envs_from_files(files, manifest) == {"n": NodeEnv(base=None, requirements=("-e .",))}


# -- which runner a node runs on -----------------------------------------------------------------


def _node(image: str, kind: str = "python", **kw):
    return SimpleNamespace(kind=kind, image=image, **kw)


def test_runner_of_a_stock_image():
    assert runner_of(SimpleNamespace(), _node(PY_124)) == kre_py_runner(PY_124)
    assert runner_of(SimpleNamespace(_base=None), _node(PY_123, runner=None)) == (
        kre_py_runner(PY_123)
    )


def test_runner_of_a_go_node_or_an_unknown_image_is_none():
    assert runner_of(SimpleNamespace(), _node("konstellation/kre-go:1.11.0", kind="go")) is None
    assert runner_of(SimpleNamespace(), _node(PY_123, kind="go")) is None
    assert runner_of(SimpleNamespace(), _node("mine/own:1")) is None


def test_runner_of_a_node_that_declares_its_base():
    node = _node("mine/own:1", runner=PY_124)
    assert runner_of(SimpleNamespace(), node) == kre_py_runner(PY_124)
    bundle = SimpleNamespace(files={"images/x/Dockerfile": DOCKERFILE})
    version = SimpleNamespace(_base=bundle)
    # the declared base wins over the bundle's Dockerfile
    assert runner_of(version, _node("reg/v1-runner:1.24.0-abc", runner=PY_123)) == (
        kre_py_runner(PY_123)
    )


def test_runner_of_a_loaded_node_reads_its_bundles_dockerfile():
    bundle = SimpleNamespace(files={"images/x/Dockerfile": DOCKERFILE})
    version = SimpleNamespace(_base=bundle)
    assert runner_of(version, _node("reg/v1-runner:1.24.0-abc")) == kre_py_runner(PY_124)
    assert runner_of(version, _node(PY_123)) == kre_py_runner(PY_123)  # not a custom image
    assert runner_of(version, _node("reg/unknown:1")) is None
