"""``krtlab.spec.generations.check_generation``: each finding a node's source gets against the
handler contract of its runner generation (kre-py ≤1.2 ``json``, kre-py 3 ``v3``), whole."""

from __future__ import annotations

from krtlab.spec.checker import Checker
from krtlab.spec.findings import ERROR, WARNING, Finding
from krtlab.spec.generations import check_generation
from krtlab.spec.yamlsrc import parse_yaml

SRC = "src/a/main.py"
LOC = ("nodes", 0, "src")
OLD = "konstellation/kre-py:1.1.0"
V3 = "konstellation/kre-py:3.0.0"
YML = "version: v1\nnodes:\n  - name: a\n    image: x\n    src: src/a/main.py\n"


def found(text: str, generation: str, image: str = V3) -> list[Finding]:
    check = Checker(parse_yaml(YML))
    check_generation(check, "a", image, SRC, text, LOC, generation)
    return check.findings


def test_a_json_runner_needs_a_handler():
    assert found("x = 1\n", "json", OLD) == [
        Finding(ERROR, "src.no_handler",
                f"node 'a': {SRC} defines no handler(ctx, data), which {OLD} calls for every "
                "message", LOC, SRC, None,
                "add: def handler(ctx, data): ... (data is a dict; return a JSON-able value)"),
    ]  # fmt: skip
    assert found("handler = make()\n", "json", OLD)[0].code == "src.no_handler"


def test_a_json_runner_calls_handler_with_two_arguments():
    text = "import x\n\n\ndef handler(ctx):\n    return {}\n"
    assert found(text, "json", OLD) == [
        Finding(ERROR, "src.handler_signature",
                f"node 'a': handler takes 1 parameters; {OLD} calls handler(ctx, data)",
                LOC, SRC, 4),
    ]  # fmt: skip
    assert found("def handler(ctx, data):\n    return data\n", "json", OLD) == []
    assert found("async def handler(ctx, data):\n    return data\n", "json", OLD) == []


def test_kre_py_3_needs_default_handler_and_says_handler_was_renamed():
    text = "import x\n\n\nasync def handler(ctx, data):\n    return data\n"
    assert found(text, "v3") == [
        Finding(ERROR, "src.no_handler",
                f"node 'a': {SRC} defines neither default_handler nor custom_handlers; {V3} (a "
                "KRT v2 runner) calls default_handler(ctx, data) for every message", LOC, SRC, 4,
                "kre-py 3 renamed handler to default_handler, and sends nothing you return: "
                "call await ctx.send_output(message)"),
    ]  # fmt: skip


def test_kre_py_3_without_any_handler():
    assert found("x = 1\n", "v3") == [
        Finding(ERROR, "src.no_handler",
                f"node 'a': {SRC} defines neither default_handler nor custom_handlers; {V3} (a "
                "KRT v2 runner) calls default_handler(ctx, data) for every message", LOC, SRC,
                None, "add: async def default_handler(ctx, data): ..."),
    ]  # fmt: skip


def test_handlers_assigned_rather_than_defined_count():
    assert found("custom_handlers = {'b': on_b}\n", "v3") == []
    assert found("default_handler = make_handler()\n", "v3") == []


def test_kre_py_3_awaits_default_handler_and_ignores_what_it_returns():
    text = "import x\n\n\ndef default_handler(ctx, data):\n    x = 1\n    return data\n"
    assert found(text, "v3") == [
        Finding(ERROR, "src.handler_not_async",
                f"node 'a': default_handler must be 'async def': {V3} awaits it, so a plain "
                "function fails on the first message", LOC, SRC, 4,
                "async def default_handler(ctx, data):"),
        Finding(WARNING, "src.result_ignored",
                f"node 'a': default_handler returns its result, which {V3} ignores: nothing goes "
                "on to the next node or the entrypoint", LOC, SRC, 6,
                "await ctx.send_output(result)"),
    ]  # fmt: skip


def test_a_handler_that_sends_may_return_too():
    text = "async def default_handler(ctx, data):\n    await ctx.send_output(data)\n    return 1\n"
    assert found(text, "v3") == []
    assert found("async def default_handler(ctx, data):\n    return\n", "v3") == []
    assert found("async def default_handler(ctx, data):\n    pass\n", "v3") == []
    text = "async def default_handler(ctx, data):\n    await ctx.SEND_output(data)\n    return 1\n"
    assert [f.code for f in found(text, "v3")] == ["src.result_ignored"]


def test_source_python_cannot_read_is_left_to_src_syntax():
    assert found("def handler(:\n", "json", OLD) == []
    assert found("x = '\0'\n", "v3") == []


def test_the_generation_of_each_image_and_base():
    from krtlab.spec.generations import runner_generation

    py = "konstellation/kre-py"
    assert runner_generation(f"{py}:1.2.9") == "json"
    assert runner_generation(f"{py}:1.2") == "json"
    assert runner_generation(f"{py}:1") == "v1"
    assert runner_generation(f"{py}:1.3") == "v1"
    assert runner_generation(f"{py}:0.9") == "v1"
    assert runner_generation(f"{py}:2.9.9") == "v1"
    assert runner_generation(f"{py}:3") == "v3"
    assert runner_generation(f"docker.io/{py}:1.1.0@sha256:a@b") == "json"
    assert runner_generation(f"{py}:x:1.1.0") is None
    assert runner_generation(f"{py}:1.x") is None
    assert runner_generation(f"{py}:1 x:2") is None
    assert runner_generation(f"{py}") is None
    assert runner_generation("registry.example.com/x:1.1.0") is None
    assert runner_generation("registry.example.com/x:1", f"{py}:3.0.0") == "v3"
    assert runner_generation(f"{py}:3.0.0", "") == "v3"
