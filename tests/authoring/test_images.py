"""Nodes that need packages beyond their stock image: requirements, Dockerfiles, image names."""

import re

import pytest

import krtlab as krt
from krtlab.errors import SpecError

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string text = 1; }
message Response { string text = 1; }
service Entrypoint { rpc Go (Request) returns (Response) {}; }
"""


def version(image="konstellation/kre-py:1.23.0", requirements=("PyYAML==6.0.2",), **kw):
    v = krt.Version("img-v1", description="x")
    pb = v.proto(PROTO)

    def dump(req: pb.Request) -> pb.Response:
        import yaml  # imported where it runs: exported as it is

        return pb.Response(text=yaml.safe_dump({"t": req.text}).strip())

    node = v.node(name="n", image=image, requirements=requirements, **kw)(dump)
    v.workflow("wf", entrypoint="Go", sequential=[node])
    return v


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", text)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def test_requirements_give_the_node_its_own_image_and_dockerfile(tmp_path):
    v = version()
    v.image_prefix("registry.example.com/team/")
    assert v.validate().ok, v.validate()
    out = v.export(tmp_path / "out")
    krt_yml = (out / "krt.yml").read_text()
    image = re.search(r"image: (registry\S+)", krt_yml).group(1)
    assert re.fullmatch(r"registry\.example\.com/team/img-v1-runner:1\.23\.0-[0-9a-f]{8}", image)
    assert (out / "src/n/requirements.txt").read_text() == "PyYAML==6.0.2\n"
    (dockerfile,) = list(out.glob("images/*/Dockerfile"))
    assert dockerfile.parent.name == image.rsplit(":", 1)[1]
    assert parse_dockerfile(dockerfile.read_text()) == [
        ("FROM", "konstellation/kre-py:1.23.0"),  # 1.23 runs as root
        ("RUN", "python3 -m pip install --no-cache-dir PyYAML==6.0.2"),
    ]
    assert f"docker build -t {image} images/" in dockerfile.read_text()
    # loaded back, the bundle says what the node runs on: yaml is no missing import
    report = krt.load(out).validate()
    assert "src.import_not_in_image" not in report.codes(), report


def test_images_from_1_24_run_as_kre_so_the_install_runs_as_root():
    v = version("konstellation/kre-py:2.1.5")
    v.image_prefix("reg.example.com")
    text = next(d for p, d in v.project().files.items() if p.endswith("Dockerfile")).decode()
    assert [i for i, _ in parse_dockerfile(text)] == ["FROM", "USER", "RUN", "USER"]
    assert parse_dockerfile(text)[1] == ("USER", "root") and parse_dockerfile(text)[3] == (
        "USER", "kre"
    )  # fmt: skip


def test_one_image_per_distinct_set_and_version_wide_requirements():
    v = krt.Version("img-v2", description="x")
    pb = v.proto(PROTO)
    v.requirements("PyYAML==6.0.2")

    @v.node(name="a")
    def a(req: pb.Request) -> pb.Response:
        return pb.Response(text=req.text)

    @v.node(name="b")
    def b(req: pb.Response) -> pb.Response:
        return req

    @v.node(name="c", requirements=["lightgbm==4.5.0"])
    def c(req: pb.Response) -> pb.Response:
        return req

    v.workflow("wf", entrypoint="Go", sequential=[a, b, c])
    files = v.project().files
    dockerfiles = sorted(p for p in files if p.endswith("Dockerfile"))
    assert len(dockerfiles) == 2  # a and b share one
    assert files["src/c/requirements.txt"] == b"PyYAML==6.0.2\nlightgbm==4.5.0\n"
    images = {n.name: n.image for n in v.manifest().nodes}
    assert images["a"] == images["b"] != images["c"]
    assert v.requirements() == ("PyYAML==6.0.2",)


def test_without_a_registry_the_image_name_is_local_and_validate_says_so():
    report = version().validate()
    (f,) = [f for f in report.warnings if f.code == "image.no_registry"]
    assert f.loc == ("nodes", 0, "image") and "v.image_prefix(" in f.hint


def test_a_missing_package_is_an_error_until_declared():
    report = version(requirements=()).validate()
    (f,) = [f for f in report.errors if f.code == "src.import_not_in_image"]
    assert "'yaml'" in f.message and "requirements=['PyYAML==" in f.hint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requirements": "PyYAML"}, "a list of lines"),
        ({"requirements": ["==1.0"]}, "not a requirement"),
        ({"requirements": ["--index-url x"]}, "'--index-url x': pip options have no place"),
        ({"requirements": ["git+https://x/y.git"]}, "'git\\+https://x/y.git' is not a requirement"),
        ({"image": "registry.example.com/me/x:1"}, "runner='konstellation/kre-py:<tag>'"),
        ({"image": "registry.example.com/me/x:1", "runner": "konstellation/kre-py:9.9.9"},
         "not a kre-py image krtlab knows"),
        ({"runner": "konstellation/kre-py:1.25.0"}, "already a stock runner"),
    ],
)  # fmt: skip
def test_bad_requirements_and_runners_are_refused_at_once(kwargs, message):
    with pytest.raises(SpecError, match=message):
        version(**kwargs)


def test_a_custom_image_names_its_runner():
    v = version("registry.example.com/me/x:1", runner="konstellation/kre-py:1.26.0")
    assert v.manifest().nodes[0].image.endswith(":1.26.0-" + v.manifest().nodes[0].image[-8:])
    with pytest.raises(SpecError, match="image prefix"):
        v.image_prefix("Bad Prefix")
