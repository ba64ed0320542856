"""``krtlab inspect``: the summary of a project as data, and as the text a terminal shows."""

from __future__ import annotations

from krtlab.bundle.inspect import format_summary, summarize
from krtlab.bundle.load import load_project
from tests.support import EXAMPLES


def test_the_summary_of_a_two_workflow_project():
    project = load_project(EXAMPLES / "price-estimator")
    data = summarize(project)
    assert (data["version"], data["origin"]) == ("price-estimator-v1", project.origin)
    assert data["entrypoint"] == {
        "proto": "public_input.proto", "image": "konstellation/kre-entrypoint:1.7.1",
    }  # fmt: skip
    assert data["rpcs"] == {
        "MakePrediction": {"input": "entrypoint.Request", "output": "entrypoint.Response"},
        "SavePredictionMetric": {
            "input": "entrypoint.MetricRequest", "output": "entrypoint.MetricResponse",
        },
    }  # fmt: skip
    assert data["messages"] == [
        "entrypoint.EtlOutput", "entrypoint.MetricRequest", "entrypoint.MetricResponse",
        "entrypoint.ModelOutput", "entrypoint.Request", "entrypoint.Response",
    ]  # fmt: skip
    assert data["config"] == {"variables": ["OUTPUT_PRICE_CURRENCY"], "files": []}
    assert data["workflows"] == [
        {"name": "ny-room-price", "entrypoint": "MakePrediction",
         "sequential": ["etl", "model", "output"]},
        {"name": "save-metrics", "entrypoint": "SavePredictionMetric",
         "sequential": ["save-metric"]},
    ]  # fmt: skip
    etl = data["nodes"][0]
    assert etl == {
        "name": "etl", "runtime": "python", "image": "konstellation/kre-py:1.23.0",
        "gpu": False, "src": "src/etl/main.py", "size": len(project.files["src/etl/main.py"]),
        "input": "entrypoint.Request", "output": "entrypoint.EtlOutput", "modules": [],
        "runner": "konstellation/kre-py:1.23.0", "python": "3.7", "requirements": [],
        "findings": [],
    }  # fmt: skip
    assert [(n["name"], n["input"], n["output"]) for n in data["nodes"][1:]] == [
        ("model", "entrypoint.EtlOutput", "entrypoint.ModelOutput"),
        ("output", "entrypoint.ModelOutput", "entrypoint.Response"),
        ("save-metric", "entrypoint.MetricRequest", "entrypoint.MetricResponse"),
    ]
    assert data["files"] == len(project.files)
    assert data["bytes"] == sum(len(d) for d in project.files.values())


def test_the_summary_as_text():
    node = {
        "name": "etl", "runtime": "python", "image": "konstellation/kre-py:1.23.0", "gpu": True,
        "src": "src/etl/main.py", "input": "entrypoint.Request", "output": None,
        "runner": "konstellation/kre-py:1.23.0", "python": "3.7",
        "requirements": ["numpy==1.18.4", "pandas"], "modules": ["helpers.py", "util.py"],
        "findings": ["error: krt.yml:7: first", "warning: krt.yml:8: second"],
    }  # fmt: skip
    bare = {"name": "go-node", "runtime": "go", "image": "konstellation/kre-go:1.11.0",
            "gpu": False, "src": "bin/node", "input": None, "output": None}  # fmt: skip
    data = {
        "version": "", "description": None, "origin": "v.krt", "files": 12, "bytes": 1234567,
        "entrypoint": {"proto": "public_input.proto", "image": "kre-entrypoint:1"},
        "config": {"variables": ["RATE", "NAME"], "files": ["MODEL"]},
        "rpcs": {"Go": {"input": "entrypoint.Request", "output": "entrypoint.Response"}},
        "workflows": [
            {"name": "w1", "entrypoint": "Go", "sequential": ["etl", "go-node"]},
            {"name": "w2", "entrypoint": "Gone", "sequential": ["etl"]},
        ],
        "nodes": [node, bare],
    }  # fmt: skip
    pad = " " * 22  # the node column (19) and its margins
    assert format_summary(data) == "\n".join([
        "version     (none)",
        "description (none)",
        "entrypoint  public_input.proto on kre-entrypoint:1",
        "files       12 (1,234,567 bytes) from v.krt",
        "config      RATE, NAME, MODEL (file)",
        "",
        "workflows",
        "  w1: rpc Go (Request) -> Response",
        "    etl -> go-node",
        "  w2: rpc Gone (rpc not in proto)",
        "    etl",
        "",
        "nodes",
        "  etl                 python konstellation/kre-py:1.23.0, gpu",
        f"{pad}src/etl/main.py (Request) -> ?",
        f"{pad}runs on konstellation/kre-py:1.23.0 (Python 3.7)",
        f"{pad}installs numpy==1.18.4, pandas",
        f"{pad}with helpers.py, util.py",
        f"{pad}error: krt.yml:7: first",
        f"{pad}warning: krt.yml:8: second",
        "  go-node             go     konstellation/kre-go:1.11.0",
        f"{pad}bin/node",
    ])  # fmt: skip
    no_config = {**data, "config": {"variables": [], "files": []}, "version": "v1"}
    text = format_summary(no_config)
    assert text.startswith("version     v1\n") and "config" not in text
