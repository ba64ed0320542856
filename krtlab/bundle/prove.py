"""Prove an export: import every node's ``main.py`` in a fresh interpreter, the way kre-py does.

kre-py loads ``/krt-files/<src>`` with :func:`importlib.util.spec_from_file_location` as module
``worker``, its folder *appended* to ``sys.path``. An exported node that cannot be imported like
that (a module left behind beside the notebook, a statement that fails without the notebook's
state) would crash on KRE at start-up; :func:`prove_imports` finds it now and reports it as a
located finding, not a traceback.

One child interpreter (``python -I``: no current directory, ``PYTHONPATH`` or user site on its
path) imports protobuf once, then forks once per node, so each node starts from a clean state
and the whole proof costs about one interpreter start. Results are kept per node content, so
validating an unchanged version again costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from krtlab.spec.findings import ERROR, Finding

__all__ = ["TIMEOUT_S", "Proof", "prove_imports"]

#: the whole proof (all nodes) must finish within this many seconds
TIMEOUT_S = 120.0
_CACHE: dict[str, dict[str, Any]] = {}

# Runs in the child: import each node as kre-py would, one fork per node, and print one JSON
# object {src: result}. Node output goes to /dev/null: print() at import is allowed.
_CHILD = r"""
import importlib.util, json, os, sys, traceback
import google.protobuf.any_pb2  # shared by every fork: loaded once

base, srcs, shared = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
# generated *_pb2 files identical in every node folder: imported once, before the forks
for folder, names in shared.items():
    sys.path.insert(0, os.path.join(base, folder))
    for name in names:
        __import__(name)
    sys.path.pop(0)

def load(src):
    path = os.path.join(base, src)
    folder = os.path.dirname(path)
    sys.path.append(folder)
    try:
        spec = importlib.util.spec_from_file_location("worker", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "handler", None)):
            return {"error": "the module defines no handler", "frames": []}
        return {"ok": True}
    except BaseException as exc:
        frames = [[f.filename, f.lineno] for f in traceback.extract_tb(exc.__traceback__)]
        if isinstance(exc, SyntaxError) and exc.filename:
            frames.append([exc.filename, exc.lineno])
        text = str(exc).strip().splitlines()
        return {"error": type(exc).__name__ + (": " + text[0] if text else ""), "frames": frames}

def start(src):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        try:
            result = load(src)
        except BaseException as exc:
            result = {"error": repr(exc), "frames": []}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    return pid, read


def finish(pid, read):
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"error": f"the import ended the interpreter (status {status})", "frames": []}


results = {}
width = max(1, min(4, os.cpu_count() or 1))  # a few imports at once
if not hasattr(os, "fork"):  # one node per interpreter there
    results = {src: load(src) for src in srcs}
for i in range(0, len(srcs), width) if hasattr(os, "fork") else ():
    started = [(src, start(src)) for src in srcs[i : i + width]]
    for src, (pid, read) in started:
        results[src] = finish(pid, read)
print(json.dumps(results))
"""


def _prefix(folder: str) -> str:
    """What the paths of the files in a node's folder start with ("" at the bundle root)."""
    return folder + "/" if folder else ""


def _digest(files: Mapping[str, bytes], folder: str) -> str:
    h = hashlib.sha256(sys.executable.encode())
    prefix = _prefix(folder)
    for path in sorted(p for p in files if p.startswith(prefix)):
        h.update(path.encode() + b"\0" + files[path] + b"\0")
    return h.hexdigest()


