"""``v.check()`` / ``krtlab check``: run a version's Python nodes for real on the Python of their
runner image (kre-py 1.23–1.25: 3.7, 1.26–2.1: 3.9) and compare with local runs.

For each Python node, the runner is read from its image (a stock ``konstellation/kre-py:<tag>``,
or the ``FROM`` of a Dockerfile krtlab wrote for it), an interpreter of that Python is found and
an environment holding protobuf 3.13.0 plus the image's pins of what the node imports is built
once (see :mod:`.check_env`). The bundle is written to a temporary folder and every
workflow-node runs in its own process under that environment, loaded as kre-py loads it
(:mod:`.check_harness`): ``main.py`` imported as ``worker``, ``init(ctx)`` run. Requests (given,
else the last ones of local runs, see :mod:`.recent`) then travel through each workflow's nodes,
every edge a serialized ``google.protobuf.Any``, and the answers are compared with the same
requests run locally (``v.run``) from a fresh start.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from krtlab.errors import KrtlabError, SpecError
from krtlab.spec.runners import Runner, kre_py_runner

from . import check_env as env
from .check_procs import NodeProcess
from .check_result import (
    DIFFERENT,
    FAILED,
    NOT_CHECKED,
    OK,
    SAME,
    SKIPPED,
    CheckResult,
    NodeCheck,
    RequestCheck,
)

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

__all__ = ["CheckResult", "check_version"]


def check_version(
    version: Version,
    requests: Mapping[str, Any] | None = None,
    *,
    python: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckResult:
    """Run ``version``'s Python nodes on their runners' Python and compare with local runs.

    Args:
        requests: ``{"Rpc": [request, ...]}`` (a request is a dict or a message; an rpc or a
            workflow name as key); default: the last requests of local runs (``v.run``).
        python: an interpreter to use instead of searching (a path), or a version to search for
            (``"3.9"``).
        progress: called with one line per step (building an environment takes a minute).
    """
    say = progress or (lambda line: None)
    result = CheckResult(version.name)
    wanted, source = _requests(version, requests)  # a bad rpc name fails before any work
    project = version.project().with_generated_pb2()
    files = {**project.files, **version._assets}
    checks, plans = _plan_nodes(version, project, files, python, result, say)
    with tempfile.TemporaryDirectory(prefix="krtlab-check-") as tmp:
        base = Path(tmp) / "krt-files"
        for rel, data in files.items():
            target = (base / rel).absolute()
            if base.absolute() in target.parents:  # never outside the bundle folder
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        procs = _start(version, plans, base, say)
        try:
            for name, check in checks.items():
                first = next((p for (_, n), p in procs.items() if n == name), None)
                if first is not None:
                    _loaded(version, check, first.ready())
            _replay(version, wanted, procs, checks, result, say)
            _notes(result, wanted, source)
        finally:
            for proc in procs.values():
                proc.close()
    return result


# -- nodes: runner, interpreter, environment ----------------------------------------------------


class _NodePlan:
    def __init__(self, check: NodeCheck, src: str, runner: Runner) -> None:
        self.check, self.src, self.runner = check, src, runner
        self.venv: env.Venv | None = None


def _runner_of(version: Version, spec: Any, bases: Mapping[str, str]) -> Runner | None:
    node = version._nodes.get(spec.name)
    for image in (spec.image, bases.get(spec.image), getattr(node, "runner", None)):
        runner = kre_py_runner(image) if image else None
        if runner is not None:
            return runner
    return None


def _plan_nodes(version: Version, project: Any, files: dict[str, bytes], python: str | None,
                result: CheckResult, say: Callable[[str], None]) -> tuple[dict, dict]:  # fmt: skip
    from krtlab.bundle.images import read_dockerfiles

    bases = read_dockerfiles(files)
    checks: dict[str, NodeCheck] = {}
    plans: dict[str, _NodePlan] = {}
    for spec in project.manifest.nodes:
        check = checks[spec.name] = NodeCheck(spec.name, spec.image)
        result.nodes.append(check)
        if spec.runtime != "python" or not spec.src.endswith(".py"):
            check.status, check.reason = SKIPPED, "not a Python node"
            continue
        runner = _runner_of(version, spec, bases)
        if runner is None:
            check.reason = (f"image {spec.image} is not a kre-py image krtlab knows (nor built "
                            "FROM one by krtlab): its Python is unknown")  # fmt: skip
            continue
        check.runner = str(runner)
        plans[spec.name] = _NodePlan(check, spec.src, runner)
    found: dict[str, env.Interpreter | env.NoInterpreter] = {}
    groups: dict[tuple[str, str], list[_NodePlan]] = {}
    for plan in plans.values():
        wanted = plan.runner.python_text
        if wanted not in found:
            found[wanted] = env.find_interpreter(wanted, python)
        interp = found[wanted]
        if isinstance(interp, env.NoInterpreter):
            plan.check.reason = str(interp)
            continue
        check = plan.check
        check.interpreter, check.python = interp.path, interp.version
        check.found_by = interp.found_by
        if interp.minor != plan.runner.python:
            check.warnings.append(f"checked on Python {interp.version} as asked; "
                                  f"{plan.runner.image} runs Python {wanted}")  # fmt: skip
        groups.setdefault((interp.path, plan.runner.pins_file), []).append(plan)
    for group in groups.values():
        interp = found[group[0].runner.python_text]
        assert isinstance(interp, env.Interpreter)
        specs, reqs = set(), set()
        for plan in group:
            folder = os.path.dirname(plan.src)
            specs.update(env.pip_specs(plan.runner, env.imported_names(files, folder)))
            reqs.update(env.requirement_lines(files, folder))
        named = {env.requirement_dist(r) for r in reqs}  # installed by the requirements instead
        specs = {s for s in specs if s.split("==")[0] not in named}
        try:
            venv = env.ensure_venv(interp, sorted(specs), group[0].runner.pins, sorted(reqs), say)
        except (RuntimeError, OSError) as exc:
            for plan in group:
                plan.check.reason = f"could not build its environment: {exc}"
            continue
        for plan in group:
            plan.venv = venv
            plan.check.venv, plan.check.installed = str(venv.path), list(venv.installed)
    return checks, {n: p for n, p in plans.items() if p.venv is not None}


# -- node processes -----------------------------------------------------------------------------


def _start(version: Version, plans: dict[str, _NodePlan], base: Path,
           say: Callable[[str], None]) -> dict[tuple[str, str], NodeProcess]:  # fmt: skip
    from .config import resolve_config

    occurrences = [(wf.name, n) for wf in version._workflows.values() for n in wf.sequential]
    used = {n for _, n in occurrences}
    occurrences += [("", n) for n in plans if n not in used]
    environ = {**os.environ, **resolve_config(version)}
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
        environ.pop(key, None)
    procs = {}
    for workflow, name in occurrences:
        plan = plans.get(name)
        if plan is None or (workflow, name) in procs:
            continue
        assert plan.venv is not None
        config = {"base": str(base), "src": plan.src, "node": name,
                  "logger": f"{version.name}-{name}", "ctx": sorted(plan.runner.ctx),
                  "compression": plan.runner.compression}  # fmt: skip
        node_env = {**environ, "KRT_VERSION": version.name, "KRT_NODE_NAME": name,
                    "KRT_WORKFLOW_NAME": workflow, "KRT_BASE_PATH": str(base),
                    "KRT_HANDLER_PATH": plan.src}  # fmt: skip
        argv = [str(plan.venv.python), "-I", "-B", env.harness_path(), json.dumps(config)]
        procs[(workflow, name)] = NodeProcess(argv, node_env, base)
    if procs:
        say(f"loading {len(plans)} node(s) as kre-py does, on their runners' Python")
    return procs


def _loaded(version: Version, check: NodeCheck, info: dict[str, Any]) -> None:
    check.protobuf = info.get("protobuf")
    check.stage, check.log = info.get("stage"), info.get("log")
    if info.get("error"):
        check.error = info["error"]
        where = info.get("where") or {}
        if where.get("file"):
            check.where = f"{where['file']}:{where['line']}" + _origin(version, where)
            check.code = where.get("code") or None
    check.status = FAILED if check.error else OK


def _origin(version: Version, where: dict[str, Any]) -> str:
    line = where.get("line")
    cell = version._origins.get(where["file"], {}).get(line) if line is not None else None
    return f" (from {cell})" if cell else ""


# -- requests -----------------------------------------------------------------------------------


def _requests(version: Version, given: Mapping[str, Any] | None) -> tuple[dict, str]:
    """({workflow name: [request, ...]}, where they came from)."""
    if given is None:
        from .recent import remembered

        stored, path = remembered(version)
        given, source = stored, f"the last requests of local runs ({path})"
    else:
        source = "given"
    wfs = version._workflows
    by_rpc = {w.entrypoint: w.name for w in wfs.values()}
    out: dict[str, list[Any]] = {}
    for key, items in given.items():
        name = key if key in wfs else by_rpc.get(key)
        if name is None:
            if source != "given":
                continue  # a remembered rpc the version no longer serves
            from krtlab.spec.suggest import did_you_mean

            hint = did_you_mean(str(key), [*by_rpc, *wfs]) or f"rpcs: {', '.join(by_rpc)}"
            raise SpecError(f"check: {version.name} has no rpc or workflow {key!r}; {hint}")
        items = [items] if isinstance(items, (Mapping, Message)) else list(items)
        out.setdefault(name, []).extend(items)
    return out, source


@contextlib.contextmanager
def _fresh_local(version: Version) -> Iterator[None]:
    """Local runs from a fresh start (init run again), like the runner's new processes; the
    notebook's own run state is put back afterwards. These runs are not remembered."""
    from .recent import paused

    saved = version.__dict__.pop("_krt_run_cache", None)
    try:
        with paused():
            yield
    finally:
        version.__dict__.pop("_krt_run_cache", None)
        if saved is not None:
            version.__dict__["_krt_run_cache"] = saved


