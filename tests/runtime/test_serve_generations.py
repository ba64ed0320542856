"""A node on a runner generation krtlab does not run (kre-py 3.x) is served down, plainly."""

from __future__ import annotations

import pytest

from krtlab.runtime.client import CallError
from krtlab.runtime.serve import serve
from tests.runtime.test_serve_partial import PROTO
from tests.runtime.test_serve_support import FAULTY_MAIN, write_project

V3 = b"""async def default_handler(ctx, data):
    await ctx.send_output(data)
"""


def test_a_kre_py_3_node_is_down_with_the_reason_and_the_rest_is_served(tmp_path, monkeypatch):
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    path = write_project(
        tmp_path / "project",
        version="greeter-v1",
        proto=PROTO,
        nodes={
            "py-greeter": ("src/py-greeter/main.py", FAULTY_MAIN, "konstellation/kre-py:1.23.0"),
            "v3": ("src/v3/main.py", V3, "konstellation/kre-py:3.0.0"),
        },
        workflows={"py-greeting": ("PyGreet", ["py-greeter"]), "v3": ("GoGreet", ["v3"])},
    )
    with serve(path, port=0, request_timeout=5) as svc:
        assert svc.call("PyGreet", name="John").greeting == "Hello John!"
        with pytest.raises(CallError) as info:
            svc.call("GoGreet", name="x")
    assert info.value.code == "UNAVAILABLE"
    assert info.value.details == (
        "workflow 'v3' is down: node 'v3' did not start: it runs on konstellation/kre-py:3.0.0, "
        "a KRT v2 runner (default_handler, ctx.send_output): krtlab runs kre-py 1.2x–2.x nodes; "
        "validate, build and deploy still work"
    )
