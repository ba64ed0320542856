"""Plans for in-process runs: which nodes run for a target, with what message classes, and the
per-node runtimes (a KRE worker's state: its ctx, its init done once, its loaded handler).

Plans are cached on the version and rebuilt when its protos, nodes, workflows or assets change.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from krtlab.bundle.images import runner_of
from krtlab.errors import SpecError
from krtlab.spec.suggest import did_you_mean

from .config import (
    import_handler,
    pb2_modules,
    write_bundle,
)
from .context import Context, drive
from .errors import RunError
from .store import data_dir, shared_store

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from krtlab.authoring.node import Node
    from krtlab.authoring.version import Version, Workflow
    from krtlab.protos.registry import Registry

_log = logging.getLogger("krtlab.runtime")


# -- plans -------------------------------------------------------------------------------------


class _Step:
    __slots__ = ("expect", "input_cls", "input_name", "loaded", "name", "rt")

    def __init__(self, name: str, rt: _Runtime, loaded: bool) -> None:
        self.name, self.rt, self.loaded = name, rt, loaded
        self.input_cls: type | None = None
        self.input_name = "?"
        self.expect = ""  # a loaded node's input type_url, when its source tells


class _Plan:
    __slots__ = (
        "config_keys",
        "input_cls",
        "input_name",
        "key",
        "output_cls",
        "output_name",
        "registry",
        "rpc",
        "steps",
        "warnings",
        "workflow",
    )
    key: tuple[Any, ...]
    registry: Registry
    rpc: str
    workflow: str
    input_name: str
    output_name: str
    input_cls: type[Message]
    output_cls: type[Message]
    config_keys: bool
    steps: list[_Step]
    warnings: list[str]


class _Cache:
    """Per-version run state: plans by target, node runtimes by (workflow, node)."""

    def __init__(self, env: tuple[str | None, str], version: str) -> None:
        self.env, self.version = env, version
        self.root = data_dir(version)  # store.sqlite and bundle/ live there
        self.plans: dict[str, _Plan] = {}
        self.runtimes: dict[tuple[str, str], _Runtime] = {}
        self.lock = threading.RLock()
        self.bundle_key: Any = None


def _plan(version: Version, target: str) -> _Plan:
    env = (os.environ.get("KRTLAB_DATA_DIR"), os.getcwd())
    cache = version.__dict__.get("_krt_run_cache")
    if cache is None or cache.env != env:
        # a new data dir means a new deployment: fresh contexts, inits and bundle
        cache = version.__dict__["_krt_run_cache"] = _Cache(env, version.name)
    plan = cache.plans.get(target)
    if plan is not None and plan.key == _key(version, plan.workflow):
        return plan
    with cache.lock:
        plan = _build(version, target, cache)
        cache.plans[target] = plan
        return plan


def _key(version: Version, workflow: str) -> tuple[Any, ...]:
    wf = version._workflows.get(workflow)
    nodes = tuple(map(version._nodes.get, wf.sequential)) if wf else ()
    inits = tuple(n.init_func if n is not None else None for n in nodes)
    assets = tuple(map(id, version._assets.values()))
    return (version._protos.registry, version._proto_file, wf, nodes, inits, assets)


def _workflow_for(version: Version, target: str, rpcs: Mapping[str, Any]) -> Workflow:
    wfs = version._workflows
    if target in wfs:
        return wfs[target]
    serving = [w for w in wfs.values() if w.entrypoint == target]
    if len(serving) == 1:
        return serving[0]
    if serving:
        names = ", ".join(repr(w.name) for w in serving)
        raise SpecError(f"rpc {target} is served by several workflows ({names}): name one")
    if target in rpcs:
        raise SpecError(
            f"rpc {target} has no workflow; add one with v.workflow(..., entrypoint={target!r})"
        )
    hint = did_you_mean(str(target), [*rpcs, *wfs]) or (
        f"rpcs: {', '.join(rpcs) or 'none'}; workflows: {', '.join(wfs) or 'none'}"
    )
    raise SpecError(f"{version.name} has no rpc or workflow {target!r}; {hint}")


def _build(version: Version, target: str, cache: _Cache) -> _Plan:
    registry, fileset = version._protos.registry, version._protos.fileset
    if registry is None or fileset is None or version._proto_file not in fileset.files:
        raise SpecError(f"{version.name} has no compiled {version._proto_file}: nothing to run")
    rpcs = fileset.entrypoint_rpcs(version._proto_file) or {}
    wf = _workflow_for(version, target, rpcs)
    rpc = rpcs.get(wf.entrypoint)
    if rpc is None:
        raise SpecError(f"workflow {wf.name!r} serves rpc {wf.entrypoint!r}, which "
                        f"{version._proto_file} does not define")  # fmt: skip
    if not wf.sequential:
        raise SpecError(f"workflow {wf.name!r} has no nodes: nothing to run")
    plan = _Plan()
    plan.key = _key(version, wf.name)
    plan.registry, plan.rpc, plan.workflow = registry, rpc.name, wf.name
    plan.input_name, plan.output_name = rpc.input_type, rpc.output_type
    plan.input_cls = registry.message_class(rpc.input_type)
    plan.output_cls = registry.message_class(rpc.output_type)
    plan.config_keys = bool(version._variables or version._files)
    plan.steps = []
    contracts = None
    for name in wf.sequential:
        node = version._nodes.get(name)
        if node is None:
            hint = did_you_mean(name, version._nodes) or ""
            raise SpecError(f"workflow {wf.name!r} lists node {name!r}, which {version.name} "
                            f"does not define; {hint}".rstrip("; "))  # fmt: skip
        if node.kind != "python":
            raise RunError(
                f"node {name!r} is a Go node (a compiled kre-go binary): it cannot run "
                "in-process; v.serve() runs it like KRE does"
            )
        rt = _runtime(cache, wf.name, node, registry, runner_of(version, node))
        step = _Step(name, rt, node.func is None)
        if node.func is not None and node.input_type is not None:
            full = node.input_type.DESCRIPTOR.full_name
            # the current class of that name: a re-compiled proto may have changed it
            step.input_cls = registry.message_class(full) if full in registry else node.input_type
            step.input_name = full
        elif node.func is None:
            if contracts is None:
                contracts = _inferred_inputs(version)
            found = contracts.get(name)
            step.expect = f"type.googleapis.com/{found}" if found else ""
        plan.steps.append(step)
    plan.warnings = _legacy_pb2_notes(version, wf)
    _materialize(version, cache)
    return plan


def _legacy_pb2_notes(version: Version, wf: Workflow) -> list[str]:
    """What to tell about protoc 3.x ``_pb2.py`` files next to the workflow's loaded nodes."""
    from .legacy_pb2 import legacy_files, legacy_note, needs_replacing

    if version._base is None or not needs_replacing():
        return []
    nodes = {
        name: node.src
        for name in wf.sequential
        for node in [version._nodes.get(name)]
        if node is not None and node.func is None and node.src.endswith(".py")
    }
    found = legacy_files(version._base.files, nodes) if nodes else {}
    return [legacy_note(path, users, "runs") for path, users in found.items()]


