"""The processes of ``krtlab check``: one per workflow-node, running :mod:`.check_harness` under
the runner's Python; JSON lines in (a request's Any), JSON lines out (the node's answer)."""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["CALL_TIMEOUT_S", "START_TIMEOUT_S", "NodeProcess"]

#: seconds a node may take to import and run init, and to answer one request
START_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 120.0


class NodeProcess:
    """One workflow-node under the harness: JSON lines in, JSON lines out."""

    def __init__(self, argv: list[str], environ: dict[str, str], cwd: Path) -> None:
        self.stderr = tempfile.TemporaryFile()
        pipe = subprocess.PIPE
        self.popen = subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=self.stderr,
                                      env=environ, cwd=cwd, text=True)  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._ready: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.popen.kill()
            return {"error": f"no answer within {timeout:.0f} s", "dead": True}
        if line is None:
            code = self.popen.wait()
            self.stderr.seek(0)
            tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-8:]
            return {"error": f"the node's process ended (exit code {code})", "dead": True,
                    "log": "\n".join(tail)}  # fmt: skip
        return json.loads(line)

    def ready(self) -> dict[str, Any]:
        if self._ready is None:
            self._ready = self._next(START_TIMEOUT_S)
            self._ready.setdefault("stage", "start" if self._ready.get("dead") else None)
        return self._ready

    @property
    def usable(self) -> bool:
        info = self.ready()
        return info.get("stage") in (None, "init") and self.popen.poll() is None

    def call(self, data: bytes, replied: bool) -> dict[str, Any]:
        assert self.popen.stdin is not None
        line = json.dumps({"data": base64.b64encode(data).decode(), "replied": replied})
        try:
            self.popen.stdin.write(line + "\n")
            self.popen.stdin.flush()
        except OSError:
            pass  # the process ended: _next says how
        return self._next(CALL_TIMEOUT_S)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(timeout=5)  # the process ended: its stdout is at EOF
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()
        self.stderr.close()
