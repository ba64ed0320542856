"""CLI commands talking to a KAI Server, after kli's ``kre version ...`` commands.

``krtlab deploy PATH``, ``krtlab versions`` and ``krtlab version {start,stop,publish,unpublish}
NAME -m COMMENT`` / ``krtlab version config NAME --set K=V``. The server URL and API token come
from ``--server``/``--token`` or ``$KAI_SERVER_URL``/``$KAI_API_TOKEN``.

Exit codes: 0 done, 1 the server refused (or the version has validation errors or landed in
ERROR), 2 bad usage (no server or token, a malformed ``--set``, a path that is not a project).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

__all__ = ["register"]

_ACTIONS = ("start", "stop", "publish", "unpublish")


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``deploy``, ``versions`` and ``version`` to the ``krtlab`` command."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", metavar="URL", help="admin API URL (default $KAI_SERVER_URL)")
    server.add_argument("--token", metavar="T", help="API token (default $KAI_API_TOKEN)")
    server.add_argument("--runtime", metavar="ID", help="runtime id (default: the only one)")
    d = sub.add_parser("deploy", parents=[server], help="upload a version to KAI Server, start it")
    d.add_argument("path", help="project folder, krt.yml, .krt or a Python script")
    d.add_argument("--set", action="append", default=[], metavar="K=V", help="a config value")
    d.add_argument("--no-start", action="store_true", help="upload only (stays CREATED)")
    d.add_argument("--publish", action="store_true", help="publish once started")
    d.add_argument("-m", "--comment", default="", help="comment recorded by KRE")
    d.add_argument("--timeout", type=float, default=600.0, help="seconds per status (600)")
    ls = sub.add_parser("versions", parents=[server], help="list the versions on a KAI Server")
    ls.add_argument("--json", action="store_true", help="machine-readable")
    v = sub.add_parser("version", help="start, stop, publish, unpublish or configure a version")
    actions = v.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in _ACTIONS:
        a = actions.add_parser(action, parents=[server], help=f"{action} a version")
        a.add_argument("name", help="version name")
        a.add_argument("-m", "--comment", required=True, help="comment recorded by KRE")
        a.add_argument("--no-wait", action="store_true", help="do not wait for the new status")
        a.add_argument("--timeout", type=float, default=600.0, help="seconds (600)")
    c = actions.add_parser("config", parents=[server], help="show or set config values")
    c.add_argument("name", help="version name")
    c.add_argument("--set", action="append", default=[], metavar="K=V", help="a config value")
    return {"deploy": _deploy, "versions": _versions, "version": _version}


class _Usage(Exception):
    """Bad usage: exit code 2."""


def _server(args: argparse.Namespace) -> Any:
    from krtlab.deploy.kai import KaiServer

    url = args.server or os.environ.get("KAI_SERVER_URL")
    token = args.token or os.environ.get("KAI_API_TOKEN")
    if not url:
        raise _Usage("no KAI Server: pass --server URL or set $KAI_SERVER_URL")
    if not token:
        raise _Usage(f"no API token for {url}: pass --token T or set $KAI_API_TOKEN")
    return KaiServer(url, api_token=token, runtime_id=args.runtime)


def _sets(items: list[str]) -> dict[str, str]:
    from krtlab.errors import SpecError
    from krtlab.runtime.config import parse_assignments

    try:
        return parse_assignments(items)
    except SpecError as exc:
        raise _Usage(str(exc)) from None


def _run(command: str, body: Callable[[], int]) -> int:
    """Exit codes: the server's refusals are 1, usage errors 2."""
    from krtlab.errors import DeployError, ValidationError

    try:
        return body()
    except _Usage as exc:
        _out(f"krtlab {command}: {exc}", err=True)
        return 2
    except ValidationError as exc:
        _out(f"krtlab {command}: not uploading: {exc}", err=True)
        return 1
    except DeployError as exc:
        _out(f"krtlab {command}: {exc}", err=True)
        return 1


def _out(line: str, *, err: bool = False) -> None:
    """One line on stdout (stderr for errors), flushed: progress shows as it happens."""
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _say(line: str) -> None:
    _out(line)


def _deploy(args: argparse.Namespace) -> int:
    def body() -> int:
        from krtlab.deploy.deployment import deploy

        kai, values = _server(args), _sets(args.set)
        dep = deploy(args.path, kai, config=values, start=not args.no_start,
                     publish=args.publish, comment=args.comment, timeout=args.timeout,
                     progress=_say)  # fmt: skip
        info = dep.info
        if info.status == "PUBLISHED":
            _out(f"{info.name} is PUBLISHED; the runtime serves it at {kai.entrypoint_address()}")
        elif info.status == "STARTED":
            _out(f"publish with: krtlab version publish {info.name} -m '...'")
        else:
            _out(f"start with: krtlab version start {info.name} -m '...'")
        return 0

    return _run("deploy", body)


def _versions(args: argparse.Namespace) -> int:
    def body() -> int:
        infos = _server(args).versions()
        if args.json:
            _out(json.dumps([asdict(i) for i in infos], indent=2))
            return 0
        rows = [("NAME", "STATUS", "CREATED", "PUBLISHED", "CONFIG")]
        for i in infos:
            config = ("complete" if i.config_completed else "incomplete") if i.config else "-"
            rows.append((i.name, i.status, i.creation_date, i.publication_date or "-", config))
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for r in rows:
            _out("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        for i in infos:
            for e in i.errors:
                _out(f"{i.name}: error: {e}")
        return 0

    return _run("versions", body)


def _version(args: argparse.Namespace) -> int:
    def body() -> int:
        from krtlab.deploy.deployment import Deployment

        kai = _server(args)
        if args.action == "config":
            dep = Deployment(args.name, kai, progress=_say)
            values = _sets(args.set)
            info = dep.update_config(values) if values else dep.refresh()
            for key, value in info.config.items():
                _out(f"{key}={value}" if value else f"{key} (no value)")
            _out(f"config {'complete' if info.config_completed else 'INCOMPLETE'}")
            return 0
        dep = Deployment(args.name, kai, progress=_say)
        action = getattr(dep, args.action)
        info = action(args.comment, wait=not args.no_wait, timeout=args.timeout)
        if args.no_wait:
            _out(str(info))
        return 0

    return _run(f"version {args.action}", body)
