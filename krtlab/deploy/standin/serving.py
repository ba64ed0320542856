"""Serving a version for the stand-in: its own loopback IP, and a bounded wait for it.

One loopback IP per started version (127.0.0.2, .3, ...) is what lets the entrypoint Service's
clusterIP reach it on port 9000, like a cluster IP would.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GRPC_PORT", "WEB_PORT", "Outcome", "free_loopback_ip", "serve_within"]

GRPC_PORT, WEB_PORT = 9000, 8080


def _alias_hint(ip: str) -> str:
    return (
        f"cannot bind loopback address {ip}: this machine has no such address (macOS has only "
        "127.0.0.1 unless aliased). Each started version needs its own loopback IP "
        f"(127.0.0.2, 127.0.0.3, ...): add them with `sudo ifconfig lo0 alias {ip} up` on macOS "
        f"(`sudo ip addr add {ip}/8 dev lo` on Linux), one per started version"
    )


def free_loopback_ip(used: Iterable[str]) -> str:
    """The first of 127.0.0.2–254 not in ``used`` whose port 9000 can be bound.

    Raises:
        RuntimeError: 127.0.0.2 (or the next needed address) does not exist on this machine
            (the message says how to add it), or every address is taken.
    """
    taken = set(used)
    for n in range(2, 255):
        ip = f"127.0.0.{n}"
        if ip in taken:
            continue
        with socket.socket() as s:  # skip an address whose :9000 is taken by someone else
            # (a TIME_WAIT left by a stopped version is not "taken": the gRPC server reuses it)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, GRPC_PORT))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise RuntimeError(_alias_hint(ip)) from None
                continue
        return ip
    raise RuntimeError("no free loopback address for the version")


@dataclass
class Outcome:
    """How a serve ended: the service (None when it failed or is no longer wanted) or why not."""

    service: Any = None
    error: str = ""
    timed_out: bool = False


def serve_within(
    krt_path: Path,
    ip: str,
    config: Mapping[str, str],
    timeout: float,
    *,
    lock: threading.RLock,
    wanted: Callable[[], bool],
    threads: list[threading.Thread],
) -> Outcome:
    """Serve ``krt_path`` on ``ip``:9000, waiting at most ``timeout`` seconds.

    ``wanted()`` is asked under ``lock`` when the serve is up: if the work it belongs to is
    stale (or the wait timed out) the service is stopped at once, in the serving thread, so
    nothing keeps running unaccounted for and joining ``threads`` means it is stopped.
    """
    if not ip or ip == "127.0.0.1":
        raise ValueError(f"a version is served on its own loopback IP, not {ip!r}")
    from krtlab.runtime.serve import serve

    box: dict[str, Any] = {}
    gave_up = threading.Event()

    def run() -> None:
        try:
            svc = serve(
                krt_path, host=ip, port=GRPC_PORT, web_port=WEB_PORT, config=dict(config),
                quiet=True,
            )  # fmt: skip
        except Exception as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"
            return
        with lock:
            keep = not gave_up.is_set() and wanted()
            if keep:
                box["svc"] = svc
            else:
                box["error"] = "stopped: the version moved on while it was starting"
        if not keep:
            svc.stop()

    t = threading.Thread(target=run, daemon=True, name=f"kai-serve-{ip}")
    threads.append(t)
    t.start()
    t.join(timeout)
    with lock:
        if "svc" not in box and "error" not in box:
            gave_up.set()
            return Outcome(None, f"not ready after {timeout:g}s", timed_out=True)
        return Outcome(box.get("svc"), box.get("error", ""))
