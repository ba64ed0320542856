"""Interpreters and virtual environments for ``krtlab check``: the runner image's Python, with
protobuf 3.13.0 and the image's pins of what the nodes import.

Interpreters are looked for in this order: ``--python`` (a path, or a version such as ``3.7``
searched for like the runner's), pyenv's ``$PYENV_ROOT/versions/X.Y.*`` and
``~/.pyenv/versions/X.Y.*`` (newest patch first), ``uv python find X.Y`` when uv is on ``PATH``,
then ``pythonX.Y`` on ``PATH``. Every candidate is run once to learn its real version and
executable (a pyenv shim that has no such version is skipped).

Environments live under ``$KRTLAB_CACHE_DIR/check/`` (default ``~/.cache/krtlab/check/``), one
per (interpreter, pins to install, constraints): ``py37-<hash>/``. The marker file
``krtlab-check.json`` is written last, holding what was installed; a folder whose marker is
missing or different is built again. Images' pins are passed as pip *constraints*, so what a
package pulls in gets the image's version too.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from krtlab.spec.runners import Runner, normalize, requirement_name

__all__ = [
    "Interpreter",
    "NoInterpreter",
    "Venv",
    "cache_dir",
    "ensure_venv",
    "find_interpreter",
    "imported_names",
    "pip_specs",
]

#: runner-side distributions a node never needs installed to be checked
_RUNNER_ONLY = {"asyncio-nats-client", "nats-py", "pip", "setuptools", "wheel"}
_MARKER = "krtlab-check.json"
_PIP_TIMEOUT_S = 1800
_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"


@dataclass(frozen=True)
class Interpreter:
    """A Python found for a runner: ``path`` (its real executable), ``version`` (``3.7.16``)
    and ``found_by`` (``--python``, ``pyenv``, ``uv`` or ``PATH``)."""

    path: str
    version: str
    found_by: str

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


@dataclass(frozen=True)
class NoInterpreter:
    """No interpreter of ``wanted`` (``3.7``): where krtlab looked and how to get one."""

    wanted: str
    looked: tuple[str, ...]
    given: str | None = None

    def __str__(self) -> str:
        w = self.wanted
        how = (
            f"install one with `pyenv install {w}` or `uv python install {w}`, or pass its "
            f"path (krtlab check PATH --python /path/to/python{w}, v.check(python=...))"
        )
        if self.given:
            return f"--python {self.given}: {self.looked[0]}; the runner runs Python {w}: {how}"
        return f"no Python {w} interpreter found (looked in {'; '.join(self.looked)}); {how}"


@dataclass(frozen=True)
class Venv:
    """A built environment: its folder, its ``python`` and what was installed in it."""

    path: Path
    python: Path
    installed: tuple[str, ...]
    reused: bool


_PROBED: dict[str, tuple[str, str] | None] = {}


def _probe(path: str) -> tuple[str, str] | None:
    """(version, real executable) of an interpreter, or None when it does not run."""
    if path not in _PROBED:
        try:
            proc = subprocess.run([path, "-I", "-c", _PROBE], capture_output=True, text=True,
                                  timeout=60)  # fmt: skip
            lines = proc.stdout.split()
            ok = proc.returncode == 0 and len(lines) == 2
            _PROBED[path] = (lines[0], lines[1]) if ok else None
        except (OSError, subprocess.SubprocessError):
            _PROBED[path] = None
    return _PROBED[path]


def _pyenv_roots() -> list[Path]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]).expanduser() / "versions")
    roots.append(Path("~/.pyenv/versions").expanduser())
    return list(dict.fromkeys(roots))


def _pyenv(wanted: str) -> Iterator[str]:
    pattern = re.compile(rf"^{re.escape(wanted)}\.(\d+)$")
    for root in _pyenv_roots():
        found = []
        with contextlib.suppress(OSError):
            for entry in root.iterdir():
                match = pattern.match(entry.name)
                if match:
                    found.append((int(match.group(1)), entry))
        for _, entry in sorted(found, reverse=True):
            for exe in (f"python{wanted}", "python"):
                if (entry / "bin" / exe).exists():
                    yield str(entry / "bin" / exe)
                    break


def find_interpreter(wanted: str, given: str | None = None) -> Interpreter | NoInterpreter:
    """An interpreter of Python ``wanted`` (``"3.7"``), or where none was found.

    ``given`` (``--python``) wins: a path is used as it is (whatever its version: the result
    says so), a version such as ``"3.9"`` is searched for instead of ``wanted``.
    """
    if given and not re.fullmatch(r"\d+\.\d+", given):
        path = str(Path(given).expanduser())
        found = _probe(path) if os.path.exists(path) else None
        if found is None:
            why = "no such file" if not os.path.exists(path) else "it does not run"
            return NoInterpreter(wanted, (why,), given)
        return Interpreter(found[1], found[0], "--python")
    wanted = given or wanted
    looked = []
    for root in _pyenv_roots():
        looked.append(f"{root}/{wanted}.*")
    for path in _pyenv(wanted):
        found = _probe(path)
        if found and found[0].startswith(wanted + "."):
            return Interpreter(found[1], found[0], "pyenv")
    uv = shutil.which("uv")
    looked.append(f"uv python find {wanted}" if uv else "uv (not on PATH)")
    if uv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc = subprocess.run([uv, "python", "find", wanted], capture_output=True, text=True,
                                  timeout=60)  # fmt: skip
            path = proc.stdout.strip()
            found = _probe(path) if proc.returncode == 0 and path else None
            if found and found[0].startswith(wanted + "."):
                return Interpreter(found[1], found[0], "uv")
    looked.append(f"python{wanted} on PATH")
    exe = shutil.which(f"python{wanted}")
    found = _probe(exe) if exe else None
    if found and found[0].startswith(wanted + "."):
        return Interpreter(found[1], found[0], "PATH")
    return NoInterpreter(wanted, tuple(looked))


# -- what to install ----------------------------------------------------------------------------


def imported_names(files: Mapping[str, bytes], folder: str) -> set[str]:
    """Top-level names imported anywhere in the ``.py`` files of a node's folder."""
    names: set[str] = set()
    prefix = folder + "/" if folder else ""
    for path, data in files.items():
        if not (path.startswith(prefix) and path.endswith(".py")):
            continue
        try:
            tree = ast.parse(data.decode("utf-8", "replace"))
        except (SyntaxError, ValueError):
            continue  # the runner reports it at import
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def pip_specs(runner: Runner, imports: Iterable[str]) -> list[str]:
    """``dist==version`` for protobuf and each pinned distribution the imports come from."""
    pins, imports = runner.pins, set(imports)
    specs = {f"protobuf=={pins.get('protobuf', '3.13.0')}"}
    for dist, names in runner.import_names().items():
        if dist not in _RUNNER_ONLY and names & imports:
            specs.add(f"{dist}=={pins[dist]}")
    return sorted(specs)