def _replay(version: Version, wanted: dict[str, list[Any]], procs: dict, checks: dict,
            result: CheckResult, say: Callable[[str], None]) -> None:  # fmt: skip
    from .inprocess import _request_message, run_version
    from .plan import _plan

    total = sum(map(len, wanted.values()))
    if total:
        say(f"replaying {total} request(s) on the runners and locally")
    with _fresh_local(version):
        for workflow, items in wanted.items():
            wf = version._workflows[workflow]
            for item in items:
                shown = _shown(item)
                rc = RequestCheck(wf.entrypoint, wf.name, shown)
                result.requests.append(rc)
                try:
                    plan = _plan(version, wf.name)
                    msg = _request_message(plan, item, {})
                except KrtlabError as exc:
                    rc.reason = str(exc)
                    continue
                blocked = _blocked(wf.sequential, procs, checks, wf.name)
                if blocked:
                    rc.reason = blocked
                    continue
                local = run_version(version, wf.name, msg)
                if local.error is not None and local.replied_by is None:
                    rc.local_error, local_node = str(local.error), local.error.node
                else:
                    rc.local, local_node = _as_dict(local._response), None
                runner_node = _on_runner(version, wf, msg, plan.output_cls, procs, rc)
                rc.status = _compare(rc, local_node, runner_node)


