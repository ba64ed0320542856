"""The notebook authoring API, used the way the issue's quick start uses it."""

import stat
import tarfile

import pytest

import krtlab as krt
from krtlab.errors import OverwriteError, ProtoError, SpecError, ValidationError

GREETER_PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
"""


def make_greeter():
    v = krt.Version("greeter-v1", description="Greets whoever asks")
    pb = v.proto(GREETER_PROTO)

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"{ctx.get('greeting')} {req.name}!")

    @greet.init
    def setup(ctx):
        ctx.set("greeting", "Hello")

    v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])
    return v, pb, greet


def test_quick_start_end_to_end(tmp_path):
    v, pb, greet = make_greeter()
    msg = pb.Request(name="John")
    assert pb.Request.FromString(msg.SerializeToString()).name == "John"
    report = v.validate()
    assert report.ok and not report.errors, str(report)
    folder = v.export(tmp_path / "greeter")
    assert (folder / "krt.yml").read_text().startswith("version: greeter-v1\n")
    main_py = (folder / "src" / "py-greeter" / "main.py").read_text()
    assert "async def handler(ctx, data)" in main_py and "def init(ctx)" in main_py
    assert (folder / "src" / "py-greeter" / "public_input_pb2.py").is_file()
    assert "PyGreet" in (folder / "docs" / "README.md").read_text()
    out = v.build(tmp_path / "greeter-v1.krt")
    v2 = krt.load(out)
    assert v2.manifest() == v.manifest()
    assert v2.validate().ok
    assert krt.load(folder).project().files == v2.project().files
    assert krt.load(folder / "krt.yml").name == "greeter-v1"


def test_node_is_still_a_plain_function():
    _, pb, greet = make_greeter()

    class Ctx:
        def get(self, key):
            return "Hi"

    assert greet(Ctx(), pb.Request(name="Ann")).greeting == "Hi Ann!"
    assert str(greet) == "py-greeter(Request) -> Response"


def test_names_are_checked_when_defined():
    v = krt.Version("v1")
    with pytest.raises(SpecError, match="try 'my-etl-v12'"):
        krt.Version("My ETL_v1.2")
    with pytest.raises(SpecError, match="at most 19"):
        v.node(name="a-node-name-that-is-too-long")(lambda req: req)
    with pytest.raises(SpecError, match="OUTPUT_CURRENCY"):
        v.config("output_currency")


def test_default_node_name_and_image():
    v = krt.Version("v1")
    pb = v.proto(GREETER_PROTO)

    @v.node
    def say_hello(req: pb.Request) -> pb.Response:
        return pb.Response()

    node = v.nodes["say-hello"]
    assert node.image == "konstellation/kre-py:1.23.0" and node.gpu is False
    assert node.src == "src/say-hello/main.py"


def test_hints_must_be_messages_and_signatures_must_fit():
    v = krt.Version("v1")
    v.proto(GREETER_PROTO)
    with pytest.raises(SpecError, match="protobuf message class"):

        @v.node
        def bad(req: dict) -> dict:
            return req

    with pytest.raises(SpecError, match=r"\(ctx, request\) or \(request\)"):

        @v.node
        def too_many(ctx, a, b):
            return a


def test_workflow_errors_suggest_fixes():
    v, pb, greet = make_greeter()
    with pytest.raises(SpecError, match="did you mean 'PyGreet'"):
        v.workflow("other", entrypoint="PyGret", sequential=[greet])

    def not_a_node(req):
        return req

    with pytest.raises(SpecError, match=r"decorate it with @v\.node"):
        v.workflow("other", entrypoint="PyGreet", sequential=[not_a_node])


def test_proto_syntax_errors_are_located():
    v = krt.Version("v1")
    with pytest.raises(ProtoError) as exc:
        v.proto('syntax = "proto3";\nmessage A { strin x = 1; }\n')
    issue = exc.value.issues[0]
    assert (issue.file, issue.line) == ("public_input.proto", 2)
    assert "strin" in str(exc.value)


def test_message_chain_mismatch_is_an_error_at_the_workflow_step():
    v = krt.Version("chain-v1", description="d")
    pb = v.proto(GREETER_PROTO)

    @v.message
    class Middle:
        text: str

    @v.node
    def first(req: pb.Request) -> Middle:
        return Middle(text=req.name)

    @v.node
    def second(req: pb.Request) -> pb.Response:  # should take Middle
        return pb.Response(greeting=req.name)

    v.workflow("wf", entrypoint="PyGreet", sequential=[first, second])
    report = v.validate()
    (f,) = report.at("workflows[0].sequential[1]")
    assert f.code == "chain.input_mismatch" and "entrypoint.Middle" in f.message
    with pytest.raises(ValidationError, match="chain-v1"):
        v.build("never-written.krt")


def test_messages_from_classes_become_internal_proto(tmp_path):
    v = krt.Version("msg-v1", description="d")
    pb = v.proto(GREETER_PROTO)

    @v.message
    class Features:
        rooms: int
        price: float
        tags: list[str]

    f = Features(rooms=3, price=1.5, tags=["a"])
    assert Features.FromString(f.SerializeToString()).tags == ["a"]

    @v.node
    def featurize(req: pb.Request) -> Features:
        return Features(tags=[req.name])

    @v.node
    def reply(feat: Features) -> pb.Response:
        return pb.Response(greeting=",".join(feat.tags))

    v.workflow("wf", entrypoint="PyGreet", sequential=[featurize, reply])
    folder = v.export(tmp_path / "p")
    proto = (folder / "internal_nodes.proto").read_text()
    assert "repeated string tags = 3;" in proto and "package entrypoint;" in proto
    assert (
        "from internal_nodes_pb2 import Features"
        in (folder / "src" / "reply" / "main.py").read_text()
    )


def test_rerunning_a_cell_replaces_the_node_and_reexport_is_allowed(tmp_path):
    v, pb, _ = make_greeter()
    v.export(tmp_path / "p")

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"Bonjour {req.name}!")

    assert len(v.nodes) == 1
    v.export(tmp_path / "p")  # files krtlab wrote and nobody edited may be replaced
    assert "Bonjour" in (tmp_path / "p" / "src" / "py-greeter" / "main.py").read_text()


def test_export_never_replaces_hand_edited_files(tmp_path):
    v, _, _ = make_greeter()
    folder = v.export(tmp_path / "p")
    main_py = folder / "src" / "py-greeter" / "main.py"
    main_py.write_text("# my careful edits\n")
    v.description = "changed"
    with pytest.raises(OverwriteError) as exc:
        v.export(folder)
    assert exc.value.paths == ["src/py-greeter/main.py"]
    assert main_py.read_text() == "# my careful edits\n"
    v.export(folder, overwrite=True)
    assert "handler" in main_py.read_text()


def test_build_never_replaces_a_foreign_file(tmp_path):
    v, _, _ = make_greeter()
    target = tmp_path / "x.krt"
    target.write_text("not mine")
    with pytest.raises(OverwriteError):
        v.build(target)
    assert target.read_text() == "not mine"
    v.build(target, overwrite=True)
    v.build(target)  # an earlier build of the same version may be replaced


def test_authored_build_is_reproducible(tmp_path):
    a = make_greeter()[0].build(tmp_path / "a.krt").read_bytes()
    b = make_greeter()[0].build(tmp_path / "b.krt").read_bytes()
    assert a == b


def test_go_node_is_bundled_as_an_executable(tmp_path):
    v, pb, _ = make_greeter()
    binary = tmp_path / "go-greeter"
    binary.write_bytes(b"\x7fELF" + b"\0" * 60)
    v.proto(GREETER_PROTO.replace("{}; }", "{}; rpc GoGreet (Request) returns (Response) {}; }"))
    v.go_node("go-greeter", binary=binary, input=pb.Request, output=pb.Response)
    v.workflow("go-greeting", entrypoint="GoGreet", sequential=["go-greeter"])
    assert v.validate().ok, str(v.validate())
    out = v.build(tmp_path / "g.krt")
    with tarfile.open(out) as tar:
        info = tar.getmember("bin/go-greeter")
        assert info.mode & stat.S_IXUSR
    assert krt.load(out).nodes["go-greeter"].kind == "go"


def test_a_node_can_serve_several_workflows():
    v, pb, greet = make_greeter()
    v.proto(GREETER_PROTO.replace("{}; }", "{}; rpc Again (Request) returns (Response) {}; }"))
    v.workflow("again", entrypoint="Again", sequential=["py-greeter"])
    assert v.validate().ok
    assert [w.sequential for w in v.workflows.values()] == [("py-greeter",), ("py-greeter",)]


def test_untyped_nodes_warn_that_the_chain_cannot_be_checked():
    v = krt.Version("untyped-v1", description="d")
    pb = v.proto(GREETER_PROTO)

    @v.node
    def loose(req):
        return pb.Response(greeting=req.name)

    v.workflow("wf", entrypoint="PyGreet", sequential=[loose])
    report = v.validate()
    assert report.ok
    (f,) = report.warnings
    assert f.code == "chain.untyped" and f.path == "workflows[0].sequential[0]"
    assert "request and return" in f.message


def test_krtignore_is_honoured_when_building_a_folder(examples, tmp_path):
    import shutil

    folder = tmp_path / "greeter"
    shutil.copytree(examples / "greeter", folder)
    (folder / "notes").mkdir()
    (folder / "notes" / "draft.txt").write_text("private")
    (folder / "data.csv").write_text("a,b\n")
    (folder / ".krtignore").write_text("# keep drafts out\nnotes/\n*.csv\n")
    out = krt.load(folder).build(tmp_path / "g.krt")
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "notes/draft.txt" not in names and "data.csv" not in names
    assert "src/py-greeter/main.py" in names and ".krtignore" in names


def test_config_values_never_redeclare_files_as_variables():
    v = krt.Version("cfg-v1", description="d")
    v.config("CURRENCY", files=["SETTINGS"], SETTINGS="local.json", CURRENCY="EUR")
    assert v.manifest().config.variables == ("CURRENCY",)
    assert v.manifest().config.files == ("SETTINGS",)
    assert b"EUR" not in v.project().files["krt.yml"]
