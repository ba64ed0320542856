"""In-process runs (``v.run``): a workflow's nodes in order, every edge on KRE's wire format.

Each message between two steps (the request, node outputs, the response) is packed into a
``google.protobuf.Any``, serialized, parsed and unpacked into the type the next step takes, as
KRE's entrypoint and runners do, so a contract mistake fails here and names both sides.

Authored nodes call the user's function; loaded nodes import their ``main.py`` the way kre-py
does, from the bundle written to ``<data dir>/<version>/bundle/``, with ``public_input_pb2`` and
friends resolving to the version's own message classes. Each workflow-node occurrence keeps one
``ctx`` and runs ``init`` once, like a KRE worker, until its function is redefined.
Per-workflow plans are cached on the version and rebuilt when its nodes, workflows or protos
change. Several threads may run one version at once; their log capture may then interleave.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from krtlab.errors import KrtlabError, SpecError
from krtlab.spec.suggest import did_you_mean

from .config import (
    apply_env,
    import_handler,
    pb2_modules,
    resolve_config,
    restore_env,
    write_bundle,
)
from .context import Context, _Request, drive
from .errors import NodeFailed, RunError
from .result import NodeTrace, RunResult
from .store import data_dir, shared_store

if TYPE_CHECKING:
    from krtlab.authoring.node import Node
    from krtlab.authoring.version import Version, Workflow

__all__ = ["NodeFailed", "NodeTrace", "RunResult", "run_version"]

_log = logging.getLogger("krtlab.runtime")
_Any = any_pb2.Any
_clock = time.perf_counter_ns


def run_version(version: Version, target: str, request: Any = None, /, **fields: Any) -> RunResult:
    """Run the workflow serving ``target`` (an rpc or workflow name) in this process.

    Args:
        version: an authored or loaded version.
        target: rpc name (``"MakePrediction"``) or workflow name (``"ny-room-price"``).
        request: the rpc's input as a message (any class with the same full name), a dict
            (``json_format.ParseDict`` rules: proto or JSON field names), or None.
        **fields: request fields as keyword arguments (merged over ``request``).

    Returns:
        The response and a per-node trace; a failing node does not raise here, ``.response``
        does (``NodeFailed``).

    Raises:
        SpecError: unknown target, a request of the wrong type or with unknown fields.
        RunError: the workflow cannot run in-process (a Go node: use ``v.serve()``).
    """
    started = _clock()
    plan = _plan(version, target)
    msg = _request_message(plan, request, fields)
    config = resolve_config(version) if plan.config_keys else None
    warnings = _config_warnings(version, config)
    run = _Run(plan.output_cls)
    trace: list[NodeTrace] = []
    error: NodeFailed | None = None
    wire = _Any()
    wire.Pack(msg)
    data = wire.SerializeToString()
    prev: Any = msg
    saved = apply_env(config) if config else None
    try:
        for step in plan.steps:
            logs: list[str] = []
            rt = step.rt
            rt.capture.sink = logs
            run.node = step.name
            out = inp = None
            t0 = _clock()
            try:
                if not rt.ready:
                    rt.start(version)
                ctx = rt.ctx._bind(run)
                arrived = _Any.FromString(data)
                if step.loaded:
                    if step.expect and arrived.type_url != step.expect:
                        raise _Mismatch(step, arrived)
                    inp = prev
                    result = rt.call(ctx, arrived)
                    if not inspect.isawaitable(result):
                        raise TypeError(f"object {type(result).__name__} can't be used in "
                                        "'await' expression")  # fmt: skip
                    out = drive(result)
                else:
                    inp = (step.input_cls or _class_of(plan, arrived))()
                    if not arrived.Unpack(inp):
                        raise _Mismatch(step, arrived)
                    out = rt.call(ctx, inp) if rt.takes_ctx else rt.call(inp)
                    if rt.is_async or (not isinstance(out, Message) and inspect.isawaitable(out)):
                        out = drive(out)
                wire = _Any()
                if not isinstance(out, Message):
                    raise TypeError(f"it returned {_type_name(out)}, not a protobuf message")
                wire.Pack(out)
                data = wire.SerializeToString()
            except _Mismatch as m:
                error, inp = _blame(plan, trace, m), None
            except Exception as exc:
                error = NodeFailed(step.name, exc)
                logs.append(_traceback_line(exc))
            finally:
                rt.capture.sink = None
            if error is None or error.node == step.name:
                ms = (_clock() - t0) / 1e6
                replied = run.replied_by == step.name
                trace.append(NodeTrace(step.name, inp, out, ms, logs, _text(error), replied))
            if error is not None:
                break
            prev = out
    finally:
        if saved:
            restore_env(saved)
    response = run.early
    if error is None and not run.replied:
        response = plan.output_cls()
        if not _Any.FromString(data).Unpack(response):
            last = trace[-1]
            text = (
                f"it returned {_type_name(prev)}, but rpc {plan.rpc} returns "
                f"{plan.output_name} (KRE's entrypoint would answer an empty response)"
            )
            error = NodeFailed(last.node, TypeError(text))
            last.error, response = str(error), None
    result = RunResult(
        version=version.name,
        rpc=plan.rpc,
        workflow=plan.workflow,
        trace=trace,
        response=response,
        error=error,
        duration_ms=(_clock() - started) / 1e6,
        warnings=warnings,
        replied_by=run.replied_by,
    )
    result.source = version
    return result


class _Run(_Request):
    """One request's state: the early reply (KRE's ``replied`` envelope flag) and its sender."""

    __slots__ = ("early", "node", "output_cls", "replied_by")

    def __init__(self, output_cls: type) -> None:
        super().__init__(False, self._reply)
        self.output_cls, self.early, self.node, self.replied_by = output_cls, None, "", None

    async def _reply(self, message: Any) -> None:
        if not isinstance(message, Message):
            raise TypeError(f"ctx.reply takes a protobuf message, not {_type_name(message)}")
        wire = _Any()
        wire.Pack(message)
        response = self.output_cls()
        if not _Any.FromString(wire.SerializeToString()).Unpack(response):
            raise TypeError(
                f"ctx.reply({_type_name(message)}): the rpc returns "
                f"{self.output_cls.DESCRIPTOR.full_name}"
            )
        self.early, self.replied_by = response, self.node


class _Mismatch(Exception):
    def __init__(self, step: _Step, arrived: Any) -> None:
        super().__init__()
        self.step, self.found = step, arrived.type_url.rpartition("/")[2]


def _blame(plan: _Plan, trace: list[NodeTrace], m: _Mismatch) -> NodeFailed:
    """A message of the wrong type reached a step: the node that produced it failed."""
    wanted = m.step.expect.rpartition("/")[2] if m.step.expect else m.step.input_name
    how = " (read from its source)" if m.step.loaded else ""
    if not trace:  # the first node does not take what the rpc receives
        text = f"rpc {plan.rpc} receives {m.found}, but it takes {wanted}{how}"
        return NodeFailed(m.step.name, TypeError(text))
    text = (
        f"it returned {m.found}, but the next node {m.step.name!r} takes {wanted}{how}; "
        f"on KRE, Unpack in {m.step.name!r} would fail"
    )
    error = NodeFailed(trace[-1].node, TypeError(text))
    trace[-1].error = str(error)
    return error


def _type_name(obj: Any) -> str:
    if isinstance(obj, Message):
        return obj.DESCRIPTOR.full_name
    return "None" if obj is None else f"a {type(obj).__name__}"


def _text(error: NodeFailed | None) -> str | None:
    return None if error is None else str(error)


def _traceback_line(exc: BaseException) -> str:
    """The ERROR line kre-py logs for a failing handler, traceback included."""
    import traceback

    from .context import KreFormatter

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    msg = "error executing handler: %s \n\n%s"
    return KreFormatter().format(logging.LogRecord("", logging.ERROR, "", 0, msg, (exc, tb), None))


def _class_of(plan: _Plan, arrived: Any) -> type:
    """An untyped authored node receives whatever class the Any names (from the version)."""
    name = arrived.type_url.rpartition("/")[2]
    try:
        return plan.registry.message_class(name)
    except KrtlabError:
        raise TypeError(f"received {name}, which no proto of the version defines") from None


_warned: set[tuple[str, tuple[str, ...]]] = set()


def _config_warnings(version: Version, config: Any) -> list[str]:
    if config is None or not config.missing:
        return []
    warnings = config.warnings(version.name)
    key = (version.name, tuple(config.missing))
    if key not in _warned:  # once per process: a notebook re-runs the same cell many times
        _warned.add(key)
        for w in warnings:
            _log.warning(w)
    return warnings


# -- requests ----------------------------------------------------------------------------------


def _request_message(plan: _Plan, request: Any, fields: dict[str, Any]) -> Any:
    cls = plan.input_cls
    if request is None:
        msg = cls()
    elif isinstance(request, Message):
        name = request.DESCRIPTOR.full_name
        if name != plan.input_name:
            raise SpecError(f"rpc {plan.rpc} takes {plan.input_name}, not {name}")
        if type(request) is cls and not fields:
            return request  # only packed, never changed
        msg = cls.FromString(request.SerializeToString())  # another pool's class: via bytes
    elif isinstance(request, Mapping):
        msg = _parse(plan, cls(), dict(request))
    else:
        raise SpecError(
            f"rpc {plan.rpc}: the request is a {plan.input_name} message, a dict or keyword "
            f"fields, not {_type_name(request)}"
        )
    return _parse(plan, msg, fields) if fields else msg


def _parse(plan: _Plan, msg: Any, values: dict[str, Any]) -> Any:
    desc = msg.DESCRIPTOR
    known = {f.name for f in desc.fields} | {f.json_name for f in desc.fields}
    for key in values:
        if key not in known:
            names = [f.name for f in desc.fields]
            hint = did_you_mean(str(key), names) or f"its fields: {', '.join(names) or 'none'}"
            raise SpecError(f"rpc {plan.rpc}: {desc.full_name} has no field {key!r}; {hint}")
    values = {
        k: json_format.MessageToDict(v, preserving_proto_field_name=True)
        if isinstance(v, Message)
        else v
        for k, v in values.items()
    }
    try:
        return json_format.ParseDict(values, msg, descriptor_pool=plan.registry.pool)
    except json_format.ParseError as exc:
        raise SpecError(f"rpc {plan.rpc}: bad request for {desc.full_name}: {exc}") from None


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
        "workflow",
    )


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
        rt = _runtime(cache, wf.name, node, registry)
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
    _materialize(version, cache)
    return plan


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

    __slots__ = ("cache", "call", "capture", "ctx", "identity", "init", "is_async", "node")
    __slots__ += ("ready", "takes_ctx")

    def __init__(self, cache: _Cache, workflow: str, node: Node, identity: tuple[Any, ...]):
        self.cache, self.node, self.identity = cache, node, identity
        self.ready = False
        self.call: Any = node.func
        self.init: Any = node.init_func
        self.takes_ctx = node.takes_ctx
        self.is_async = node.func is not None and inspect.iscoroutinefunction(node.func)
        self.ctx = Context(
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


def _runtime(cache: _Cache, workflow: str, node: Node, registry: Any) -> _Runtime:
    if node.func is not None:
        identity: tuple[Any, ...] = (node.func, node.init_func)
    else:
        identity = (node.source, registry)
    rt = cache.runtimes.get((workflow, node.name))
    if rt is None or rt.identity != identity:
        # a redefined function (a re-run cell) starts like a new worker: fresh ctx, init again
        rt = cache.runtimes[(workflow, node.name)] = _Runtime(cache, workflow, node, identity)
    return rt


def _materialize(version: Version, cache: _Cache) -> None:
    key = (version._protos.registry, tuple(version._nodes.values()))
    key += tuple(map(id, version._assets.values()))
    if cache.bundle_key != key:  # plans of other workflows share the bundle
        write_bundle(version, cache.root / "bundle")
        cache.bundle_key = key
