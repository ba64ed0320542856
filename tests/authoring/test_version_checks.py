"""What authoring refuses at once, and what an authored version's validation reports, as a user
writing cells meets it."""

import pytest

import krtlab as krt
from krtlab.errors import SpecError, ValidationError

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
"""


def test_init_must_take_the_context():
    v = krt.Version("greeter-v1", description="d")
    pb = v.proto(PROTO)

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response()

    def no_ctx():
        pass

    def two(ctx, extra):
        pass

    for fn in (no_ctx, two):
        with pytest.raises(SpecError, match=rf"init function {fn.__name__} must take \(ctx\)"):
            greet.init(fn)
    assert greet.init_func is None

    def setup(ctx):
        ctx.set("greeting", "Hello")

    assert greet.init(setup) is setup and greet.init_func is setup


def test_a_node_of_another_version_is_refused_in_a_workflow():
    v1 = krt.Version("greeter-v1", description="d")
    pb = v1.proto(PROTO)

    @v1.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response()

    v2 = krt.Version("greeter-v2", description="d")
    v2.proto(PROTO)
    with pytest.raises(SpecError, match="node 'py-greeter' belongs to another version"):
        v2.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])

    # nor a node replaced since (a cell run again): the workflow would run the old one
    @v1.node(name="py-greeter")
    def greet_again(ctx, req: pb.Request) -> pb.Response:
        return pb.Response(greeting="again")

    with pytest.raises(SpecError, match="belongs to another version \\(or was replaced\\)"):
        v1.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])
    assert v1.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet_again])


def test_an_authored_last_node_returning_the_wrong_message_is_an_error():
    v = krt.Version("chain-v1", description="d")
    pb = v.proto(PROTO)

    @v.node
    def echo(req: pb.Request) -> pb.Request:  # the rpc answers a Response
        return req

    v.workflow("wf", entrypoint="PyGreet", sequential=[echo])
    report = v.validate()
    (f,) = report.at("workflows[0].sequential[0]")
    assert (f.code, f.severity) == ("chain.output_mismatch", "error")
    assert "returns entrypoint.Request but rpc PyGreet returns entrypoint.Response" in f.message
    assert not report.ok
    with pytest.raises(ValidationError, match="chain-v1"):
        v.build("never-written.krt")