def _inferred_inputs(version: Version) -> dict[str, str]:
    """Input types read from loaded sources (``data.Unpack(Request())``), by node name."""
    from krtlab.bundle.project import proto_facts_from
    from krtlab.spec.contracts import resolve_contract
    from krtlab.spec.pysource import read_python_source

    fileset = version._protos.fileset
    if fileset is None:
        return {}
    proto = proto_facts_from(fileset, version._proto_file)
    out = {}
    for node in version._nodes.values():
        if node.func is None and node.source is not None and node.src.endswith(".py"):
            facts = {node.src: read_python_source(node.source.decode("utf-8", "replace"))}
            c = resolve_contract(node.name, node.src, proto, facts, {})
            if c is not None and c.input:
                out[node.name] = c.input
    return out


# -- node runtimes: what a KRE worker holds ----------------------------------------------------


class _Runtime:
    """One workflow-node occurrence (one KRE worker): its ``ctx``, callable and init state."""

    __slots__ = (
        "cache", "call", "capture", "ctx", "identity", "init", "is_async", "node", "ready",
        "runner", "takes_ctx",
    )  # fmt: skip

    def __init__(
        self, cache: _Cache, workflow: str, node: Node, identity: tuple[Any, ...], runner: Any
    ) -> None:
        self.cache, self.node, self.identity = cache, node, identity
        self.ready = False
        self.call: Any = node.func
        self.init: Any = node.init_func
        self.takes_ctx = node.takes_ctx
        self.is_async = node.func is not None and inspect.iscoroutinefunction(node.func)
        self.runner = runner  # the node's kre-py runner: its ctx, its refusals
        self.ctx = Context.for_runner(
            runner,
            base_path=str(cache.root / "bundle"),
            version=cache.version,
            node_name=node.name,
            store=shared_store(cache.root / "store.sqlite"),
            workflow=workflow,
        )
        self.capture = self.ctx.capture

    def start(self, version: Version) -> None:
        """Load the handler (loaded nodes) and run ``init(ctx)`` once, as a worker starts."""
        with self.cache.lock:
            if self.ready:
                return
            if self.node.func is None:
                self._load(version)
            if self.init is not None:
                result = self.init(self.ctx)
                if inspect.isawaitable(result):
                    drive(result)
            self.ready = True

    def _load(self, version: Version) -> None:
        node = self.node
        if node.source is None:
            raise RunError(f"its src {node.src} is not in the bundle")
        refuse_generation(node.image, self.runner)
        path = self.cache.root / "bundle" / node.src
        try:
            module = import_handler(path, self.cache.root / "bundle", pb2_modules(version))
        except Exception as err:
            raise RunError(f"error loading handler script {node.src}: {err}") from err
        if not hasattr(module, "handler"):
            raise RunError(
                f"handler module '{path}' must implement a function 'handler(ctx, data)'"
            )
        self.call, self.init = module.handler, getattr(module, "init", None)