def _shown(item: Any) -> Any:
    if isinstance(item, Message):
        return json_format.MessageToDict(item, preserving_proto_field_name=True)
    return item


def _blocked(nodes: tuple[str, ...], procs: dict, checks: dict, workflow: str) -> str:
    for name in nodes:
        check = checks.get(name)
        if check is None or check.status == SKIPPED:
            return f"node {name!r} is not a Python node: only v.serve() runs it"
        if check.status == NOT_CHECKED:
            return f"node {name!r} was not checked"
        if check.status == FAILED and check.stage != "init":
            return f"node {name!r} does not load on its runner"
        if (workflow, name) not in procs or not procs[(workflow, name)].usable:
            return f"node {name!r} is not running"
    return ""


def _on_runner(version: Version, wf: Any, msg: Message, output_cls: type[Message], procs: dict,
               rc: RequestCheck) -> str | None:  # fmt: skip
    """Send the request through the workflow's node processes; returns the failing node."""
    wire = any_pb2.Any()
    wire.Pack(msg)
    data, replied, early = wire.SerializeToString(), False, None
    for name in wf.sequential:
        answer = procs[(wf.name, name)].call(data, replied)
        replied = bool(answer.get("replied", replied))
        if early is None and answer.get("reply"):
            early = base64.b64decode(answer["reply"])
        if "error" in answer:
            if early is not None:
                break  # on KRE that error reaches no one: the request was answered
            text = answer["error"]
            rc.runner_error = text if text.startswith("error in") else f"error in '{name}': {text}"
            where = answer.get("where") or {}
            if where.get("file"):
                rc.where = f"{where['file']}:{where['line']}" + _origin(version, where)
                rc.code = where.get("code") or None
            rc.node = name
            return name
        data = base64.b64decode(answer["data"])
        if answer.get("exited"):  # ctx.early_exit(): this node's result is the answer
            break
    response = output_cls()
    if not any_pb2.Any.FromString(early if early is not None else data).Unpack(response):
        last = wf.sequential[-1]
        found = any_pb2.Any.FromString(data).type_url.rpartition("/")[2]
        rc.runner_error = (f"error in '{last}': it returned {found}, but rpc {wf.entrypoint} "
                           f"returns {output_cls.DESCRIPTOR.full_name}")  # fmt: skip
        rc.node = last
        return last
    rc.runner = _as_dict(response)
    return None


def _compare(rc: RequestCheck, local_node: str | None, runner_node: str | None) -> str:
    if rc.runner_error is None and rc.local_error is None:
        return SAME if rc.runner == rc.local else DIFFERENT
    if rc.runner_error is not None and rc.local_error is not None:
        return SAME if runner_node == local_node else DIFFERENT
    return FAILED if rc.runner_error is not None else DIFFERENT


def _as_dict(msg: Any) -> Any:
    from .result import _as_dict as as_dict

    return as_dict(msg)


def _notes(result: CheckResult, wanted: dict[str, list[Any]], source: str) -> None:
    if not any(wanted.values()):
        loaded = any(n.status in (OK, FAILED) for n in result.nodes)
        did = "the nodes were only imported and their init run" if loaded else "nothing ran"
        result.notes.append(
            f"no request was replayed (none given, no local run recorded): {did}; give "
            "requests (v.check(requests={'Rpc': [{...}]}), --request RPC JSON) or run "
            "v.run(...) first"
        )
    elif source != "given":
        result.notes.append(f"replayed {source}")
    statuses = {n.status for n in result.nodes}
    if NOT_CHECKED in statuses and result.status == NOT_CHECKED:
        result.notes.append("not checked: this is not a pass (see the nodes above)")


def stderr_progress() -> Callable[[str], None]:
    """Progress lines on stderr (``v.check()`` shows them in the cell in Jupyter instead)."""

    def to_stderr(line: str) -> None:
        sys.stderr.write(f"krtlab check: {line}\n")
        sys.stderr.flush()

    return to_stderr
