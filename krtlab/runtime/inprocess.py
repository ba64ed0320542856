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

import gzip
import inspect
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from krtlab.errors import KrtlabError, SpecError
from krtlab.spec.suggest import did_you_mean

from .config import (
    apply_env,
    resolve_config,
    restore_env,
)
from .context import _Request, drive
from .envelope import MESSAGE_THRESHOLD, MessageTooLarge
from .errors import NodeFailed
from .plan import _Plan, _plan, _Step
from .recent import remember
from .result import NodeTrace, RunResult

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

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
    warnings = _config_warnings(version, config) + _said_once(version, plan.warnings)
    run = _Run(plan.output_cls)
    trace: list[NodeTrace] = []
    error: NodeFailed | None = None
    wire = _Any()
    wire.Pack(msg)
    data = wire.SerializeToString()
    remember(version, plan.rpc, plan.input_cls, data)  # examples for v.check(): memory only
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
                if len(data) > MESSAGE_THRESHOLD:  # what the runner's NATS message would refuse
                    _check_size(data, rt.runner)
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
                where = _failing_line(error) if error is not None else None
                trace.append(NodeTrace(step.name, inp, out, ms, logs, _text(error), replied, where))
            if error is not None:
                break
            prev = out
            if run.exited:  # ctx.early_exit(): this node's result is the answer
                break
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


def _check_size(data: bytes, runner: Any) -> None:
    """Refuse a message still over 1 MiB once gzipped, in the node runner's own words."""
    packed = gzip.compress(data, compresslevel=9)
    if len(packed) > MESSAGE_THRESHOLD:
        if runner is not None:
            raise Exception(runner.compression_error(len(packed)))
        raise MessageTooLarge(
            f"compressed message {len(packed) / 1024:.2f} KB exceeds maximum size allowed of "
            f"{MESSAGE_THRESHOLD / 1024:.2f} KB."
        )


class _Run(_Request):
    """One request's state: the early reply (KRE's ``replied`` envelope flag) and its sender."""

    __slots__ = ("early", "node", "output_cls", "replied_by")

    def __init__(self, output_cls: type[Message]) -> None:
        super().__init__(False, self._reply)
        self.output_cls = output_cls
        self.early: Message | None = None
        self.node = ""
        self.replied_by: str | None = None

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
    before = plan.steps[plan.steps.index(m.step) - 1]
    declared = before.rt.node.output_type
    if declared is not None and declared.DESCRIPTOR.full_name != m.found:
        # the sender broke its own declared type (KRE: its main.py refuses the result)
        text = (
            f"it returned {m.found}, but the next node {m.step.name!r} takes {wanted}{how}; "
            f"on KRE, Unpack in {m.step.name!r} would fail"
        )
        error = NodeFailed(trace[-1].node, TypeError(text))
        trace[-1].error = str(error)
        return error
    # the sender sent what it says it sends: the receiver takes the wrong type, as validate says
    text = (
        f"it takes {wanted}{how}, but {before.name!r} before it returns {m.found}: on KRE, "
        f"Unpack fails here; make {m.step.name!r} take {m.found}, or change what comes before it"
    )
    return NodeFailed(m.step.name, TypeError(text))


def _failing_line(error: NodeFailed) -> str | None:
    """``cell In[4], line 7: return x[k]``: the node's own line that raised."""
    from krtlab.authoring.frames import user_frames, where

    frames = user_frames(error.cause.__traceback__) if error.cause is not None else []
    if not frames:
        return None
    frame = frames[-1]
    return f"{where(frame)}: {(frame.line or '').strip()}"


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


def _said_once(version: Version, warnings: list[str]) -> list[str]:
    for w in warnings:
        if (version.name, (w,)) not in _warned:
            _warned.add((version.name, (w,)))
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
