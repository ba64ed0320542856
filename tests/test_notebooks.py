"""The notebooks in notebooks/ run in a real Jupyter kernel and show what they promise."""

import json
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import REPO

HARNESS = REPO / "tests" / "data" / "kre_py_harness.py"


def run_notebook(name, workdir, kernel_manager):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    client = NotebookClient(
        nb, km=kernel_manager(), timeout=180, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def text_of(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif "data" in o:
            out.append(o["data"].get("text/plain", ""))
    return "".join(out)


def test_notebooks_are_committed_without_outputs():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
def test_quickstart_notebook(tmp_path, kernel_manager, pb313_python):
    nb = run_notebook("01-quickstart-greeter.ipynb", tmp_path, kernel_manager)
    outputs = [text_of(c) for c in nb.cells if c.cell_type == "code"]
    assert "proto module public_input_pb2: Request, Response" in outputs[1]
    assert "greeter-v1: valid, no findings" in outputs[3]
    main_py = outputs[4]
    # the node's own source, the helper and constant it uses, nothing from other cells
    assert "def polite(name):" in main_py and "PUNCTUATION = " in main_py
    assert "def setup(ctx):" in main_py and "async def handler(ctx, data):" in main_py
    assert "import krtlab" not in main_py and "v.workflow" not in main_py
    assert "greeter-v1: valid" in outputs[5] and "py-greeter" in outputs[5]
    folder = tmp_path / "build" / "greeter"
    assert (tmp_path / "build" / "greeter-v1.krt").is_file()
    # the exported node runs as kre-py would run it, under the runner's protobuf
    proc = subprocess.run(
        [
            str(pb313_python),
            str(HARNESS),
            str(folder),
            "public_input_pb2",
            "Request",
            json.dumps({"name": "  ann "}),
            "src/py-greeter/main.py",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder / "src" / "py-greeter",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["response"] == {"greeting": "Hello Ann!"}
