"""``v.run`` the way KRE behaves: failures name the node, contracts are checked on the wire,
early replies, async nodes, init once per worker, notebooks' running loop, isolation."""

import asyncio
import base64
import json
import os
import re
import sys

import pytest

import krtlab as krt
from krtlab.errors import SpecError
from krtlab.runtime.errors import NodeFailed, RunError

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
message Middle { string text = 1; }
service Entrypoint { rpc Greet (Request) returns (Response) {}; }
"""


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def chain(second_body=None, image="konstellation/kre-py:1.23.0"):
    """A 3-node greeter chain; ``second_body(ctx, middle)`` replaces the middle node, which
    runs on ``image``."""
    v = krt.Version("chain-v1")
    pb = v.proto(PROTO)

    @v.node
    def first(req: pb.Request) -> pb.Middle:
        return pb.Middle(text=req.name)

    @v.node(image=image)
    def second(ctx, m: pb.Middle) -> pb.Middle:
        return second_body(ctx, m) if second_body else pb.Middle(text=m.text + "!")

    @v.node
    def third(ctx, m: pb.Middle) -> pb.Response:
        ctx.logger.info("greeting %s", m.text)
        return pb.Response(greeting=f"Hello {m.text}")

    v.workflow("greeting", entrypoint="Greet", sequential=[first, second, third])
    return v, pb


def test_a_node_without_ctx_and_logs_in_kre_format():
    v, pb = chain()
    result = v.run("Greet", name="John")
    assert result.ok and result.response.greeting == "Hello John!"
    (line,) = result.trace[2].logs
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO greeting John!", line)
    assert "greeting" in repr(result) and "<table" in result._repr_html_()
    data = json.loads(json.dumps(result.to_dict()))
    assert data["response"] == {"greeting": "Hello John!"}
    assert data["trace"][1]["input"] == {"text": "John"}


def test_a_failing_node_is_named_like_kre_does():
    def boom(ctx, m):
        raise ValueError("no model for " + m.text)

    v, pb = chain(boom)
    result = v.run("greeting", {"name": "Ann"})
    assert not result.ok
    assert [(t.node, t.error) for t in result.trace] == [
        ("first", None),
        ("second", "error in 'second': no model for Ann"),
    ]  # the third node never ran
    assert result.error.node == "second" and isinstance(result.error.cause, ValueError)
    assert "error executing handler: no model for Ann" in result.trace[1].logs[0]
    with pytest.raises(NodeFailed, match=r"^error in 'second': no model for Ann$"):
        _ = result.response
    assert "FAILED" in repr(result)


def test_a_wrong_message_type_fails_at_the_next_edge_naming_both_nodes():
    v, pb = chain(lambda ctx, m: pb.Response(greeting="oops"))
    result = v.run("Greet", name="Ann")
    assert result.error.node == "second"
    assert str(result.error) == (
        "error in 'second': it returned entrypoint.Response, but the next node 'third' "
        "takes entrypoint.Middle; on KRE, Unpack in 'third' would fail"
    )
    assert result.trace[-1].node == "second" and result.trace[-1].error
    v, pb = chain(lambda ctx, m: None)
    assert "it returned None, not a protobuf message" in str(v.run("Greet").error)


def test_a_node_taking_the_wrong_type_is_the_one_that_fails():
    """``split → count`` where count takes another type: count is marked, with validate's hint."""
    v, pb = chain()

    @v.node(name="third")
    def third(ctx, m: pb.Request) -> pb.Response:  # second sends a Middle
        return pb.Response(greeting=m.name)

    (mismatch,) = [f for f in v.validate().errors if f.code == "chain.input_mismatch"]
    assert "make 'third' take entrypoint.Middle" in mismatch.hint
    result = v.run("Greet", name="Ann")
    assert result.error.node == "third"
    assert str(result.error) == (
        "error in 'third': it takes entrypoint.Request, but 'second' before it returns "
        "entrypoint.Middle: on KRE, Unpack fails here; make 'third' take entrypoint.Middle, or "
        "change what comes before it"
    )
    assert [(t.node, bool(t.error)) for t in result.trace] == [
        ("first", False), ("second", False), ("third", True)
    ]  # fmt: skip


def test_the_last_node_must_return_the_rpc_response():
    v = krt.Version("last-v1")
    pb = v.proto(PROTO)
    v.node(name="only")(lambda req: pb.Middle(text=req.name))
    v.workflow("w", entrypoint="Greet", sequential=["only"])
    error = v.run("Greet", name="x").error
    assert "error in 'only': it returned entrypoint.Middle, but rpc Greet returns" in str(error)


