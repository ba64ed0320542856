"""``krtlab inspect`` in detail: projects without a usable proto, Go nodes and nodes without src,
custom images, the modules beside a node, and how types and config read as text."""

from __future__ import annotations

from krtlab.bundle.inspect import format_summary, summarize
from krtlab.bundle.project import Project

HEAD = b"""\
version: v1
description: d
entrypoint:
  proto: public_input.proto
  image: konstellation/kre-entrypoint:1.7.1
"""
PAD = " " * 22


def test_a_project_without_its_proto_a_go_node_and_a_node_without_src():
    yml = (
        HEAD
        + b"""\
nodes:
  - name: g
    image: konstellation/kre-go:1.11.0
    src: bin/g
  - name: e
    image: konstellation/kre-py:1.23.0
    src: ''
workflows:
  - name: w
    entrypoint: Go
    sequential: [g, e]
"""
    )
    data = summarize(Project({"krt.yml": yml, "bin/g": b"\x7fELF"}, "here"))
    assert (data["rpcs"], data["messages"], data["files"]) == ({}, [], 2)
    assert data["nodes"] == [
        {
            "name": "g", "runtime": "go", "image": "konstellation/kre-go:1.11.0", "gpu": False,
            "src": "bin/g", "size": 4, "input": None, "output": None, "modules": [],
            "runner": None, "python": None, "requirements": [], "findings": [],
        },
        {
            "name": "e", "runtime": "python", "image": "konstellation/kre-py:1.23.0",
            "gpu": False, "src": "", "size": 0, "input": None, "output": None, "modules": [],
            "runner": "konstellation/kre-py:1.23.0", "python": "3.7", "requirements": [],
            "findings": ["error: krt.yml:12 nodes[1].src: 'src' is required and empty"],
        },
    ]  # fmt: skip


def test_a_node_on_a_custom_image_with_its_modules_and_requirements():
    yml = (
        HEAD
        + b"""\
nodes:
  - name: n
    image: my/img:1
    src: src/n/main.py
workflows:
  - name: w
    entrypoint: Go
    sequential: [n]
"""
    )
    # a proto without `service Entrypoint`: no rpcs, so no types are read from the node
    proto = b'syntax = "proto3";\npackage entrypoint;\nmessage Request { string name = 1; }\n'
    main = (
        b"from public_input_pb2 import Request\nimport helper\n\n\n"
        b"async def handler(ctx, data):\n    req = Request()\n    data.Unpack(req)\n"
        b"    return req\n"
    )
    files = {
        "krt.yml": yml,
        "public_input.proto": proto,
        "src/n/main.py": main,
        "src/n/helper.py": b"",
        "src/n/sub/util.py": b"",
        "src/n/public_input_pb2.py": b"",
        "src/n/data.txt": b"",
        "src/nx/other.py": b"",
        "src/n/requirements.txt": b"pandas\n# a comment\nnumpy==1.18.4\n",
        "images/n/Dockerfile": b"# image: my/img:1\nFROM konstellation/kre-py:1.23.0\n",
    }
    data = summarize(Project(files, "here"))
    assert (data["rpcs"], data["messages"]) == ({}, ["entrypoint.Request"])
    assert data["nodes"] == [
        {
            "name": "n", "runtime": "python", "image": "my/img:1", "gpu": False,
            "src": "src/n/main.py", "size": len(main), "input": None, "output": None,
            "modules": ["helper.py", "sub/util.py"], "runner": "konstellation/kre-py:1.23.0",
            "python": "3.7", "requirements": ["pandas", "numpy==1.18.4"], "findings": [],
        }
    ]  # fmt: skip


def test_types_read_short_and_config_with_variables_only():
    node = {
        "name": "n", "runtime": "python", "image": "konstellation/kre-py:1.23.0", "gpu": False,
        "src": "src/n/main.py", "input": None, "output": "a.b.Response",
    }  # fmt: skip
    data = {
        "version": "v1", "description": "d", "origin": "here", "files": 1, "bytes": 10,
        "entrypoint": {"proto": "public_input.proto", "image": "e:1"},
        "config": {"variables": ["RATE"], "files": []},
        "rpcs": {"Go": {"input": "Request", "output": "pkg.sub.Response"}},
        "workflows": [{"name": "w", "entrypoint": "Go", "sequential": ["n"]}],
        "nodes": [node],
    }  # fmt: skip
    assert format_summary(data) == "\n".join([
        "version     v1",
        "description d",
        "entrypoint  public_input.proto on e:1",
        "files       1 (10 bytes) from here",
        "config      RATE",
        "",
        "workflows",
        "  w: rpc Go (Request) -> Response",
        "    n",
        "",
        "nodes",
        "  n                   python konstellation/kre-py:1.23.0",
        f"{PAD}src/n/main.py (?) -> Response",
    ])  # fmt: skip
    files_only = {**data, "config": {"variables": [], "files": ["MODEL"]}}
    assert "\nconfig      MODEL (file)\n" in format_summary(files_only)
