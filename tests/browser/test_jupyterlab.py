"""The notebooks in a real JupyterLab, driven by a real (headless) Chromium at 1400×1000.

One JupyterLab for the module, started on a free port with a token, in a temporary root holding
copies of ``notebooks/*.ipynb`` (and the model file notebook 02 reads from ``../templates/``),
its kernel being this interpreter (a kernel spec in a temporary ``JUPYTER_PATH``). For each
notebook Chromium opens it and runs every cell from the Run menu, as a user would, and the tests
look at what a user sees:

- the quick start: the version's graph, the request form of ``v.panel()``; a name typed in the
  form and **Run locally** give the greeting beside the form, once, and the run's graph below;
- every notebook: no output area, panel or graph scrolls or cuts sideways (``scrollWidth`` against
  ``clientWidth``), and each graph is a vector ``<svg>`` within its cell, the price estimator's
  (wider than the cell) scaled down to it;
- the deploy notebook: after its clean-up cell stopped the KAI Server, **Call deployed** says
  so, the error once;
- a scratch notebook: a misspelled rpc through ``v.run`` is one error block (``SpecError: ...
  did you mean 'PyGreet'?``, no krtlab frames); a run whose node takes another type than the one
  before it returns marks that node failed in the run graph; a node that raises shows its cell
  and line; a workflow's header keeps the space before its middle dot; the run graph's links are
  not underlined on hover.

Screenshots of each notebook in JupyterLab's light and dark themes, pass or fail, are left in
``.cache/browser-artifacts/`` (the paths are printed: ``pytest -s`` shows them).

Needs Debian's ``chromium`` (``/usr/bin/chromium``), Playwright and JupyterLab; without them the
tests fail rather than skip (``.ci/run`` and ``make test`` install them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOKS = ("01-quickstart-greeter.ipynb", "02-price-estimator.ipynb",
             "03-deploy-and-query.ipynb")  # fmt: skip
SCRATCH = "scratch.ipynb"
KERNEL_NAME = "Python 3 (krtlab)"
ARTIFACTS = REPO / ".cache" / "browser-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
# JupyterLab user settings: no news toasts, and every cell in the page (no windowing), so what
# the test looks for is in the DOM wherever the notebook is scrolled
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
START_TIMEOUT = 60  # seconds for JupyterLab to answer
UI_TIMEOUT = 60_000  # milliseconds for what the page shows
RUN_ALL_TIMEOUT = 300_000  # milliseconds for a notebook's cells (02 serves, 03 deploys twice)
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# The scratch notebook: the failures a user meets, each in a cell (the raising one last: Run All
# stops at the first cell that raises).
SCRATCH_CELLS = {
    "greeter": """import krtlab as krt

v = krt.Version("greeter-v1", description="Greets whoever asks")
pb = v.proto('''
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
''')


@v.node(name="py-greeter")
def greet(req: pb.Request) -> pb.Response:
    return pb.Response(greeting=f"Hello {req.name}!")


v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet]);""",
    "words": """w = krt.Version("word-count-v1", description="Counts words, or shouts")
wp = w.proto('''
syntax = "proto3";
package entrypoint;
message Request { string text = 1; }
message Counted { int32 words = 1; }
message Response { string summary = 1; }
service Entrypoint {
  rpc Count (Request) returns (Response) {};
  rpc Shout (Request) returns (Response) {};
}
''')


@w.node(name="word-count")
def count(req: wp.Request) -> wp.Counted:
    return wp.Counted(words=len(req.text.split()))


@w.node(name="summarize")  # takes a Request, but word-count before it returns a Counted
def summarize(req: wp.Request) -> wp.Response:
    return wp.Response(summary=req.text.upper())


@w.node(name="shouter")
def shout(req: wp.Request) -> wp.Response:
    loud = req.text.upper()
    raise ValueError(f"too loud: {loud}")