_UNRUN = {
    "json": "a JSON-era runner (sync handler(ctx, data) with a dict)",
    "v3": "a KRT v2 runner (default_handler, ctx.send_output)",
}


def refuse_generation(image: str, runner: Any) -> None:
    """Refuse, plainly, a node whose runner's contract krtlab does not run (it checks it)."""
    from krtlab.spec.generations import runner_generation

    generation = runner_generation(image, runner.image if runner is not None else None)
    if generation in _UNRUN:
        raise RunError(
            f"it runs on {image}, {_UNRUN[generation]}: krtlab runs kre-py 1.2x–2.x nodes; "
            "validate, build and deploy still work"
        )


def _runtime(cache: _Cache, workflow: str, node: Node, registry: Any, runner: Any) -> _Runtime:
    if node.func is not None:
        identity: tuple[Any, ...] = (node.func, node.init_func, runner)
    else:
        identity = (node.source, registry, runner)
    rt = cache.runtimes.get((workflow, node.name))
    if rt is None or rt.identity != identity:
        # a redefined function (a re-run cell) starts like a new worker: fresh ctx, init again
        rt = _Runtime(cache, workflow, node, identity, runner)
        cache.runtimes[(workflow, node.name)] = rt
    return rt


def _materialize(version: Version, cache: _Cache) -> None:
    key: tuple[Any, ...] = (version._protos.registry, tuple(version._nodes.values()))
    key += tuple(map(id, version._assets.values()))
    if cache.bundle_key != key:  # plans of other workflows share the bundle
        write_bundle(version, cache.root / "bundle")
        cache.bundle_key = key
