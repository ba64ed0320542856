"""``krtlab export NOTEBOOK.ipynb -o DIR`` and ``krtlab new KIND DIR``: notebook ⇄ project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    from .scaffold import STARTERS

    e = sub.add_parser(
        "export",
        help="run a notebook headlessly and export the version it defines",
        description="Execute NOTEBOOK (in its own folder, with this Python) and export the "
        "krtlab Version it defines. Cells tagged krtlab-export are skipped.",
    )
    e.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="project folder to write")
    e.add_argument("--krt", metavar="FILE", help="also build a reproducible .krt")
    e.add_argument(
        "-f", "--force", action="store_true", help="replace files edited by hand (and the .krt)"
    )
    e.add_argument(
        "--version",
        dest="version_name",
        metavar="NAME",
        help="the Version to export (variable or version name) when the notebook defines several",
    )
    e.add_argument(
        "--timeout", type=float, default=600, metavar="SECONDS", help="per cell (default 600)"
    )
    n = sub.add_parser(
        "new",
        help="create a starter notebook plus its project",
        description="Write a starter notebook (and the files it reads) into DIR, then run it "
        "headlessly so DIR/project/ and the .krt hold what it exports.",
    )
    n.add_argument("kind", choices=sorted(STARTERS), metavar="KIND", help=", ".join(STARTERS))
    n.add_argument("dir", metavar="DIR")
    n.add_argument("-f", "--force", action="store_true", help="replace existing files")
    n.add_argument(
        "--no-run",
        dest="run",
        action="store_false",
        help="only write the notebook and its inputs (the project appears when it runs)",
    )
    n.add_argument(
        "--timeout", type=float, default=600, metavar="SECONDS", help="per cell (default 600)"
    )
    return {"export": _export, "new": _new}


def _export(args: argparse.Namespace) -> int:
    from krtlab.errors import ValidationError

    from .export import export_notebook

    try:
        done = export_notebook(
            args.notebook,
            args.output,
            krt=args.krt,
            overwrite=args.force,
            version=args.version_name,
            timeout=args.timeout,
        )
    except ValidationError as exc:
        sys.stderr.write(f"{exc.report}\nkrtlab export: not writing {args.output}\n")
        return 1
    sys.stdout.write(f"{done}\n")
    return 0


def _new(args: argparse.Namespace) -> int:
    from krtlab.errors import ValidationError

    from .scaffold import new_project

    try:
        created = new_project(
            args.kind, args.dir, overwrite=args.force, run=args.run, timeout=args.timeout
        )
    except ValidationError as exc:  # only if a template is broken: say so plainly
        sys.stderr.write(f"{exc.report}\nkrtlab new: the {args.kind} starter does not validate\n")
        return 1
    sys.stdout.write(f"{created}\n")
    return 0