w.workflow("word-count", entrypoint="Count", sequential=[count, summarize])
w.workflow("shouting", entrypoint="Shout", sequential=[shout]);""",
    "mismatch": 'w.run("Count", text="a b c")',
    "raises": 'w.run("Shout", text="hey")',
    "misspelled": 'v.run("PyGret", name="x")',
}

# Run All is over: each code cell's prompt has its number (none has "*"), or one raised and the
# cells after it were left alone.
ALL_RAN = """([sel, n]) => {
  const prompts = [...document.querySelectorAll(`${sel} .jp-CodeCell .jp-InputPrompt`)]
    .map(p => p.textContent);
  const done = prompts.filter(t => /\\[\\d+\\]/.test(t)).length;
  const error = document.querySelector(`${sel} [data-mime-type$="jupyter.stderr"]`);
  return prompts.length === n && !prompts.some(t => t.includes('*'))
      && (done === n || error !== null);
}"""
# Every element of the notebook's output areas that scrolls or cuts its content sideways (a
# text box's own text is its business); "" when none does.
OVERFLOWS = """nb => {
  const out = [];
  for (const area of nb.querySelectorAll('.jp-OutputArea-output')) {
    for (const e of [area, ...area.querySelectorAll('*')]) {
      if (['INPUT', 'TEXTAREA', 'SELECT'].includes(e.tagName) || e.closest('svg')) continue;
      if (e.clientWidth === 0) continue;  // not displayed
      if (e !== area && getComputedStyle(e).overflowX === 'visible') continue;
      if (e.scrollWidth > e.clientWidth + 1) {
        const what = (e.className.baseVal ?? e.className).toString().slice(0, 60);
        out.push(`${e.tagName}.${what}: ${e.scrollWidth} > ${e.clientWidth} px`);
      }
    }
  }
  return out;
}"""
# Each picture in the outputs: its tag, its own width (the SVG's width attribute, in px), the
# width it is drawn at, and how far it stays within its output area on each side.
PICTURES = """nb => [...nb.querySelectorAll('.jp-OutputArea-output svg, .jp-OutputArea-output img')]
  .filter(e => !e.parentElement.closest('svg') && !e.closest('button'))
  .map(e => {
    const area = e.closest('.jp-OutputArea-output').getBoundingClientRect();
    const box = e.getBoundingClientRect();
    return {tag: e.tagName, natural: e.tagName === 'svg' ? e.width.baseVal.value : e.naturalWidth,
            width: box.width, left: box.left - area.left, right: area.right - box.right,
            area: area.width};
  })"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (a kernel starts in a session of its own: not in our group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def jupyter_env(tmp: Path) -> dict[str, str]:
    """A Jupyter of its own: config, data, runtime, settings and workspaces in ``tmp``, and a
    ``python3`` kernel spec (first on JUPYTER_PATH) that runs this interpreter."""
    spec = tmp / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": KERNEL_NAME, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    for name, values in SETTINGS.items():
        path = tmp / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTER_PATH=str(tmp / "jupyter"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        IPYTHONDIR=str(tmp / "ipython"),
    )
    env.pop("JUPYTER_TOKEN", None)
    for name in ("KAI_SERVER_URL", "KAI_API_TOKEN"):  # notebook 03 then starts its LocalKai
        env.pop(name, None)
    return env


@dataclass
class Lab:
    """A running JupyterLab: where it is, and after it stopped, what ran below it and what was
    still alive after its shutdown (killed then, and reported)."""

    base: str
    token: str
    log: Path
    processes: list[int] = field(default_factory=list)
    leftovers: list[int] = field(default_factory=list)

    def api(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)


@contextlib.contextmanager
def jupyterlab(tmp: Path, root: Path) -> Iterator[Lab]:
    """JupyterLab serving ``root`` on a free port, with a token; stopped with its kernels."""
    port, token = free_port(), secrets.token_hex(16)
    lab = Lab(f"http://127.0.0.1:{port}", token, tmp / "jupyterlab.log")
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    with open(lab.log, "wb") as out:
        server = subprocess.Popen(
            argv, env=jupyter_env(tmp), cwd=root, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                tail = lab.log.read_text()[-3000:]
                pytest.fail(f"JupyterLab exited ({server.returncode}):\n{tail}")
            try:
                lab.api("/api/status")
                break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer in {START_TIMEOUT}s:\n{lab.log.read_text()}"
                )
            time.sleep(0.2)  # polling for the port, bounded by the deadline above
        yield lab
    finally:
        stop(server, lab)


