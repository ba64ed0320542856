"""The quick start in a real JupyterLab, driven by a real (headless) Chromium.

The test starts JupyterLab on a free port with a token, in a temporary root holding a copy of
``notebooks/01-quickstart-greeter.ipynb``, its kernel being this interpreter (a kernel spec in a
temporary ``JUPYTER_PATH``). Chromium opens the notebook and runs every cell from the Run menu;
the test then waits for what a user sees: the version's graph (an SVG naming ``py-greeter``) and
the request form of ``v.panel()``. It types a name in the form, presses **Run locally** and waits
for the greeting in the panel's response.

A screenshot of the page at the end, pass or fail, is left at
``.cache/artifacts/jupyterlab-quickstart.png``.

Needs Debian's ``chromium`` (``/usr/bin/chromium``), Playwright and JupyterLab; without them the
test fails rather than skips (``.ci/run`` and ``make test`` install them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
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
from urllib.parse import unquote
from xml.etree import ElementTree

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
NOTEBOOK = "01-quickstart-greeter.ipynb"
KERNEL_NAME = "Python 3 (krtlab)"
SCREENSHOT = REPO / ".cache" / "artifacts" / "jupyterlab-quickstart.png"
# JupyterLab user settings: no news toasts, and every cell in the page (no windowing), so what
# the test looks for is in the DOM wherever the notebook is scrolled
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
START_TIMEOUT = 60  # seconds for JupyterLab to answer
UI_TIMEOUT = 60_000  # milliseconds for what the page shows


def svg_texts(svg: str) -> set[str]:
    """The words a reader sees in an SVG: the text of its <text> elements."""
    root = ElementTree.fromstring(svg.encode("utf-8"))
    return {"".join(e.itertext()).strip() for e in root.iter() if e.tag.endswith("text")}


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


@pytest.mark.slow
def test_quickstart_runs_in_jupyterlab(tmp_path):
    sync_playwright, expect = require_tools()
    expect.set_options(timeout=UI_TIMEOUT)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)

    with jupyterlab(tmp_path, root) as lab, sync_playwright() as pw:
        # the kernel JupyterLab starts for the notebook is this interpreter (krtlab's venv)
        specs = lab.api("/api/kernelspecs")
        assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(UI_TIMEOUT)
        try:
            page.goto(f"{lab.base}/lab/tree/{NOTEBOOK}?token={lab.token}")
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            expect(notebook.locator(".jp-Cell").first).to_be_visible()
            # the kernel is up (the status bar says so), then Run ▸ Run All Cells, as a user would
            expect(page.get_by_text(f"{KERNEL_NAME} | Idle")).to_be_visible()
            page.locator(".lm-MenuBar-item").get_by_text("Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            # the version's graph: JupyterLab shows an SVG output as an <img> of the SVG source
            graph = notebook.locator(".jp-OutputArea-output.jp-RenderedSVG img")
            expect(graph).to_be_visible()
            assert graph.evaluate("img => img.complete && img.naturalWidth > 100")
            svg = unquote(graph.get_attribute("src").partition(",")[2])
            assert {"py-greeter", "PyGreet"} <= svg_texts(svg)
            # the request form: the `name` field of the Request, and its button
            name_field = notebook.locator(
                ".widget-hbox:has(> .widget-html:has-text('name'))"
                " > .widget-text input[type='text']"
            )
            expect(name_field).to_be_visible()
            run = notebook.get_by_role("button", name="Run locally")
            expect(run).to_be_enabled()

            name_field.fill("ada lovelace")
            run.click()
            # the panel's response, beside the form
            answer = notebook.locator(".widget-html:has(b:text-is('response')) pre")
            expect(answer).to_contain_text('"greeting": "Hello Ada Lovelace!"')
            expect(notebook.get_by_text("PyGreet ran locally")).to_be_visible()
        finally:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(SCREENSHOT))
            browser.close()
        [kernel] = lab.api("/api/kernels")
        assert kernel["name"] == "python3"
    assert SCREENSHOT.stat().st_size > 10_000
    # JupyterLab and the notebook's kernel are gone: nothing had to be killed
    assert lab.processes and not lab.leftovers, (lab.processes, lab.leftovers)