def test_unknown_targets_and_bad_requests_are_spec_errors():
    v, pb = chain()
    with pytest.raises(SpecError, match="did you mean 'Greet'"):
        v.run("Gret")
    with pytest.raises(SpecError, match="did you mean 'greeting'"):
        v.run("greting")
    with pytest.raises(SpecError, match="has no field 'nmae'; did you mean 'name'"):
        v.run("Greet", nmae="John")
    with pytest.raises(SpecError, match="has no field 'nam'"):
        v.run("Greet", {"nam": "John"})
    with pytest.raises(SpecError, match="bad request"):
        v.run("Greet", {"name": 3})
    with pytest.raises(SpecError, match=r"takes entrypoint\.Request, not entrypoint\.Middle"):
        v.run("Greet", pb.Middle(text="x"))
    with pytest.raises(SpecError, match="a dict or keyword"):
        v.run("Greet", ["John"])


def test_a_request_from_another_pool_goes_through_bytes():
    v, _ = chain()
    other = krt.Version("other-v1")
    other_pb = other.proto(PROTO)  # same full names, another private pool
    result = v.run("Greet", other_pb.Request(name="Bo"), name="Bob")
    assert result.response.greeting == "Hello Bob!"


def test_early_reply_answers_while_later_nodes_still_run():
    seen = []

    async def reply_early(ctx, m):
        await ctx.reply(krt_pb.Response(greeting="early " + m.text))
        return krt_pb.Middle(text=m.text)

    v, krt_pb = chain(reply_early, "konstellation/kre-py:1.25.0")  # ctx.reply: 1.25.0 to 2.0.0
    third = v.nodes["third"].func

    @v.node(name="third")
    def late(ctx, m: krt_pb.Middle) -> krt_pb.Response:
        seen.append(m.text)
        return third(ctx, m)

    result = v.run("Greet", name="Al")
    assert result.response.greeting == "early Al" and result.replied_by == "second"
    assert seen == ["Al"] and result.trace[1].replied and result.trace[2].output.greeting

    async def reply_twice(ctx, m):
        await ctx.reply(krt_pb.Response(greeting="one"))
        await ctx.reply(krt_pb.Response(greeting="two"))

    v2, krt_pb = chain(reply_twice, "konstellation/kre-py:1.25.0")
    result = v2.run("Greet")
    assert str(result.error) == "error in 'second': error the message was replied previously"
    assert result.response.greeting == "one"  # the entrypoint already has its answer


@pytest.mark.parametrize(
    ("tag", "member", "error"),
    [
        ("1.23.0", "reply", "'HandlerContext' object has no attribute 'reply'"),
        ("1.24.1", "reply", "'HandlerContext' object has no attribute 'reply'"),
        ("2.1.0", "reply", "'HandlerContext' object has no attribute 'reply'"),
        ("2.0.0", "early_reply", "'HandlerContext' object has no attribute 'early_reply'"),
        ("2.1.0", "early_reply", None),
        ("2.1.5", "reply", "'HandlerContext' object has no attribute 'reply'"),
    ],
)
def test_ctx_is_the_one_of_the_nodes_runner(tag, member, error):
    async def replies(ctx, m):
        await getattr(ctx, member)(pb.Response(greeting="early"))
        return pb.Middle(text=m.text)

    v, pb = chain(replies, f"konstellation/kre-py:{tag}")
    result = v.run("Greet", name="Al")
    if error is None:
        assert result.response.greeting == "early" and result.replied_by == "second"
    else:
        assert str(result.error) == f"error in 'second': {error}"  # as that runner says it


def test_early_exit_ends_the_workflow_with_that_nodes_answer():
    def exits(ctx, m):
        ctx.early_exit()
        return pb.Response(greeting="stopped at " + m.text)

    v, pb = chain(exits, "konstellation/kre-py:2.1.2")
    v.nodes["second"].output_type = pb.Response
    result = v.run("Greet", name="Al")
    assert result.response.greeting == "stopped at Al"
    assert [t.node for t in result.trace] == ["first", "second"]  # third never ran
    v, pb = chain(exits, "konstellation/kre-py:2.1.1")
    result = v.run("Greet", name="Al")
    assert "no attribute 'early_exit'" in str(result.error)


def test_a_message_too_big_even_gzipped_is_refused_in_the_runners_words():
    def huge(ctx, m):
        return pb.Middle(text=base64.b64encode(os.urandom(1_200_000)).decode())  # 1.6 MB

    for tag, text in [
        ("1.23.0", "compressed message exceeds maximum size allowed of 1 MB."),
        ("1.26.0", "exceeds maximum size allowed of 1024.00 KB."),
    ]:
        v, pb = chain(huge, f"konstellation/kre-py:{tag}")
        result = v.run("Greet", name="Al")
        assert str(result.error).startswith("error in 'second': compressed message")
        assert str(result.error).endswith(text)


def test_async_nodes_that_really_wait_work_even_inside_a_running_loop(examples):
    async def slow(ctx, m):
        async with asyncio.timeout(5):  # needs a current task
            await asyncio.sleep(0.01)
        return pb.Middle(text=m.text + "?")

    v, pb = chain(slow)
    assert v.run("Greet", name="Cy").response.greeting == "Hello Cy?"

    async def notebook_cell():  # Jupyter runs cells inside its own event loop
        await asyncio.sleep(0)
        return v.run("Greet", name="Di").response.greeting

    assert asyncio.run(notebook_cell()) == "Hello Di?"
    greeter = krt.load(examples / "greeter")  # kre-py handlers are async def

    async def loaded_cell():
        return greeter.run("PyGreet", name="Ed").response.greeting

    assert asyncio.run(loaded_cell()) == "Hello Ed!"