def stop(server: subprocess.Popen, lab: Lab) -> None:
    """SIGTERM JupyterLab (it shuts its kernels down), then kill whatever of it is left."""
    lab.processes = descendants(server.pid)
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in lab.processes) and time.monotonic() < deadline:
        time.sleep(0.1)  # kernels exiting, bounded by the deadline
    lab.leftovers = [p for p in lab.processes if alive(p)]
    for pid in lab.leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def require_tools():
    """The test's tools, or a failure that says how to get them (never a skip)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)")
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.fail("JupyterLab is not installed: pip install -e '.[test]' (make test does)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[test]' (make test does)")
    return sync_playwright, expect


def notebook_root(tmp: Path) -> Path:
    """A root with the notebooks in ``notebooks/``, the model 02 reads from ``../templates/``,
    and the scratch notebook."""
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    models = REPO / "templates" / "price-estimator" / "models"
    shutil.copytree(models, root / "templates" / "price-estimator" / "models")
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / name, root / "notebooks" / name)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code, id=key) for key, code in SCRATCH_CELLS.items()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": KERNEL_NAME,
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, root / "notebooks" / SCRATCH)
    return root


@dataclass
class Session:
    """One JupyterLab and one Chromium page for the module."""

    lab: Lab
    page: Any
    expect: Any
    shots: list[Path] = field(default_factory=list)

    @property
    def notebook(self) -> Any:
        return self.page.locator(f"{VISIBLE} .jp-Notebook")

    def cell(self, index: int) -> Any:
        return self.notebook.locator(".jp-Cell").nth(index)

    def run_all(self, name: str) -> Any:
        """Open ``notebooks/<name>`` and run all its cells from the Run menu; wait until no
        cell is still running. Returns the notebook's locator."""
        page, expect = self.page, self.expect
        # ?reset: a workspace of its own, so that the tabs of earlier tests are not restored
        # around it (a restored tab may take the focus back while the kernel starts)
        page.goto(f"{self.lab.base}/lab/tree/notebooks/{name}?reset&token={self.lab.token}")
        nb = self.notebook
        expect(nb.locator(".jp-Cell").first).to_be_visible()
        expect(page.locator(f"{VISIBLE} .jp-Notebook-cell").first).to_be_attached()
        # the kernel is up (the status bar says so), then Run ▸ Run All Cells, as a user would
        expect(page.get_by_text(f"{KERNEL_NAME} | Idle")).to_be_visible()
        nb.locator(".jp-Cell .jp-InputPrompt").first.click()  # this notebook has the focus
        page.locator(".lm-MenuBar-item").get_by_text("Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # every code cell has run (a number in its prompt), or Run All stopped at an error
        count = nb.locator(".jp-CodeCell").count()
        page.wait_for_function(ALL_RAN, arg=[VISIBLE, count], timeout=RUN_ALL_TIMEOUT)
        expect(page.get_by_text(f"{KERNEL_NAME} | Idle")).to_be_visible()
        return nb

    @contextlib.contextmanager
    def opened(self, name: str) -> Iterator[Any]:
        """:meth:`run_all`, then the notebook in both themes, pass or fail."""
        try:
            yield self.run_all(name)
        finally:
            with contextlib.suppress(Exception):  # the test's own failure matters more
                self.screenshots(name)

    def overflows(self) -> list[str]:
        return self.notebook.evaluate(OVERFLOWS)

    def pictures(self) -> list[dict[str, Any]]:
        return self.notebook.evaluate(PICTURES)

    def theme(self, name: str) -> None:
        """Settings ▸ Theme ▸ ``name``, as a user would."""
        page = self.page
        page.locator(".lm-MenuBar-item").get_by_text("Settings", exact=True).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).click()
        light = "false" if "Dark" in name else "true"
        self.expect(page.locator(f"body[data-jp-theme-light='{light}']")).to_be_attached()
        page.wait_for_timeout(500)  # the theme's stylesheet swapped in: let the page repaint

    def screenshots(self, name: str) -> None:
        """The whole notebook, top to bottom, in the light and the dark theme: the viewport is
        made as tall as the notebook for the picture (its width, so its layout, stays)."""
        page, stem = self.page, Path(name).stem
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            self.theme(theme)
            height = page.evaluate(
                "sel => document.querySelector(sel + ' .jp-WindowedPanel-viewport')"
                ".getBoundingClientRect().height",
                VISIBLE,
            )
            page.set_viewport_size({"width": VIEWPORT["width"], "height": int(height) + 150})
            page.evaluate(
                "sel => document.querySelectorAll(sel + ' *').forEach(e => { e.scrollTop = 0 })",
                VISIBLE,
            )
            path = ARTIFACTS / f"{stem}.{suffix}.png"
            try:
                page.screenshot(path=str(path))
                self.shots.append(path)
                print(f"screenshot: {path}")
            finally:
                page.set_viewport_size(VIEWPORT)
        self.theme("JupyterLab Light")

    def check_fits(self, name: str) -> list[dict[str, Any]]:
        """No output scrolls or cuts sideways; every picture is a vector SVG within its cell."""
        assert self.overflows() == [], name
        pictures = self.pictures()
        for pic in pictures:
            assert pic["tag"] == "svg", (name, pic)  # vector, sharp at any scale
            assert pic["width"] <= pic["area"] + 0.5 and pic["right"] >= -0.5, (name, pic)
        return pictures


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Iterator[Session]:
    sync_playwright, expect = require_tools()
    expect.set_options(timeout=UI_TIMEOUT)
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = notebook_root(tmp)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    with jupyterlab(tmp, root) as lab, sync_playwright() as pw:
        # the kernel JupyterLab starts for a notebook is this interpreter (krtlab's venv)
        specs = lab.api("/api/kernelspecs")
        assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(UI_TIMEOUT)
        try:
            yield Session(lab, page, expect)
        finally:
            browser.close()
        kernels = lab.api("/api/kernels")
        assert kernels and {k["name"] for k in kernels} == {"python3"}
    # JupyterLab and the notebooks' kernels are gone: nothing had to be killed
    assert lab.processes and not lab.leftovers, (lab.processes, lab.leftovers)


