"""The ``krtlab`` command: validate, build and inspect KRT V1 projects.

Exit codes: 0 fine, 1 validation errors (or warnings with ``--strict``), 2 bad usage or an
input that is not a project at all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from krtlab.errors import BundleError, KrtlabError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="krtlab",
        description="Author, validate and package Konstellation KRE KRT V1 versions.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("validate", help="check a project folder, krt.yml or .krt")
    v.add_argument("path", help="project folder, krt.yml, .krt, or a Python script")
    v.add_argument("--strict", action="store_true", help="warnings fail too")
    v.add_argument("--json", action="store_true", help="machine-readable findings")
    b = sub.add_parser("build", help="validate and pack a project as a reproducible .krt")
    b.add_argument("path")
    b.add_argument("-o", "--output", required=True, metavar="FILE.krt")
    b.add_argument("-f", "--force", action="store_true", help="replace an existing file")
    b.add_argument("--strict", action="store_true", help="warnings stop the build too")
    b.add_argument(
        "-v",
        "--version",
        dest="version_name",
        metavar="NAME",
        help="build it under this version name (krt.yml's version:), as kli's --version does",
    )
    i = sub.add_parser("inspect", help="a readable summary of a project")
    i.add_argument("path")
    i.add_argument("--json", action="store_true")
    for module in _EXTRA_COMMANDS:
        _COMMANDS.update(importlib.import_module(module).register(sub))
    return p


# Commands defined next to the code they drive; each module has register(subparsers) -> dict.
_EXTRA_COMMANDS = (
    "krtlab.runtime.cli_local",
    "krtlab.runtime.cli_serve",
    "krtlab.runtime.cli_check",
    "krtlab.notebook.cli_graph",
    "krtlab.notebook.cli_notebook",
    "krtlab.deploy.cli_k8s",
    "krtlab.deploy.cli_deploy",
    "krtlab.deploy.cli_standin",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except KrtlabError as exc:
        if getattr(args, "json", False):  # --json: still JSON, so tools can read the failure
            print(json.dumps({"ok": False, "error": str(exc), "findings": []}, indent=2))
        print(f"krtlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _open(path: str) -> tuple[Any, Any]:
    """(project, how to validate it) for a folder, krt.yml, .krt or a Python script; a script's
    version is validated as ``v.validate()`` does (its node contracts, its nodes proven to
    import)."""
    if path.endswith(".py"):
        from krtlab.authoring.script import version_from_script

        try:
            v = version_from_script(path)
        except KrtlabError:
            raise
        except Exception as exc:  # the user's script failed: say where, not a traceback
            where = _where(exc, path)
            raise BundleError(f"{path} failed: {where}{type(exc).__name__}: {exc}") from None
        return v.project(), v._validate
    from krtlab.bundle.load import load_project

    return load_project(path), lambda project: project.validate({})


def _where(exc: BaseException, path: str) -> str:
    import os
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(
        os.path.basename(path))]  # fmt: skip
    return f"line {frames[-1].lineno}: " if frames else ""


def _validate(args: argparse.Namespace) -> int:
    project, validate = _open(args.path)
    report = validate(project)
    failed = not report.ok or (args.strict and report.warnings)
    if args.json:
        print(report.to_json(indent=2))
    else:
        print(str(report))
    return 1 if failed else 0


def _build(args: argparse.Namespace) -> int:
    from krtlab.bundle.write import build_krt

    project, validate = _open(args.path)
    if args.version_name:
        project = _renamed(project, args.version_name)
    before = set(project.files)
    project = project.with_generated_pb2()
    added = sorted(set(project.files) - before)
    report = validate(project)
    if not report.ok or (args.strict and report.warnings):
        print(str(report), file=sys.stderr)
        print(f"krtlab build: not writing {args.output}", file=sys.stderr)
        return 1
    if report.warnings:
        print(str(report), file=sys.stderr)
    path = build_krt(project, args.output, overwrite=args.force)
    print(f"built {path} ({path.stat().st_size:,} bytes, {len(project.files)} files)")
    for name in added:  # kre-py imports them from the handler's folder
        print(f"  added {name}: generated from the protos, for the node beside it")
    return 0


def _renamed(project: Any, name: str) -> Any:
    """The project with krt.yml's ``version:`` set to ``name`` (the rest of the file as it is)."""
    import re

    from krtlab.bundle.project import Project
    from krtlab.spec.rules import check_resource_name, to_resource_name

    reason = check_resource_name(name)
    if reason:
        raise BundleError(f"--version {name!r} {reason}; try {to_resource_name(name)!r}")
    key = project.manifest_name
    text = project.files.get(key, b"").decode("utf-8", errors="replace")
    pattern = r"(?m)^(version:[ \t]*)([^\n#]*?)([ \t]*(?:#.*)?)$"

    def renamed(m: re.Match[str]) -> str:
        return m.group(1) + name + m.group(3)

    new, count = re.subn(pattern, renamed, text, count=1)
    if not count:
        new = f"version: {name}\n" + text
    files = {**project.files, key: new.encode()}
    return Project(files, project.origin, project.executables, list(project.problems))


def _inspect(args: argparse.Namespace) -> int:
    from krtlab.bundle.inspect import format_summary

    data = _open(args.path)[0].summary()
    print(json.dumps(data, indent=2) if args.json else format_summary(data))
    return 0


_COMMANDS = {"validate": _validate, "build": _build, "inspect": _inspect}


if __name__ == "__main__":
    sys.exit(main())
