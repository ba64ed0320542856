"""``krtlab k8s PATH``: the Kubernetes objects KRE would create for a project, as YAML.

Nothing is contacted: the objects come from :func:`krtlab.deploy.k8s.version_objects`, so the
output can be read, diffed or handed to ``kubectl apply --dry-run=client -f -``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the ``k8s`` command to ``sub`` and return its handler by name."""
    k = sub.add_parser(
        "k8s",
        help="print the Kubernetes objects KRE creates for a started (or published) version",
        description="Print the ConfigMaps, Deployments and entrypoint Service KRE's "
        "k8s-manager creates when the version is started, as multi-document YAML.",
    )
    k.add_argument("path", help="project folder, krt.yml, .krt, or a Python script")
    k.add_argument(
        "--form",
        choices=("spec", "kre3"),
        default="spec",
        help="entrypoint Service form: the spec's (name <version>, default) or KRE 3.0's "
        "(name <version>-entrypoint)",
    )
    k.add_argument(
        "--published", action="store_true", help="the Service as published (active-entrypoint)"
    )
    k.add_argument("--namespace", default="kre", metavar="NS", help="namespace (default: kre)")
    k.add_argument(
        "--runtime-id", metavar="ID", help="kre>=5 runtime: prefix names and add runtime-id labels"
    )
    k.add_argument("-o", "--output", metavar="FILE", help="write the YAML to FILE; else print")
    k.add_argument("-f", "--force", action="store_true", help="replace an existing FILE")
    return {"k8s": _k8s}


def _k8s(args: argparse.Namespace) -> int:
    from krtlab.cli import _open
    from krtlab.errors import OverwriteError

    from .k8s import to_yaml, version_objects

    target = Path(args.output) if args.output else None
    if target is not None and target.exists() and not args.force:
        raise OverwriteError(f"{target} exists; pass --force to replace it", [str(target)])
    project, _ = _open(args.path)
    objects = version_objects(
        project.manifest,
        namespace=args.namespace,
        form=args.form,
        published=args.published,
        runtime_id=args.runtime_id or None,
    )
    text = to_yaml(objects)
    if target is None:
        sys.stdout.write(text)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {target} ({len(objects)} objects)\n")
    return 0