@pytest.mark.slow
def test_quickstart(session):
    expect = session.expect
    with session.opened(NOTEBOOKS[0]) as nb:
        # the version's graph: the SVG itself in the page, naming the node and the rpc
        graph = nb.locator(".jp-OutputArea-output .krtlab-graph svg").first
        expect(graph).to_be_visible()
        words = set(graph.locator("text").all_text_contents())
        assert {"py-greeter", "PyGreet"} <= words
        # the request form: the `name` field of the Request, and its button
        name_field = nb.locator(
            ".widget-hbox:has(> .widget-html:has-text('name')) > .widget-text input[type='text']"
        )
        expect(name_field).to_be_visible()
        run = nb.get_by_role("button", name="Run locally")
        expect(run).to_be_enabled()

        name_field.fill("ada lovelace")
        run.click()
        # the panel's response, beside the form, once; the run's graph below
        answer = nb.locator(".widget-html:has(b:text-is('response')) pre")
        expect(answer).to_contain_text('"greeting": "Hello Ada Lovelace!"')
        expect(nb.get_by_text("PyGreet ran locally")).to_be_visible()
        panel = nb.locator(".jp-OutputArea-output:has(.widget-vbox)")
        assert panel.inner_text().count("Hello Ada Lovelace!") == 1
        expect(panel.locator(".widget-html svg g.node.status-ok")).to_have_count(1)
        session.check_fits(NOTEBOOKS[0])


