"""CLI commands for serving: ``krtlab serve PATH`` and ``krtlab call ADDRESS RPC JSON``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    s = sub.add_parser(
        "serve",
        help="serve a version like KRE: nats-server, a worker per node, a gRPC entrypoint",
    )
    s.add_argument("path", help="project folder, krt.yml or .krt")
    s.add_argument(
        "--port", type=int, default=9000, help="gRPC port (default: 9000, as KRE; 0: a free one)"
    )
    s.add_argument("--web-port", type=int, default=None, help="port serving the protos")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config value")
    s.add_argument("--timeout", type=float, default=None, help="KRT_REQUEST_TIMEOUT, seconds")
    s.add_argument("--quiet", action="store_true", help="do not stream the workers' logs")
    s.add_argument(
        "--workflow",
        action="append",
        default=None,
        metavar="NAME",
        help="serve only this workflow (or the one serving this rpc); repeatable. Only its "
        "nodes start; the other rpcs answer UNIMPLEMENTED",
    )
    c = sub.add_parser("call", help="call an rpc of a KRE entrypoint, JSON in and out")
    c.add_argument(
        "address",
        help="host:port of the entrypoint, or a bare host (KRE's ingress "
        "entrypoint.<domain>: port 443, TLS)",
    )
    c.add_argument("rpc", help="PyGreet, or entrypoint.Entrypoint/PyGreet")
    c.add_argument("request", nargs="?", default="{}", help="the request as JSON")
    c.add_argument("--proto", help="the entrypoint's .proto (default: server reflection)")
    c.add_argument("--timeout", type=float, default=60.0, help="seconds")
    tls = c.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="TLS (default: only for port 443 or a bare host)",
    )
    tls.add_argument("--plaintext", dest="tls", action="store_false", help="never TLS")
    c.add_argument("--cacert", metavar="PEM", help="CA certificates to trust for TLS")
    return {"serve": _serve, "call": _call}


def _serve(args: argparse.Namespace) -> int:
    from krtlab.runtime.config import parse_assignments
    from krtlab.runtime.serve import serve

    # SIGTERM stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    svc = serve(
        args.path,
        port=args.port,
        web_port=args.web_port,
        request_timeout=args.timeout,
        config=parse_assignments(args.set),
        quiet=args.quiet,
        workflows=args.workflow,
    )
    try:
        status = svc.status()
        print(f"serving {status['version']} on {svc.address} (ready in {svc.ready_seconds:.2f} s)")
        print(f"protos at {svc.web_url}")
        for w in status["workers"]:
            if w["state"] == "down":
                print(f"  {w['workflow']}: {w['node']} ({w['node_id']}) DOWN: {w['reason']}")
            else:
                print(f"  {w['workflow']}: {w['node']} ({w['node_id']}, pid {w['pid']})")
        up = []
        for name, wf in status["workflows"].items():
            if wf["state"] == "down":
                print(f"down: {wf['reason']} (rpc {wf['rpc']} answers UNAVAILABLE)")
            elif wf["state"] == "not served":
                print(f"not served: workflow {name!r} (rpc {wf['rpc']} answers UNIMPLEMENTED)")
            else:
                up.append(wf["rpc"])
        print(f"try: krtlab call {svc.address} {next(iter(up), 'Rpc')} '{{}}'")
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
    finally:
        svc.stop()
    return 0


def _call(args: argparse.Namespace) -> int:
    from krtlab.runtime.client import CallError, call

    try:
        result = call(
            args.address,
            args.rpc,
            args.request,
            proto=args.proto,
            timeout=args.timeout,
            tls=args.tls,
            root_certificates=args.cacert,
        )
    except CallError as exc:
        print(f"krtlab call: {exc.code}: {exc.details}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
