"""binder/ gives mybinder.org (repo2docker) what the notebooks need: every module they import is
installed by binder/requirements.txt (directly or as one of krtlab's own dependencies), and
binder/apt.txt installs Graphviz's `dot`, which draws their graphs."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

BINDER = REPO / "binder"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted(
    (REPO / "templates" / "notebooks").glob("*.ipynb")
)


def lines_of(path):
    """The meaningful lines of a requirements or apt file: no comments, no blanks."""
    text = path.read_text(encoding="utf-8")
    return [s for s in (line.partition("#")[0].strip() for line in text.splitlines()) if s]


def imported_modules(source):
    """Top-level modules a cell imports (IPython syntax first turned into Python), including
    extensions loaded with ``%load_ext``."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run_line_magic"
            and [getattr(a, "value", None) for a in node.args[:1]] == ["load_ext"]
        ):
            found.add(node.args[1].value.split()[0].partition(".")[0])
    return found


def notebook_imports():
    """{module: [notebooks importing it]} over every notebook Binder opens, starters included."""
    modules: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                for module in imported_modules(cell.source):
                    modules.setdefault(module, []).append(path.name)
    return modules


def krtlab_requirements(extras):
    """Distributions krtlab installs itself: its dependencies and those of ``extras``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        assert extra in project["optional-dependencies"], f"krtlab has no extra {extra!r}"
        specs += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(s).name) for s in specs}


def binder_provides():
    """(distributions binder/requirements.txt installs, the local projects it installs)."""
    provided, local = set(), []
    for line in lines_of(BINDER / "requirements.txt"):
        spec = line.removeprefix("-e").strip()
        if spec.startswith((".", "/")):
            # repo2docker runs pip from the repository root: paths are relative to it
            path, _, extras = spec.partition("[")
            local.append((REPO / path).resolve())
            extras = [e.strip() for e in extras.rstrip("]").split(",") if e.strip()]
            provided |= {"krtlab"} | krtlab_requirements(extras)
        else:
            assert not line.startswith("-"), f"unexpected option in requirements.txt: {line}"
            provided.add(canonicalize_name(Requirement(spec).name))
    return provided, local


def test_binder_installs_krtlab_from_this_repository():
    provided, local = binder_provides()
    assert local == [REPO], "binder/requirements.txt must install krtlab from the repo (-e .)"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "krtlab"
    # the front end: JupyterLab, and ipywidgets 8 for v.panel() (it ships the lab extension)
    assert {"jupyterlab", "ipywidgets", "ipykernel"} <= provided
    postbuild = BINDER / "postBuild"
    assert not postbuild.exists() or postbuild.stat().st_mode & 0o111, "postBuild not executable"


def not_on_binder(imports):
    """The imported modules binder/requirements.txt does not install, each with its notebooks."""
    provided, _ = binder_provides()
    owners = importlib.metadata.packages_distributions()
    missing = []
    for module, notebooks in sorted(imports.items()):
        if module in sys.stdlib_module_names or module == "krtlab":
            continue
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        assert dists, f"{module} (imported by {notebooks}) is not installed in the test venv"
        if not dists & provided:
            missing.append(f"{module} ({'/'.join(sorted(dists))}) imported by {notebooks}")
    return missing


def test_every_notebook_import_is_installed_on_binder():
    imports = notebook_imports()
    assert "krtlab" in imports and len(NOTEBOOKS) >= 4, imports
    missing = not_on_binder(imports)
    assert not missing, "binder/requirements.txt does not install: " + "; ".join(missing)


def test_a_module_binder_lacks_is_reported():
    # yaml comes with krtlab (PyYAML), nats-py is only a test dependency
    imports = {"json": ["a.ipynb"], "yaml": ["a.ipynb"], "nats": ["b.ipynb"]}
    assert not_on_binder(imports) == ["nats (nats-py) imported by ['b.ipynb']"]


def test_import_scanner_sees_what_a_notebook_cell_imports():
    cell = "%load_ext krtlab\nimport numpy as np\nfrom google.protobuf import json_format\n"
    cell += "from . import local\n\ndef f():\n    import yaml\n"
    assert imported_modules(cell) == {"krtlab", "numpy", "google", "yaml"}
    assert imported_modules("%%krt_proto v\nsyntax = 'proto3';\n") == set()


def test_apt_txt_installs_the_dot_that_draws_the_graphs():
    packages = lines_of(BINDER / "apt.txt")
    assert "graphviz" in packages
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p) for p in packages), packages
    dot = shutil.which("dot")
    assert dot, "Graphviz is not installed here (.ci/run installs it)"
    if shutil.which("dpkg"):  # Debian, like Binder's image: the package that owns `dot`
        owner = subprocess.run(["dpkg", "-S", "*/bin/dot"], capture_output=True, text=True)
        assert owner.returncode == 0, owner.stderr
        assert {line.partition(":")[0] for line in owner.stdout.splitlines()} <= set(packages)
    # and `dot` is what draws a version in a notebook
    import krtlab as krt

    v = krt.load(REPO / "templates" / "greeter")
    svg = v._repr_mimebundle_()["image/svg+xml"]
    assert "Generated by graphviz" in svg
    root = ElementTree.fromstring(svg.encode("utf-8"))
    assert "py-greeter" in {"".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")}
