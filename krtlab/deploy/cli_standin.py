"""``krtlab standin``: run the KAI Server stand-in (:class:`~krtlab.deploy.standin.LocalKai`)
until Ctrl-C, so ``krtlab deploy``/``versions``/``version`` and ``kubectl``-less notebooks have a
server to talk to on a laptop or Binder.

It prints the ``export`` lines that point the other commands at it (``KAI_SERVER_URL``,
``KAI_API_TOKEN``, ``KUBECONFIG``); stopping it stops every version it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``standin`` to the ``krtlab`` command."""
    p = sub.add_parser(
        "standin", help="run a local KAI Server stand-in (admin API + Kubernetes API) until Ctrl-C"
    )
    p.add_argument(
        "--kre",
        choices=("7", "3"),
        default="7",
        help="the KRE version whose admin API it serves: 7 (runtimes, runtimeId required; "
        "default) or 3 (no runtimes)",
    )
    p.add_argument(
        "--form",
        choices=("spec", "kre3"),
        default=None,
        help="entrypoint Service naming: the KRT V1 spec's or KRE 3.0's (default: kre3 with "
        "--kre 3, else spec)",
    )
    p.add_argument("--runtime-id", default="local", metavar="ID", help="the runtime's id")
    p.add_argument("--data-dir", metavar="DIR", help="keep uploaded .krt files here")
    return {"standin": _standin}


def _standin(args: argparse.Namespace) -> int:
    from krtlab.deploy.standin import LocalKai

    done = threading.Event()
    # SIGTERM ends it like Ctrl-C, and SIGINT is handled even where a shell started it with
    # SIGINT ignored (`cmd &`): the versions' processes are stopped either way
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    kai = LocalKai(kre=args.kre, runtime_id=args.runtime_id, service_form=args.form,
                   data_dir=args.data_dir)  # fmt: skip
    with kai:
        out = sys.stdout
        out.write(
            f"KAI Server stand-in (KRE {kai.kre} admin API) at {kai.url}\n"
            f"runtime {kai.runtime_id!r}: published entrypoint at {kai.entrypoint_address}\n"
            f"export KAI_SERVER_URL={kai.url}\n"
            f"export KAI_API_TOKEN={kai.api_token}\n"
            f"export KUBECONFIG={kai.kubeconfig}\n"
            "Ctrl-C stops it and every version it started.\n"
        )
        out.flush()
        while not done.wait(0.5):
            pass
    sys.stdout.write("stopped\n")
    return 0
