"""CLI commands for local runs (owned by the in-process runtime): ``krtlab metrics PATH``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    m = sub.add_parser(
        "metrics",
        help="what a version's nodes recorded in local runs (measurements, predictions, documents)",
    )
    m.add_argument("path", help="project folder, krt.yml or .krt (gives the version name)")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    return {"metrics": _metrics}


def _metrics(args: argparse.Namespace) -> int:
    import krtlab
    from krtlab.errors import BundleError
    from krtlab.runtime.metrics import Metrics
    from krtlab.runtime.store import shared_store, store_path

    name = krtlab.load(args.path).name
    if not name:
        raise BundleError(f"{args.path}: krt.yml names no version")
    path = store_path(name)
    metrics = Metrics(name, shared_store(path))
    if args.json:
        out = json.dumps(metrics.to_dict(), indent=2, default=str)
    elif not path.exists():
        out = f"{name}: nothing recorded yet (no local store at {path})"
    else:
        out = metrics.format(limit=None)
    sys.stdout.write(out + "\n")
    return 0
