"""``krtlab.spec.pysource.read_python_source``: which imports always run, and the message types
a hand-written handler unpacks and returns, exactly."""

from __future__ import annotations

import pytest

from krtlab.spec.pysource import read_python_source

PB = "public_input_pb2"


@pytest.mark.parametrize(
    ("code", "certain"),
    [
        ("import a\nimport b\nfrom c import d\nfrom . import e\n", {1, 2, 3}),
        ("try:\n    import a\nexcept:\n    pass\n", set()),
        ("try:\n    import a\nexcept (ValueError, ImportError):\n    pass\n", set()),
        ("try:\n    import a\nexcept ModuleNotFoundError as e:\n    pass\n", set()),
        ("try:\n    import a\nexcept ValueError:\n    pass\n", {2}),
        ("try:\n    import a\nexcept errors.ImportFailure:\n    pass\n", {2}),
        ("try:\n    import a\nexcept (ValueError, x.ImportError):\n    pass\n", {2}),
        ("try:\n    import a\nexcept ImportError:\n    import b\nelse:\n    import c\n"
         "finally:\n    import d\n", {4, 6, 8}),
        ("try:\n    if x:\n        import a\n    def f():\n        import b\n"
         "except ImportError:\n    pass\n", set()),
        ("if TYPE_CHECKING:\n    import a\nelse:\n    import b\n", {4}),
        ("if typing.TYPE_CHECKING:\n    import a\n", set()),
        ("if False:\n    import a\n", set()),
        ("if x:\n    import a\nelse:\n    import b\n", {2, 4}),
        ("def f():\n    import a\n    if TYPE_CHECKING:\n        import b\n", {2}),
    ],
)  # fmt: skip
def test_imports_that_always_run(code, certain):
    assert read_python_source(code).certain_imports == frozenset(certain)


def types(code: str) -> tuple[object, object, object]:
    facts = read_python_source(code)
    return facts.input_ref, facts.output_ref, facts.output_line


def test_the_message_types_of_an_aliased_pb2_module():
    code = (
        f"import {PB} as pb\n\n"
        "async def handler(ctx, payload):\n"
        "    req = pb.Request()\n"
        "    payload.Unpack(req)\n"
        "    res = pb.Response()\n"
        "    return res\n"
    )
    assert types(code) == ((PB, "Request"), (PB, "Response"), 7)


def test_the_message_types_built_in_place():
    code = (
        f"from {PB} import Request, Response as Out\n\n"
        "async def handler(ctx, data):\n"
        "    obj.req = Request()\n"
        "    data.Unpack(Request())\n"
        f"    return Out(greeting='hi')\n"
    )
    assert types(code) == ((PB, "Request"), (PB, "Response"), 6)
    code = f"import {PB} as pb\n\nasync def handler(ctx, data):\n    return pb.Response()\n"
    assert types(code) == (None, (PB, "Response"), 4)
    code = f"import {PB} as pb\n\nasync def handler(ctx, data):\n    data.Unpack(pb.Request())\n"
    assert types(code) == ((PB, "Request"), None, None)


def test_a_handler_without_a_data_parameter_reads_data():
    code = f"from {PB} import Request\n\nasync def handler(ctx):\n    data.Unpack(Request())\n"
    assert types(code) == ((PB, "Request"), None, None)
    code = f"from {PB} import Request\n\nasync def handler(ctx, msg):\n    data.Unpack(Request())\n"
    assert types(code) == (None, None, None)


def test_returns_of_different_or_unknown_types_give_no_output_type():
    code = (
        f"from {PB} import A, B\n\n"
        "async def handler(ctx, data):\n"
        "    x = 1\n"
        "    data.Unpack(x)\n"
        "    if data:\n"
        "        return A()\n"
        "    else:\n"
        "        return B()\n"
    )
    assert types(code) == (None, None, 7)
    code = "async def handler(ctx, data):\n    return helpers.make()\n"
    assert types(code) == (None, None, 2)
    code = "async def handler(ctx, data):\n    r = helpers.make()\n    return r\n"
    assert types(code) == (None, None, 3)


def test_ctx_uses_on_ctx_context_and_the_first_parameter_of_handler_and_init():
    code = (
        "def helper(x):\n    return x.logger\n\n"
        "async def handler(c, data):\n    c.zeta()\n    c.alpha()\n\n"
        "def init(setup):\n    setup.get('x')\n\n"
        "def other(context, ctx):\n    context.e, context.d, ctx.c, ctx.b, ctx.a\n\n"
        "f = lambda ctx: ctx.reply\n"
        "g = lambda c: c.nothing\n"
        "def unused(a):\n    a.nothing\n"
    )
    assert read_python_source(code).ctx_uses == (
        ("zeta", 5), ("alpha", 6), ("get", 9), ("a", 12), ("b", 12), ("c", 12), ("d", 12),
        ("e", 12), ("reply", 14),
    )  # fmt: skip
