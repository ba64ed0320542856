"""``krtlab check PATH``: run the nodes on their runner image's Python and compare with local
runs. Exit 0 all the same, 1 differences or failures, 2 could not check."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    c = sub.add_parser(
        "check",
        help="run the Python nodes on their runner's Python (3.7/3.9, protobuf 3.13.0) and "
        "compare with local runs",
    )
    c.add_argument("path", help="project folder, krt.yml, .krt, or a Python script")
    c.add_argument("--python", metavar="PY",
                   help="interpreter to use (a path), or a version to look for (3.7)")  # fmt: skip
    c.add_argument("--request", nargs=2, action="append", default=[], metavar=("RPC", "JSON"),
                   help="a request to replay (repeatable); default: recent local runs")  # fmt: skip
    c.add_argument("--json", action="store_true", help="machine-readable result")
    return {"check": _check}


def _check(args: argparse.Namespace) -> int:
    import krtlab
    from krtlab.errors import SpecError
    from krtlab.runtime.check import check_version

    requests: dict[str, list] | None = None
    if args.request:
        requests = {}
        for rpc, text in args.request:
            try:
                requests.setdefault(rpc, []).append(json.loads(text))
            except ValueError as exc:
                raise SpecError(f"--request {rpc}: not JSON: {exc}") from None
    version = krtlab.load(args.path)

    def progress(line: str) -> None:
        print(f"krtlab check: {line}", file=sys.stderr, flush=True)

    result = check_version(version, requests, python=args.python, progress=progress)
    print(result.to_json(indent=2) if args.json else str(result))
    return result.exit_code
