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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from krtlab.spec.findings import ERROR, Finding

__all__ = ["TIMEOUT_S", "prove_imports"]

#: the whole proof (all nodes) must finish within this many seconds
TIMEOUT_S = 120.0
_CACHE: dict[str, dict] = {}

# Runs in the child: import each node as kre-py would, one fork per node, and print one JSON
# object {src: result}. Node output goes to /dev/null: print() at import is allowed.
_CHILD = r"""
import importlib.util, json, os, sys, traceback
import google.protobuf.any_pb2  # shared by every fork: loaded once

base, srcs = sys.argv[1], json.loads(sys.argv[2])

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

results = {}
for src in srcs:
    read, write = os.pipe()
    pid = os.fork() if hasattr(os, "fork") else 0
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
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    try:
        results[src] = json.loads(b"".join(chunks))
    except ValueError:
        results[src] = {"error": f"the import ended the interpreter (status {status})",
                        "frames": []}
print(json.dumps(results))
"""


def _digest(files: Mapping[str, bytes], folder: str) -> str:
    h = hashlib.sha256(sys.executable.encode())
    prefix = folder + "/" if folder else ""
    for path in sorted(p for p in files if p.startswith(prefix)):
        h.update(path.encode() + b"\0" + files[path] + b"\0")
    return h.hexdigest()


def _run(files: Mapping[str, bytes], srcs: Sequence[str]) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="krtlab-prove-") as tmp:
        root = Path(tmp)
        folders = {posixpath.dirname(s) for s in srcs}
        for path, data in files.items():
            if any(path.startswith(f + "/") or not f for f in folders):
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        if hasattr(os, "fork"):
            batches = [list(srcs)]
        else:  # no fork (Windows): one interpreter per node
            batches = [[s] for s in srcs]
        results: dict[str, dict] = {}
        for batch in batches:
            try:
                proc = subprocess.run(
                    [sys.executable, "-I", "-c", _CHILD, str(root), json.dumps(batch)],
                    cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                for src in batch:
                    results[src] = {"error": f"importing it did not finish in {TIMEOUT_S:.0f} s "
                                    "(a long computation at import?)", "frames": []}  # fmt: skip
                continue
            lines = proc.stdout.strip().splitlines()
            try:
                results.update(json.loads(lines[-1]))
            except (IndexError, ValueError):
                for src in batch:
                    results[src] = {"error": proc.stderr.strip()[-500:] or "no answer",
                                    "frames": []}  # fmt: skip
        root_text = str(root) + os.sep
        for result in results.values():  # paths inside the bundle, not the temp folder
            result["frames"] = [
                [f[len(root_text):].replace(os.sep, "/"), n] for f, n in result.get("frames", [])
                if isinstance(f, str) and f.startswith(root_text)
            ]  # fmt: skip
        return results


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
    todo: dict[str, str] = {}
    results: dict[str, dict] = {}
    for src in nodes.values():
        key = _digest(files, posixpath.dirname(src)) + src
        if key in _CACHE:
            results[src] = _CACHE[key]
        else:
            todo[src] = key
    if todo:
        fresh = _run(files, sorted(todo))
        for src, key in todo.items():
            results[src] = _CACHE[key] = fresh.get(src, {"error": "no answer", "frames": []})
    findings = []
    for name, src in nodes.items():
        result = results[src]
        if result.get("ok"):
            continue
        folder = posixpath.dirname(src)
        own = [f for f in result.get("frames", []) if f[0].startswith(folder + "/")]
        file, line = (own[-1][0], own[-1][1]) if own else (src, None)
        where = origin(file, line) if origin is not None and line else None
        came = f" (from {where})" if where else ""
        message = (
            f"node {name!r}: {posixpath.basename(file)} fails when kre-py imports it"
            f"{f' at line {line}' if line else ''}{came}: {result['error']}"
        )
        findings.append(
            Finding(ERROR, "src.import_failed", message, (), file, line, hint=_hint(result))
        )
    return findings


def _hint(result: dict) -> str:
    error = result.get("error", "")
    if error.startswith(("ModuleNotFoundError", "ImportError")):
        return (
            "the node's folder must hold everything it imports: install the package in the "
            "node's image, or keep the module beside the notebook so it is copied with the node"
        )
    return (
        "the node's module runs on its own on the runner, without the notebook's state; "
        "move work that needs files or the notebook into init(ctx)"
    )