class _Job:
    """One child interpreter importing nodes; it starts at once and is waited for later, so the
    rest of validation runs meanwhile."""

    def __init__(self, files: Mapping[str, bytes], srcs: Sequence[str]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="krtlab-prove-")
        self.root = Path(self._tmp.name)
        folders = {posixpath.dirname(s) for s in srcs}
        for path, data in files.items():
            if any(path.startswith(f + "/") or not f for f in folders):
                target = self.root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        fork = hasattr(os, "fork")
        shared = _shared_pb2(files, sorted(folders)) if fork else {}
        # without fork (Windows): one interpreter per node, one after the other
        self.batches = [list(srcs)] if fork else [[s] for s in srcs]
        self.procs = {0: self._spawn(self.batches[0], shared)}
        self.started = time.monotonic()

    def results(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        try:
            for i, batch in enumerate(self.batches):
                out.update(self._wait(i, batch))
        finally:
            self._tmp.cleanup()
        prefix = str(self.root) + os.sep
        for result in out.values():  # paths inside the bundle, not the temp folder
            result["frames"] = [
                [f[len(prefix):].replace(os.sep, "/"), n] for f, n in result.get("frames", [])
                if isinstance(f, str) and f.startswith(prefix)
            ]  # fmt: skip
        return out

    def cancel(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self._tmp.cleanup()

    def _spawn(self, batch: list[str], shared: dict[str, Any]) -> subprocess.Popen[str]:
        command = [sys.executable, "-I", "-c", _CHILD, str(self.root), json.dumps(batch)]
        return subprocess.Popen(
            [*command, json.dumps(shared)], cwd=self.root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def _wait(self, i: int, batch: list[str]) -> dict[str, dict[str, Any]]:
        if i not in self.procs:
            self.procs[i] = self._spawn(batch, {})
        proc = self.procs[i]
        left = max(0.1, TIMEOUT_S - (time.monotonic() - self.started))
        try:
            stdout, stderr = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            text = (
                f"importing it did not finish in {TIMEOUT_S:.0f} s (a long computation at import?)"
            )
            return {src: {"error": text} for src in batch}  # no frames: results() adds them
        lines = stdout.strip().splitlines()
        try:
            answer: dict[str, dict[str, Any]] = json.loads(lines[-1])
            return answer
        except (IndexError, ValueError):
            text = stderr.strip()[-500:] or "no answer"
            return {src: {"error": text} for src in batch}


def _shared_pb2(files: Mapping[str, bytes], folders: list[str]) -> dict[str, list[str]]:
    """{a node folder: the ``*_pb2`` modules that are byte-identical in every node folder}."""
    if len(folders) < 2:
        return {}
    first = folders[0]
    names = []
    for path, data in files.items():
        if posixpath.dirname(path) == first and path.endswith("_pb2.py"):
            base = posixpath.basename(path)
            if all(files.get(posixpath.join(f, base)) == data for f in folders[1:]):
                names.append(base[: -len(".py")])
    return {first: sorted(names)} if names else {}


class Proof:
    """A proof under way: :meth:`findings` waits for it (see :func:`prove_imports`)."""

    def __init__(self, files: Mapping[str, bytes], nodes: Mapping[str, str]) -> None:
        self.nodes = dict(nodes)
        self.results: dict[str, dict[str, Any]] = {}
        self.todo: dict[str, str] = {}
        for src in self.nodes.values():
            key = _digest(files, posixpath.dirname(src)) + src
            if key in _CACHE:
                self.results[src] = _CACHE[key]
            else:
                self.todo[src] = key
        self._job = _Job(files, sorted(self.todo)) if self.todo else None

    def cancel(self) -> None:
        """Stop a proof whose answer is no longer wanted."""
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def findings(self, origin: Callable[[str, int], str | None] | None = None) -> list[Finding]:
        """``src.import_failed`` errors, located at the failing line of the node's own files;
        ``origin(file, line)`` may name where a generated line came from (``cell In[4],
        line 2``)."""
        if self._job is not None:
            fresh, self._job = self._job.results(), None
            for src, key in self.todo.items():
                self.results[src] = _CACHE[key] = fresh.get(src, {"error": "no answer"})
        found = []
        for name, src in self.nodes.items():
            result = self.results[src]
            if result.get("ok"):
                continue
            prefix = _prefix(posixpath.dirname(src))
            own = [f for f in result.get("frames", []) if f[0].startswith(prefix)]
            file, line = (own[-1][0], own[-1][1]) if own else (src, None)
            where = origin(file, line) if origin is not None and line else None
            came = f" (from {where})" if where else ""
            message = (
                f"node {name!r}: {posixpath.basename(file)} fails when kre-py imports it"
                f"{f' at line {line}' if line else ''}{came}: {result['error']}"
            )
            found.append(
                Finding(ERROR, "src.import_failed", message, (), file, line, hint=_hint(result))
            )
        return found


def prove_imports(
    files: Mapping[str, bytes],
    nodes: Mapping[str, str],
    *,
    origin: Callable[[str, int], str | None] | None = None,
) -> list[Finding]:
    """Import each node ``src`` (``nodes``: node name -> src) of a bundle's ``files`` in a fresh
    interpreter as kre-py does, and report those that fail.

    ``origin(src, line)`` may name where a line of a generated file came from (``cell In[4],
    line 2``), for the message. Returns ``src.import_failed`` errors located at the failing
    line of the node's own files.
    """
    return Proof(files, nodes).findings(origin)


def _hint(result: dict[str, Any]) -> str:
    error = result["error"]
    if error.startswith(("ModuleNotFoundError", "ImportError")):
        return (
            "the node's folder must hold everything it imports: install the package in the "
            "node's image, or keep the module beside the notebook so it is copied with the node"
        )
    return (
        "the node's module runs on its own on the runner, without the notebook's state; "
        "move work that needs files or the notebook into init(ctx)"
    )
