"""Capture in a real Jupyter kernel: cells, cell numbers in errors, and the exported file runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

DATA = Path(__file__).parent / "data"
RUNNER = DATA / "capture_runner.py"

CELLS = [
    # In[1]: imports, one with an alias; the pb2 module is a real protoc output in the cwd
    """\
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from math import floor

sys.path.insert(0, os.getcwd())
import public_input_pb2 as pb
""",
    # In[2]: stand-ins for krtlab's Version and node wrapper (their module says krtlab)
    """\
class FakeVersion:
    def node(self, name=None):
        return FakeNode


class FakeNode:
    __krt_node__ = True

    def __init__(self, fn):
        self.__wrapped__ = fn

    def init(self, fn):
        return fn


FakeVersion.__module__ = FakeNode.__module__ = "krtlab.fake"
v = FakeVersion()
""",
    # In[3]: constants
    """\
RATES = {"USD": 1.0, "EUR": 0.5}
UNUSED = 1
""",
    # In[4]: a helper calling another helper
    """\
def fmt(x):
    return f"{x:.2f}"


def describe(quote):
    return fmt(quote.amount * RATES[quote.currency]) + " " + quote.currency
""",
    # In[5]: a dataclass, redefined in In[6] (the latest definition is the one in use)
    """\
@dataclass
class Quote:
    amount: float
""",
    """\
@dataclass
class Quote:
    amount: float
    currency: str = "USD"
    notes: list = field(default_factory=list)
""",
    # In[7]: a plain class with methods
    """\
class Rounder:
    def __init__(self, digits):
        self.digits = digits

    def __call__(self, x):
        return round(x, self.digits)
""",
    # In[8]: unrelated work that must not be exported
    """\
def unrelated():
    return UNUSED


big_table = [unrelated()] * 3
""",
    # In[9]: the node and In[10] its init
    """\
@v.node(name="price")
async def price(ctx, req: pb.Request) -> pb.Response:
    quote = Quote(req.amount, req.currency or "USD")
    ctx.logger.info("pricing %s", osp.basename(req.name))
    value = Rounder(2)(floor(quote.amount) / 3)
    return pb.Response(text=f"{ctx.get('greeting')} {describe(quote)}", value=value)
""",
    """\
@price.init
def setup(ctx):
    ctx.set("greeting", json.loads('"Hi"'))
""",
    # In[11]: export
    """\
from krtlab.authoring.handler_py import render_main_py

os.makedirs("src/price", exist_ok=True)
text = render_main_py(
    node="price", version="price-v1", handler=price, init=setup,
    input_type=pb.Request, output_type=pb.Response,
)
with open("src/price/main.py", "w") as f:
    f.write(text)
""",
    # In[12]: functions that cannot be exported
    """\
scale = lambda x: x * 2

def uses_lambda(req):
    return scale(req.amount)

def uses_undefined(req):
    return req.amount * not_defined_anywhere
""",
    # In[13]: collect the errors and facts about the kernel
    """\
from krtlab.authoring.capture import capture
from krtlab.errors import CaptureError

errors = []
for fn in (uses_lambda, uses_undefined):
    try:
        capture([fn], node="bad")
    except CaptureError as exc:
        errors.append([str(exc), exc.name, exc.where])
with open("facts.json", "w") as f:
    json.dump({"errors": errors, "python": sys.executable}, f)
""",
]


@pytest.fixture(scope="module")
def kernel_manager(tmp_path_factory):
    """A kernel spec that runs this interpreter (the venv's), whatever is installed globally."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / "krtlab-capture"
    spec_dir.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "krtlab capture tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return AsyncKernelManager(kernel_name="krtlab-capture", kernel_spec_manager=specs)


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory, kernel_manager) -> Path:
    """Execute the notebook in a fresh kernel; return its working directory."""
    from grpc_tools import protoc

    work = tmp_path_factory.mktemp("notebook")
    argv = ["protoc", f"-I{DATA}", f"--python_out={work}", str(DATA / "public_input.proto")]
    assert protoc.main(argv) == 0
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(
        nb, km=kernel_manager, timeout=120, resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    shutil.copy(work / "public_input_pb2.py", work / "src" / "price")
    return work


@pytest.mark.slow
def test_exported_file_has_exactly_what_the_node_needs(notebook_run):
    text = (notebook_run / "src" / "price" / "main.py").read_text()
    assert "Generated by krtlab from cell In[9], line 1;" in text
    for needed in (
        "import json\n",
        "import os.path as osp\n",
        "from dataclasses import dataclass, field\n",
        "from math import floor\n",
        "import public_input_pb2 as pb\n",
        'RATES = {"USD": 1.0, "EUR": 0.5}\n',
        'def fmt(x):\n    return f"{x:.2f}"\n',
        "def describe(quote):\n",
        '    currency: str = "USD"\n    notes: list = field(default_factory=list)\n',
        "class Rounder:\n",
        "async def price(ctx, req: pb.Request) -> pb.Response:\n",
        "def setup(ctx):\n",
        'def init(ctx):\n    """kre-py entry point: runs setup() once when the node starts."""\n',
        "    setup(ctx)\n",
        "async def handler(ctx, data):\n",
    ):
        assert needed in text
    assert text.count("class Quote:") == 1
    for unwanted in ("unrelated", "UNUSED", "big_table", "FakeVersion", "@v.node", "@price.init",
                     "import sys\nimport os\n", "scale", "krtlab.fake"):  # fmt: skip
        assert unwanted not in text


@pytest.mark.slow
def test_notebook_errors_name_the_cell_and_line(notebook_run):
    facts = json.loads((notebook_run / "facts.json").read_text())
    assert Path(facts["python"]).resolve() == Path(sys.executable).resolve()
    (lambda_error, lambda_name, lambda_where), (undefined, undefined_name, _) = facts["errors"]
    assert (lambda_name, lambda_where) == ("scale", "cell In[12], line 4")
    assert lambda_error == (
        "cannot export 'scale', used by node 'bad' (cell In[12], line 4): "
        "it is a lambda; define it with def instead"
    )
    assert undefined_name == "not_defined_anywhere"
    assert undefined == (
        "name 'not_defined_anywhere' used by node 'bad' (cell In[12], line 7) is not defined"
    )


@pytest.mark.slow
def test_exported_notebook_node_runs_like_kre_py(notebook_run):
    main = notebook_run / "src" / "price" / "main.py"
    fields = {"name": "/tmp/flat.json", "amount": 10, "currency": "EUR"}
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(main), json.dumps(fields)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["response"] == {"text": "Hi 5.00 EUR", "value": 3.33}
    assert out["logs"] == ["pricing flat.json"]


def test_importing_capture_does_not_import_ipython():
    code = (
        "import sys, krtlab.authoring.capture, krtlab.authoring.handler_py\n"
        "print('IPython' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