def requirement_lines(files: Mapping[str, bytes], folder: str) -> list[str]:
    """The lines of ``<folder>/requirements.txt`` (a node's packages beyond its image)."""
    data = files.get(posixpath.join(folder, "requirements.txt"), b"")
    lines = (line.split("#", 1)[0].strip() for line in data.decode("utf-8", "replace").split("\n"))
    return sorted({line for line in lines if line})


def requirement_dist(line: str) -> str:
    """The distribution a requirement line names, normalized (``Six==1.16`` -> ``six``)."""
    return normalize(requirement_name(line) or "")


# -- environments --------------------------------------------------------------------------------


def cache_dir() -> Path:
    """krtlab's cache folder: ``$KRTLAB_CACHE_DIR``, else ``~/.cache/krtlab``."""
    return Path(os.environ.get("KRTLAB_CACHE_DIR") or "~/.cache/krtlab").expanduser().absolute()


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)  # two checks at once build it only once
        except ImportError:  # pragma: no cover - Windows: no lock
            pass
        yield


def ensure_venv(
    interpreter: Interpreter,
    specs: list[str],
    constraints: Mapping[str, str],
    requirements: list[str],
    progress: Callable[[str], None],
) -> Venv:
    """The environment for ``specs`` (installed with ``constraints``) and ``requirements``
    (installed on top, like a custom image's ``pip install``), built once and reused.

    Raises:
        RuntimeError: the environment cannot be built (pip's error in the message).
    """
    want = {
        "python": interpreter.path,
        "version": interpreter.version,
        "install": sorted(specs),
        "constraints": sorted(f"{d}=={v}" for d, v in constraints.items()),
        "requirements": sorted(requirements),
    }
    text = json.dumps(want, indent=1, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    major, minor = interpreter.minor
    folder = cache_dir() / "check" / f"py{major}{minor}-{key}"
    python = _venv_python(folder)
    installed = (*want["install"], *want["requirements"])
    if _ready(folder, python, text):
        return Venv(folder, python, installed, True)
    with _locked(folder.with_suffix(".lock")):
        if _ready(folder, python, text):
            return Venv(folder, python, installed, True)
        _build(interpreter, folder, want, progress)
        (folder / _MARKER).write_text(text)
    return Venv(folder, python, installed, False)


def _ready(folder: Path, python: Path, text: str) -> bool:
    try:
        return python.exists() and (folder / _MARKER).read_text() == text
    except OSError:
        return False


def _build(interpreter: Interpreter, folder: Path, want: dict, progress: Callable) -> None:
    started = time.monotonic()
    shutil.rmtree(folder, ignore_errors=True)
    progress(f"Python {interpreter.version}: building an environment in {folder} "
             "(once; later checks reuse it)")  # fmt: skip
    _run([interpreter.path, "-m", "venv", str(folder)], "python -m venv")
    python = str(_venv_python(folder))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    constraints = folder / "constraints.txt"
    constraints.write_text("".join(f"{line}\n" for line in want["constraints"]))
    progress(f"  pip install {' '.join(want['install'])} (the image's pins as constraints)")
    _run([*pip, "-c", str(constraints), *want["install"]], "pip install")
    if want["requirements"]:
        progress(f"  pip install {' '.join(want['requirements'])} (the node's requirements.txt)")
        _run([*pip, *want["requirements"]], "pip install")
    progress(f"  environment ready in {time.monotonic() - started:.0f} s")


def _run(argv: list[str], what: str) -> None:
    env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S,
                              env=env)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not finish in {_PIP_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise RuntimeError(f"{what} failed ({' '.join(argv[3:])}):\n{tail}")


def harness_path() -> str:
    """The harness file run under the runner's Python (see :mod:`.check_harness`)."""
    return str(Path(__file__).with_name("check_harness.py"))
