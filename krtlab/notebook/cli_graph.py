"""``krtlab graph PATH -o FILE``: draw a project for docs (svg, png, pdf or dot by suffix)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    g = sub.add_parser(
        "graph",
        help="draw a project as a graph (.svg works without Graphviz; .png/.pdf need it)",
    )
    g.add_argument("path", help="a project folder, krt.yml or .krt")
    g.add_argument(
        "-o", "--output", metavar="FILE", help="write FILE (.svg, .png, .pdf, .dot); else print"
    )
    g.add_argument("-w", "--workflow", help="only this workflow (name or rpc)")
    g.add_argument(
        "--layout",
        choices=("auto", "dot", "python"),
        default="auto",
        help="svg only: Graphviz (dot), krtlab's simple layout (python), or dot when installed",
    )
    return {"graph": _graph}


def _graph(args: argparse.Namespace) -> int:
    import krtlab

    graph = krtlab.load(args.path).graph(workflow=args.workflow)
    if not args.output:
        sys.stdout.write(repr(graph) + "\n")
        return 0
    path = graph.save(args.output, layout=args.layout)
    how = " (simple layout: Graphviz not found)" if graph.note else ""
    sys.stdout.write(f"wrote {path}{how}\n")
    return 0
