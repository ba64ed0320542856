"""Served workers behave like their node's kre-py tag: its ctx and its early exit."""

from __future__ import annotations

import pytest

import krtlab as krt
from krtlab.runtime.client import CallError

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc Early (Request) returns (Response) {};
  rpc Exit (Request) returns (Response) {};
}
"""

v = krt.Version("runner-v1", description="ctx per runner")
pb = v.proto(PROTO)


@v.node(name="replier", image="konstellation/kre-py:1.23.0")
async def replier(ctx, req: pb.Request) -> pb.Response:
    # no ctx.reply before kre-py 1.25.0; validate() reports ctx.reply, so it is spelt
    # dynamically here to reach the worker
    await getattr(ctx, "re" + "ply")(pb.Response(greeting="early"))
    return pb.Response(greeting="late")


@v.node(name="exiter", image="konstellation/kre-py:2.1.2")
def exiter(ctx, req: pb.Request) -> pb.Response:
    if req.name == "stop":
        ctx.early_exit()  # this node's result goes straight to the entrypoint
        return pb.Response(greeting="stopped early")
    return pb.Response(greeting=req.name)


@v.node(name="answer", image="konstellation/kre-py:2.1.2")
def answer(res: pb.Response) -> pb.Response:
    return pb.Response(greeting=f"Hello {res.greeting}")


v.workflow("early", entrypoint="Early", sequential=[replier])
v.workflow("exit", entrypoint="Exit", sequential=[exiter, answer])


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRTLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        with v.serve(port=0) as service:
            yield service


def test_a_workers_ctx_is_its_tags(svc):
    with pytest.raises(CallError) as info:
        svc.call("Early", name="x")
    assert str(info.value) == (
        "Early failed: INTERNAL: error in 'replier': 'HandlerContext' object has no attribute "
        "'reply'"
    )


def test_early_exit_answers_from_the_node_that_exits(svc):
    assert svc.call("Exit", name="Al").greeting == "Hello Al"
    assert svc.call("Exit", name="stop").greeting == "stopped early"
