"""CLI commands talking to a KAI Server, after kli's ``kre version ...`` commands.

``krtlab deploy PATH``, ``krtlab versions``, ``krtlab version {start,stop,publish,unpublish}
NAME -m COMMENT`` / ``krtlab version config NAME --set K=V`` and ``krtlab diff PATH``. The
server URL and API token come from ``--server``/``--token`` or
``$KAI_SERVER_URL``/``$KAI_API_TOKEN``. ``deploy`` and ``diff`` also take ``--kubeconfig FILE``
(``--context``, ``--namespace``): ``deploy`` then waits for the version's pods and fails naming
a crashing node, ``diff`` also compares what only the version's Deployments tell.

Exit codes: 0 done, 1 the server refused (or the version has validation errors or landed in
ERROR), 2 bad usage (no server or token, a malformed ``--set``, a path that is not a project).
``diff``: 0 identical, 1 different, 2 cannot compare (no such version on the server, ...).
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
    kube = argparse.ArgumentParser(add_help=False)
    where = 'the cluster KRE runs in (e.g. "$KUBECONFIG"): read the pods'
    kube.add_argument("--kubeconfig", metavar="FILE", help=where)
    kube.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    kube.add_argument("--namespace", metavar="NS", default="kre", help="KRE's namespace (kre)")
    d = sub.add_parser("deploy", parents=[server, kube],
                       help="upload a version to KAI Server, start it")  # fmt: skip
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
    what = "what differs between a local version and the deployed one"
    df = sub.add_parser("diff", parents=[server, kube], help=what)
    df.add_argument("path", help="project folder, krt.yml, .krt or a Python script")
    df.add_argument("--version", metavar="NAME", help="the deployed version (default: its name)")
    df.add_argument("--json", action="store_true", help="machine-readable")
    return {"deploy": _deploy, "versions": _versions, "version": _version, "diff": _diff}


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


def _cluster(args: argparse.Namespace) -> Any:
    """The :class:`~krtlab.deploy.kube.Cluster` of ``--kubeconfig``, or None without it (a
    kubeconfig that cannot be used is bad usage: nothing has been uploaded yet)."""
    if not args.kubeconfig:
        if args.context:
            raise _Usage("--context needs --kubeconfig FILE")
        return None
    from krtlab.deploy.kube import Cluster
    from krtlab.errors import DeployError

    try:
        return Cluster(args.kubeconfig, context=args.context, namespace=args.namespace)
    except DeployError as exc:
        raise _Usage(str(exc)) from None


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

        kai, values, cluster = _server(args), _sets(args.set), _cluster(args)
        dep = deploy(args.path, kai, config=values, start=not args.no_start,
                     publish=args.publish, comment=args.comment, timeout=args.timeout,
                     cluster=cluster, progress=_say)  # fmt: skip
        info = dep.info
        if info.status in ("STARTED", "PUBLISHED"):
            if cluster is not None:
                _print_card(dep)
            else:
                _out("node status: not reported by KRE's admin API (only its watchNodeStatus "
                     "subscription has it); pass --kubeconfig FILE to wait for the pods and "
                     "read their health")  # fmt: skip
        if info.status == "PUBLISHED":
            _out(f"{info.name} is PUBLISHED; the runtime serves it at {kai.entrypoint_address()}")
        elif info.status == "STARTED":
            _out(f"publish with: krtlab version publish {info.name} -m '...'")
        else:
            _out(f"start with: krtlab version start {info.name} -m '...'")
        return 0

    return _run("deploy", body)


def _print_card(dep: Any) -> None:
    """The status card (node health read from the pods) as plain lines."""
    from krtlab.deploy.card import card

    status, rows = card(dep)
    width = max(len(k) for k, _ in rows)
    _out(f"{dep.name} {status}")
    for key, value in rows:
        _out(f"  {key:<{width}}  {value}")


def _diff(args: argparse.Namespace) -> int:
    """0 identical, 1 different, 2 cannot compare (any error: usage, loading, the server)."""
    from krtlab.deploy.diff import diff_version
    from krtlab.errors import KrtlabError

    try:
        kai, cluster = _server(args), _cluster(args)
        version = _load(args.path)
        result = diff_version(version, kai, args.version, cluster=cluster)
    except (_Usage, KrtlabError) as exc:
        _out(f"krtlab diff: {exc}", err=True)
        return 2
    _out(json.dumps(result.to_dict(), indent=2) if args.json else result.text())
    return result.exit_code


def _load(path: str) -> Any:
    """The local version of a folder, krt.yml, .krt or script (a failing script is reported,
    not a traceback)."""
    import krtlab
    from krtlab.errors import KrtlabError

    try:
        return krtlab.load(path)
    except KrtlabError:
        raise
    except Exception as exc:  # the user's script failed
        raise _Usage(f"{path} failed: {type(exc).__name__}: {exc}") from None


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