@pytest.mark.slow
def test_price_estimator(session):
    expect = session.expect
    with session.opened(NOTEBOOKS[1]) as nb:
        expect(nb.get_by_text("same as the local run: True")).to_be_visible()
        pictures = session.check_fits(NOTEBOOKS[1])
        # the version's graph is wider than the cell: drawn smaller, whole, instead of cut
        scaled = [p for p in pictures if p["natural"] > p["area"] > p["width"] > 0.6 * p["area"]]
        assert scaled, pictures
        nodes = nb.locator(".jp-OutputArea-output svg g.node.status-ok")
        expect(nodes).to_have_count(3)  # the run shown: etl, model, output


@pytest.mark.slow
def test_deploy_and_query(session):
    expect = session.expect
    with session.opened(NOTEBOOKS[2]) as nb:
        # KRE's words, and krtlab's hint where they mislead
        expect(nb.get_by_text("hint: it is PUBLISHED: unpublish() first")).to_be_visible()
        # the clean-up cell stopped the KAI Server: the form says so when called, the error once
        nb.get_by_role("button", name="Call deployed").click()
        panel = nb.locator(".jp-OutputArea-output:has(.widget-vbox)")
        shown = panel.locator(".widget-html:has(b:has-text('cannot be called'))")
        expect(shown).to_contain_text("greeter-v2 cannot be called: its KAI Server does not answer")
        expect(shown).to_contain_text(
            "the server was stopped after this panel was made (greeter-v2 was PUBLISHED then)"
        )
        text = panel.inner_text()
        assert text.count("Connection refused") == 1, text
        expect(panel.get_by_text("calling PyGreet failed")).to_be_visible()
        session.check_fits(NOTEBOOKS[2])


@pytest.mark.slow
def test_errors_read_as_one_block_and_failed_nodes_show(session):
    expect = session.expect
    with session.opened(SCRATCH):
        cells = {key: session.cell(i) for i, key in enumerate(SCRATCH_CELLS)}

        # a misspelled rpc: one error block, the message first, no krtlab frames
        outputs = cells["misspelled"].locator(".jp-OutputArea-output")
        expect(outputs).to_have_count(1)
        error = outputs.first.inner_text().strip()
        assert error.startswith("SpecError:"), error
        assert "did you mean 'PyGreet'?" in error and "krtlab/" not in error, error

        # the node that takes a Request after one that returns a Counted: failed, in the graph
        graph = cells["mismatch"].locator(".jp-OutputArea-output svg").first
        node = graph.locator("g.node", has=session.page.locator("text", has_text="summarize"))
        expect(node).to_have_class(re.compile(r"\bstatus-failed\b"))
        shapes = node.locator("path, polygon")
        fills = shapes.evaluate_all("es => es.map(e => e.getAttribute('fill'))")
        assert "#fde2e1" in fills, fills  # COLORS["failed"]'s fill
        done = graph.locator("g.node", has=session.page.locator("text", has_text="word-count"))
        expect(done).to_have_class(re.compile(r"\bstatus-ok\b"))
        # the workflow's header keeps its spaces: "word-count  ·  rpc Count", not "word-count·"
        gap = graph.evaluate("""svg => {
            const texts = [...svg.querySelectorAll('g.cluster text')];
            const name = texts.find(t => t.textContent === 'word-count');
            const dot = texts.find(t => t.textContent.includes('·'));
            return dot.getBBox().x + dot.getSubStringLength(0, dot.textContent.indexOf('·'))
                - (name.getBBox().x + name.getBBox().width);
        }""")
        assert gap >= 3, gap
        # no underline when the pointer is on the graph's title (its tooltip is a link)
        title = graph.locator("text", has_text="word-count-v1").first
        title.hover()
        decorations = graph.evaluate(
            "svg => [...svg.querySelectorAll('a')].map(a => getComputedStyle(a).textDecorationLine)"
        )
        assert decorations and set(decorations) == {"none"}, decorations

        # a node that raises: its error with the cell and line of its code
        raised = cells["raises"].locator(".jp-OutputArea-output").first.inner_text()
        assert "too loud: HEY" in raised and re.search(r"cell In\[\d+\], line \d+", raised), raised
        session.check_fits(SCRATCH)
