"""Child processes of a served version, started so that none outlives krtlab.

Every child gets its own process group (a terminal's Ctrl-C reaches krtlab only, which then stops
them in order) and, on Linux, ``PR_SET_PDEATHSIG=SIGKILL``: if krtlab dies without cleaning up
(SIGKILL, a crashed kernel), the kernel kills the children too. The death signal fires when the
*thread* that forked the child ends, so children are only ever spawned from the long-lived
thread that runs the service.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from krtlab.errors import ServeError  # defined there; re-exported here

__all__ = [
    "ServeError",
    "describe_exit",
    "die_with_parent",
    "follow_logs",
    "free_port",
    "spawn",
    "stop_processes",
    "tail",
    "watch_exit",
]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None


# Loaded before any fork: the child must not load libraries between fork and exec.
_PRCTL = _load_prctl()
_SETPRIV = shutil.which("setpriv") if _PRCTL is not None else None


def _child_setup(parent: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child, between fork and exec
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: follow it
            os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    log: IO[bytes] | int | None,
    own: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, tied to this process's life (Linux).

    ``own=True`` is for krtlab's own Python children, which call :func:`die_with_parent`
    themselves: they start without running code between fork and exec (vfork, fast, and no
    gRPC fork handlers). Other programs get the death signal from ``setpriv --pdeathsig`` when
    it is installed, else from a pre-exec hook. Output (stdout and stderr) goes to ``log``.
    """
    env = dict(env, KRTLAB_PARENT_PID=str(os.getpid()))
    preexec = None
    if not own and _PRCTL is not None:
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        else:  # pragma: no cover - util-linux without setpriv
            preexec = _child_setup(os.getpid())
    return subprocess.Popen(
        list(argv),
        env=env,
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,  # prctl must run in the child itself
        close_fds=True,
    )


def die_with_parent() -> None:
    """In a child started by :func:`spawn` with ``own=True``: get SIGKILL when krtlab dies."""
    parent = os.environ.get("KRTLAB_PARENT_PID")
    if not parent or _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(parent):  # it died while we were starting
        os._exit(1)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], grace: float = 2.0) -> None:
    """SIGTERM every process group at once, wait up to ``grace`` seconds, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        # SIGKILL the group even when the leader is gone: a handler may have started children.
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def watch_exit(
    loop: object, proc: subprocess.Popen[bytes], on_exit: Callable[[int], None]
) -> Callable[[], None]:
    """Call ``on_exit(returncode)`` on ``loop``'s thread when ``proc`` exits.

    Uses a pidfd on the asyncio loop where the kernel has them (no thread per child), else a
    waiting thread. Returns a function that stops watching.
    """
    import asyncio
    import threading

    assert isinstance(loop, asyncio.AbstractEventLoop)
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(proc.pid)
        except OSError:
            fd = -1
        if fd >= 0:

            def ready() -> None:
                loop.remove_reader(fd)
                os.close(fd)
                on_exit(proc.wait())

            loop.add_reader(fd, ready)

            def cancel() -> None:
                if loop.remove_reader(fd):
                    os.close(fd)

            return cancel
    cancelled = threading.Event()

    def wait() -> None:
        code = proc.wait()
        if not cancelled.is_set() and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: None if cancelled.is_set() else on_exit(code))

    threading.Thread(target=wait, name=f"krtlab-wait-{proc.pid}", daemon=True).start()
    return cancelled.set


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def describe_exit(code: int) -> str:
    """``exit code 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def follow_logs(files: dict[Path, str], stopped: Callable[[], bool]) -> None:
    """Copy lines appended to ``files`` to stderr, prefixed ``[label]``, until ``stopped()``."""
    offsets: dict[Path, int] = {}
    while not stopped():
        for path, label in files.items():
            try:
                with open(path, "rb") as f:
                    f.seek(offsets.get(path, 0))
                    chunk = f.read()
                    offsets[path] = f.tell()
            except OSError:
                continue
            for line in chunk.decode("utf-8", errors="replace").splitlines():
                sys.stderr.write(f"[{label}] {line}\n")
        time.sleep(0.2)