def test_init_runs_once_per_worker_and_again_for_a_redefined_node():
    calls = []
    v, pb = chain()

    def define():
        @v.node(name="second")
        def second(ctx, m: pb.Middle) -> pb.Middle:
            return pb.Middle(text=f"{m.text}#{ctx.get('n')}")

        return second

    node = define()

    @node.init
    def setup(ctx):
        calls.append(1)
        ctx.set("n", len(calls))

    assert [v.run("Greet", name="a").response.greeting for _ in range(3)] == ["Hello a#1"] * 3
    assert len(calls) == 1
    define()  # the cell re-run: a new function keeps its init, which runs again
    assert v.run("Greet", name="a").response.greeting == "Hello a#2"
    assert len(calls) == 2


def test_a_failing_init_fails_the_run_and_is_retried():
    v, pb = chain()
    attempts = []

    @v.nodes["second"].init
    def setup(ctx):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("model file missing")

    assert str(v.run("Greet").error) == "error in 'second': model file missing"
    assert v.run("Greet", name="x").ok and len(attempts) == 2


def test_go_nodes_cannot_run_in_process(tmp_path):
    v = krt.Version("go-v1")
    v.proto(PROTO)
    (tmp_path / "bin").write_bytes(b"\x7fELF")
    v.go_node("go-greeter", binary=tmp_path / "bin")
    v.workflow("w", entrypoint="Greet", sequential=["go-greeter"])
    with pytest.raises(RunError, match=r"'go-greeter' is a Go node.*v\.serve\(\)"):
        v.run("Greet")


def test_loaded_versions_stay_isolated(tmp_path, examples):
    other = tmp_path / "other"
    (other / "src" / "py-greeter").mkdir(parents=True)
    (other / "krt.yml").write_text(
        (examples / "greeter" / "krt.yml").read_text().replace("greeter-v1", "other-v1")
    )
    (other / "public_input.proto").write_text(
        'syntax = "proto3";\npackage entrypoint;\nmessage Request { string name = 1; }\n'
        "message Response { string text = 1; int32 length = 2; }\n"
        "service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }\n"
    )
    (other / "src" / "py-greeter" / "helpers.py").write_text("SUFFIX = '?'\n")
    (other / "src" / "py-greeter" / "main.py").write_text(
        "from public_input_pb2 import Request, Response\nfrom helpers import SUFFIX\n\n"
        "async def handler(ctx, data):\n    req = Request()\n    data.Unpack(req)\n"
        "    return Response(text=req.name + SUFFIX, length=len(req.name))\n"
    )
    greeter, odd = krt.load(examples / "greeter"), krt.load(other)
    for _ in range(2):
        assert greeter.run("PyGreet", name="Jo").response.greeting == "Hello Jo!"
        assert odd.run("PyGreet", name="Jo").response.text == "Jo?"
    first = greeter.run("PyGreet", name="Jo")
    assert first.trace[0].logs == []  # init logged in the first run only
    assert not {"public_input_pb2", "helpers"} & set(sys.modules)


def test_a_first_node_that_does_not_take_the_request_is_named():
    v = krt.Version("first-v1")
    pb = v.proto(PROTO)

    @v.node
    def first(m: pb.Middle) -> pb.Response:
        return pb.Response()

    v.workflow("w", entrypoint="Greet", sequential=[first])
    result = v.run("Greet")
    assert str(result.error) == (
        "error in 'first': rpc Greet receives entrypoint.Request, but it takes entrypoint.Middle"
    )
    assert result.trace[0].input is None and result.trace[0].error


def test_a_failing_nodes_line_and_its_logs_are_in_the_result():
    def fails(ctx, m):
        ctx.logger.info("about to look up %s", m.text)
        return {}[m.text]  # the failing line

    v, pb = chain(fails)
    result = v.run("Greet", name="Ann")
    failed = result.trace[1]
    assert failed.where.endswith("return {}[m.text]  # the failing line")
    assert "test_inprocess_behaviour.py, line " in failed.where
    text = repr(result)
    assert f"at {failed.where}" in text and "about to look up Ann" in text
    html = result._repr_html_()
    assert "about to look up Ann" in html and "test_inprocess_behaviour.py, line" in html


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.0042, "4.2 µs"), (0.046, "0.046 ms"), (0.653, "0.653 ms"), (1.234, "1.23 ms"),
     (12.34, "12.3 ms"), (123.4, "123 ms")],
)  # fmt: skip
def test_durations_read_with_the_precision_they_need(ms, text):
    from krtlab.runtime.result import format_ms

    assert format_ms(ms) == text
