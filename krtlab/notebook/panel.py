"""``v.panel()``: a request form for an rpc, with buttons to run it locally or call it served.

The form comes from the rpc's input message (:mod:`krtlab.notebook.forms`). **Run locally** is
``v.run``; **Call served** calls a given target (a :class:`~krtlab.runtime.serve.Service`, a
:class:`~krtlab.deploy.Deployment` — the button then reads **Call deployed** — or the
``host:port`` of any KRE entrypoint) or else a ``v.serve(port=0)`` the panel starts on first use
and keeps until **Stop** or :meth:`Panel.close`. The response (as JSON, once) shows beside the
form, or below it in a narrow cell, and the trace (the run's graph, scaled to the cell's width,
and its table) below both; failures show as one readable message naming the node or the gRPC
status, and the exception stays in ``panel.last_error`` for whoever wants the traceback. When a
call to a :class:`~krtlab.deploy.Deployment` fails, the panel asks its server whether the
version, or the server itself, is gone since the panel was made, and says so.

Button callbacks run on the kernel's main thread, like the cells: a node then runs where it
would for ``v.run``. Only the progress ticker shown while a service starts has its own thread.

Outside a browser the panel is text: ``repr(panel)`` lists the rpc, each field with its type and
value and the last outcome, and its mimebundle carries that text beside the widget view.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

try:
    import ipywidgets as W
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("v.panel() needs ipywidgets>=8: pip install 'krtlab[notebook]'") from exc

from krtlab.errors import KrtlabError, SpecError
from krtlab.spec.suggest import did_you_mean

from .forms import MessageForm, field_comments, type_label

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from krtlab.authoring.version import Version

__all__ = ["Panel"]

_NODE_RE = re.compile(r"error in '([^']+)': ?(.*)", re.S)
# Layouts as dicts (a Layout each). Two columns that wrap: the form (its buttons and status)
# and the response; the trace, wider, takes the whole width below them. min_width 0 lets a
# column shrink to the cell instead of pushing a scrollbar into it.
_FORM_COLUMN = {"flex": "1 1 28em", "min_width": "0", "padding": "0 1em 0 0"}
_OUTCOME_COLUMN = {"flex": "1 1 16em", "min_width": "0", "padding": "0 .5em 0 0"}
_TRACE = {"min_width": "0", "padding": "0 .5em 0 0"}
# Marks in colours readable on JupyterLab's light and dark themes; text keeps the theme's own
# colour (ipywidgets' HTML content has a 28 px line height: text blocks set their own).
_GREEN, _RED = "#2da44e", "#e0364f"
_MARKS = {"ok": ("✓", _GREEN), "failed": ("✗", _RED), "busy": ("⏳", ""), "note": ("", "")}
_BLOCK = "line-height:1.4"
_RUNNING = ("STARTED", "PUBLISHED")
# One service per version, shared by its panels: re-running a `v.panel()` cell starts no more
# processes. Each comes with a digest of the project it serves, to restart it after an edit.
_SERVED: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()


class Panel(W.VBox):
    """A request form for one rpc of a version, with run/call buttons and the outcome beside it.

    Made by :meth:`krtlab.Version.panel`. ``panel.request()`` is the form's request as a dict,
    ``panel.set_request({...})`` fills it, ``panel.submit()`` does what **Run locally** does and
    returns the :class:`~krtlab.runtime.result.RunResult` (a failed node does not raise, as with
    ``v.run``); ``panel.submit(served=True)`` does what **Call served** does and returns the
    response message (raising ``CallError`` with the gRPC status, as ``svc.call`` does).

    Attributes:
        version: the version it runs.
        target: the entrypoint it calls (a ``Service``, a ``Deployment`` or ``"host:port"``),
            or None.
        service: the ``Service`` "Call served" started for this version, while it runs (one
            per version, shared by its panels, restarted when the version changed).
        form: the :class:`~krtlab.notebook.forms.MessageForm` of the current rpc.
        last: the last RunResult or served response. last_error: the last exception shown.
    """

    def __init__(self, version: Version, rpc: str | None = None, *, target: Any = None) -> None:
        super().__init__()
        if target is not None and not isinstance(target, str) and not hasattr(target, "call"):
            raise SpecError(
                f"target must be a Service, a Deployment or a 'host:port' address, not {target!r}"
            )
        if isinstance(target, str) and ":" not in target:
            raise SpecError(f"target {target!r} is not a 'host:port' address")
        self.version, self.target = version, target
        # the status the deployment had when the panel was made (already known: no request)
        info = getattr(target, "_info", None) if _is_deployment(target) else None
        self._target_status: str | None = getattr(info, "status", None)
        self.last: Any = None
        self.last_error: BaseException | None = None
        self._summary = "nothing run yet"
        self._registry: Any = None
        rpcs = self._rpcs()
        if rpc is not None and rpc not in rpcs:
            hint = did_you_mean(rpc, rpcs) or f"rpcs: {', '.join(rpcs)}"
            raise SpecError(f"{version.name} has no rpc {rpc!r}; {hint}")
        self._pick = W.Dropdown(options=list(rpcs), value=rpc or next(iter(rpcs)),
                                description="rpc")  # fmt: skip
        self._pick.layout.display = "" if len(rpcs) > 1 else "none"
        self._pick.observe(lambda _: self._select(), "value")
        self._title, self._form_box = W.HTML(), W.VBox()
        self._run_btn = W.Button(description="Run locally", icon="play", button_style="primary")
        deployed = _is_deployment(target)
        self._call_btn = W.Button(description="Call deployed" if deployed else "Call served",
                                  icon="cloud" if deployed else "server")  # fmt: skip
        self._stop_btn = W.Button(description="Stop", icon="stop", disabled=True)
        self._stop_btn.layout.display = "none" if target is not None else ""
        self._run_btn.on_click(lambda _: self._click(served=False))
        self._call_btn.on_click(lambda _: self._click(served=True))
        self._stop_btn.on_click(lambda _: self._click_stop())
        self._progress = W.FloatProgress(0.0, min=0.0, max=1.0, layout=W.Layout(display="none"))
        self._status, self._response = W.HTML(), W.HTML()
        self._trace = W.HTML(layout=_TRACE)
        buttons = W.HBox([self._run_btn, self._call_btn, self._stop_btn],
                         layout=W.Layout(flex_flow="row wrap"))  # fmt: skip
        left = W.VBox([self._title, self._form_box, buttons, self._progress, self._status],
                      layout=_FORM_COLUMN)  # fmt: skip
        right = W.VBox([self._response], layout=_OUTCOME_COLUMN)
        top = W.HBox([left, right], layout=W.Layout(flex_flow="row wrap"))
        self.children = (self._pick, top, self._trace)
        self._select()

    # -- the rpc and its form ------------------------------------------------------------------

    @property
    def rpc(self) -> str:
        """The rpc the form is for (the selector's value)."""
        return str(self._pick.value)

    def _rpcs(self) -> dict[str, Any]:
        protos = self.version._protos
        fileset = protos.fileset
        rpcs = fileset.entrypoint_rpcs(self.version._proto_file) if fileset is not None else None
        if not rpcs:
            raise SpecError(f"{self.version.name} has no rpcs yet: give it a proto with "
                            "service Entrypoint (v.proto(...)) first")  # fmt: skip
        return rpcs

    def _select(self) -> None:
        """(Re)build the form for the selected rpc from the version's current protos."""
        protos = self.version._protos
        self._registry = registry = protos.registry
        spec = self._rpcs()[self.rpc]
        assert registry is not None  # _rpcs() found the rpc: the protos compiled
        desc = registry.message_class(spec.input_type).DESCRIPTOR
        # upb's Descriptor (the stubs' other half of the union) is descriptor.Descriptor at run time
        self.form = MessageForm(desc, comments=field_comments(protos.fileset))  # type: ignore[arg-type]
        self._form_box.children = (self.form.widget,)
        flows = [w.name for w in self.version.workflows.values() if w.entrypoint == self.rpc]
        served_by = f"workflow {', '.join(flows)}" if flows else "no workflow serves it yet"
        out = spec.output_type.rpartition(".")[2]
        note = f"<span style='opacity:.7'>· {escape(served_by)}</span>"
        self._title.value = (f"<div style='{_BLOCK}'><b>{escape(self.rpc)}</b>({escape(desc.name)})"
                             f" → {escape(out)} {note}</div>")  # fmt: skip
        self._response.value = self._trace.value = ""
        self._sync_buttons()

    def _refresh(self) -> None:
        """Follow a proto re-run since the form was built, keeping the values that still fit."""
        if self.version._protos.registry is self._registry:
            return
        old: dict[str, Any] = {}
        with contextlib.suppress(SpecError):
            old = self.form.value
        rpcs = list(self._rpcs())
        current = self.rpc if self.rpc in rpcs else rpcs[0]
        with self._pick.hold_trait_notifications():
            self._pick.options, self._pick.value = rpcs, current
        self._pick.layout.display = "" if len(rpcs) > 1 else "none"
        self._select()
        with contextlib.suppress(SpecError):
            self.form.value = old
        self._set_status("the proto changed: the form was rebuilt", "note")

    def request(self) -> dict[str, Any]:
        """The form's request as a JSON-able dict (proto field names).

        Raises:
            SpecError: a field holds text that is not a value of its type (named in the message).
        """
        self._refresh()
        return self.form.value

    def set_request(
        self, request: Mapping[str, Any] | Message | None = None, **fields: Any
    ) -> None:
        """Fill the form from a dict (protobuf's JSON mapping) or a message, plus keyword fields.

        Raises:
            SpecError: unknown fields or values of the wrong type.
        """
        self._refresh()
        data: Any = {} if request is None else request
        if fields:
            if not isinstance(data, Mapping):  # a message: its fields, then the keywords over them
                from krtlab.runtime.client import message_to_dict

                data = message_to_dict(data)
            data = {**data, **fields}
        self.form.value = data

    # -- running -------------------------------------------------------------------------------

    def submit(self, *, served: bool = False) -> Any:
        """Do what the buttons do: run locally (a RunResult) or call served (the response).

        Raises:
            SpecError: the form's request is not valid (or the rpc has no workflow).
            CallError: a served call answered with a gRPC error (``served=True``).
            ServeError: the service could not start or be reached (``served=True``).
        """
        try:
            request = self.request()
            return self._call(request) if served else self._run(request)
        except Exception as exc:
            self._show_error(exc, f"{'calling' if served else 'running'} {self.rpc} failed")
            raise

    def _click(self, *, served: bool) -> None:
        with contextlib.suppress(Exception):  # shown in the panel; a traceback adds nothing
            self.submit(served=served)

    def _run(self, request: dict[str, Any]) -> Any:
        with self._busy(f"running {self.rpc} locally…"):
            result = self.version.run(self.rpc, request)
        self.last, self.last_error = result, None
        if result.ok:
            self._summary = f"{self.rpc} ran locally in {result.duration_ms:.1f} ms"
            self._set_status(self._summary, "ok")
            self._response.value = _json_html(result.response)
        else:
            title, detail = describe_error(result.error)
            self._summary = f"{self.rpc} failed locally: {title}"
            self._set_status(f"{self.rpc} failed locally", "failed")  # the error: beside, once
            reply = _json_html(result.response) if result.replied_by else ""
            self._response.value = _error_html(title, detail) + reply
        try:  # the graph and the table; the response is shown above, not again in the trace
            shown = copy.copy(result)
            shown._response = None
            trace = shown._repr_html_()
        except Exception as exc:  # the trace is a bonus: the response is already shown
            trace = f"<i>no trace: {escape(str(exc))}</i>"
        logs = "\n".join(f"==> {t.node} <==\n" + "\n".join(t.logs) for t in result.trace if t.logs)
        self._trace.value = f"<div style='{_BLOCK}'>{trace}{_logs_html(logs)}</div>"
        return result

    def _call(self, request: dict[str, Any]) -> Any:
        target = self.target if self.target is not None else self._ensure_service()
        where = _where(target)
        t0 = time.perf_counter()
        with self._busy(f"calling {self.rpc} at {where}…"):
            if isinstance(target, str):
                response = self._call_address(target, request)
            elif _is_deployment(target):  # answers a dict: make it the version's own message
                response = self._as_response(target.call(self.rpc, request), where)
            else:
                response = target.call(self.rpc, request)
        ms = (time.perf_counter() - t0) * 1000
        self.last, self.last_error = response, None
        self._summary = f"{self.rpc} answered by {where} in {ms:.1f} ms"
        self._set_status(self._summary, "ok")
        self._response.value = _json_html(response)
        self._trace.value = f"<div style='{_BLOCK}'>{_served_note(target, self.rpc)}</div>"
        return response

    def _call_address(self, address: str, request: dict[str, Any]) -> Any:
        from krtlab.runtime.client import call

        return self._as_response(call(address, self.rpc, request), address)

    def _as_response(self, data: dict[str, Any], where: str) -> Any:
        from google.protobuf import json_format

        out_type = self._rpcs()[self.rpc].output_type
        registry = self.version._protos.registry
        assert registry is not None  # _rpcs() found the rpc: the protos compiled
        cls = registry.message_class(out_type)
        try:  # the version's own class, so both paths return the same kind of message
            return json_format.ParseDict(data, cls(), ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise SpecError(f"{where} answered something that is not a {out_type}: {exc}") from None

    @property
    def service(self) -> Any:
        """The running service "Call served" started for this version, or None."""
        svc = _SERVED.get(self.version, (None, ""))[0]
        return svc if svc is not None and svc.status().get("state") == "running" else None

    def _ensure_service(self) -> Any:
        svc, stamp = self.service, _stamp(self.version)
        if svc is not None and _SERVED[self.version][1] == stamp:
            return svc
        if svc is not None:  # a stale service answers with yesterday's code: never that
            with self._busy("the version changed since it was served: stopping…"):
                svc.stop()
        expected = getattr(svc, "ready_seconds", 0.0) or 5.0
        with self._busy("starting nats-server, the workers and the entrypoint…", expected):
            svc = self.version.serve(port=0)
        _SERVED[self.version] = (svc, stamp)
        return svc

    def stop(self) -> None:
        """Stop the service "Call served" started for this version (a ``target`` is left alone)."""
        if self.target is not None:
            return  # it calls someone else's entrypoint: nothing of its own to stop
        svc = self.service
        _SERVED.pop(self.version, None)
        if svc is not None:
            with self._busy("stopping the service…"):
                svc.stop()
            self._set_status("service stopped", "note")
        self._sync_buttons()

    def _click_stop(self) -> None:
        try:
            self.stop()
        except Exception as exc:  # shown in the panel
            self._show_error(exc, "stopping the service failed")

    def close(self) -> None:
        """Stop the version's panel service and close every widget of the panel."""
        self.stop()
        stack = list(self.children)
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            widget.close()
        super().close()

    # -- showing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _busy(self, text: str, expected_seconds: float | None = None) -> Iterator[None]:
        """Buttons off and a status while a step runs; a progress bar for long ones."""
        for widget in (self._run_btn, self._call_btn, self._stop_btn, self._pick):
            widget.disabled = True
        self._set_status(text, "busy")
        done = threading.Event()
        ticker = None
        if expected_seconds:
            self._progress.value, self._progress.layout.display = 0.0, ""
            ticker = threading.Thread(target=self._tick, args=(text, expected_seconds, done),
                                      name="krtlab-panel-progress", daemon=True)  # fmt: skip
            ticker.start()
        try:
            yield
        finally:
            done.set()
            if ticker is not None:
                ticker.join()
                self._progress.layout.display = "none"
            self._sync_buttons()

    def _tick(self, text: str, expected: float, done: threading.Event) -> None:
        # the kernel sends widget updates from any thread; the bar slows down past `expected`
        t0 = time.monotonic()
        while not done.wait(0.25):
            elapsed = time.monotonic() - t0
            self._progress.value = elapsed / (elapsed + expected)
            self._set_status(f"{text} {elapsed:.1f} s", "busy")

    def _sync_buttons(self) -> None:
        self._run_btn.disabled = self._call_btn.disabled = self._pick.disabled = False
        self._stop_btn.disabled = self.service is None

    def _set_status(self, text: str, kind: str) -> None:
        """One line under the buttons: a mark in colour (✓ ✗ ⏳), the text in the theme's."""
        mark, colour = _MARKS[kind]
        shown = f"<b style='color:{colour}'>{mark}</b> " if colour else f"{mark} " if mark else ""
        self._status.value = f"<div style='{_BLOCK}'>{shown}{escape(text, quote=False)}</div>"

    def _show_error(self, exc: BaseException, what: str = "failed") -> None:
        """The error once, beside the form (the status line only says that it failed)."""
        self.last_error = exc
        title, detail = describe_error(exc)
        note, gone = "", self._target_gone(exc)
        if gone is not None:  # what happened first, then the error as it came (once)
            title, note, detail = gone[0], gone[1], "\n".join(x for x in (title, detail) if x)
        self._summary = f"error: {title}"
        self._set_status(what, "failed")
        self._response.value, self._trace.value = _error_html(title, detail, note), ""

    def _target_gone(self, exc: BaseException) -> tuple[str, str] | None:
        """(title, what to do) when a call to a Deployment failed because the version, or its
        KAI Server, is gone since the panel was made (a later cell stopped it); else None."""
        from krtlab.errors import DeployError
        from krtlab.runtime.client import CallError

        target = self.target
        if not _is_deployment(target):
            return None
        if not isinstance(exc, DeployError | CallError) or (
            isinstance(exc, CallError) and exc.code not in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
        ):
            return None  # the version answered (an error of its own): nothing is gone
        then = self._target_status  # None: not known when the panel was made
        running_then = then in _RUNNING
        try:
            status = target.refresh().status
        except DeployError as down:
            if "cannot reach" not in down.message:
                return None
            after = (f" after this panel was made ({target.name} was {then} then), by a later "
                     "cell or someone else") if running_then else ""  # fmt: skip
            return (
                f"{target.name} cannot be called: its KAI Server does not answer any more",
                f"Nothing answers at {target.server.url}: the server was stopped{after}. Start "
                f"it and deploy {target.name} again to call it; Run locally works without it.",
            )
        except Exception:  # the check is a bonus: the error itself is still shown
            return None
        if status in _RUNNING:
            return None
        title = f"{target.name} is {status}"
        title += ": the deployment was stopped after this panel was made" if running_then else ""
        since = f"It was {then} then: a later cell, or someone else, stopped it. "
        return title, (
            f"{since if running_then else ''}Start it again (its start(), then publish()) to "
            "call it; Run locally works without it."
        )

    # -- text ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        try:
            return self._text()
        except Exception:  # half-built (or a proto gone): still a readable line
            return f"<krtlab panel: {getattr(self, 'version', None)!r}>"

    def _text(self) -> str:
        spec = self._rpcs().get(self.rpc)
        head = f"rpc {self.rpc}({spec.input_type}) returns ({spec.output_type})" if spec else ""
        lines = [f"<krtlab panel: {self.version.name} · {head}", "  request:"]
        try:
            values, note = self.form.value, ""
        except SpecError as exc:
            values, note = {}, f"  (not valid: {exc})"
        for fd in self.form.descriptor.fields:
            shown = json.dumps(values[fd.name]) if fd.name in values else "(not set)"
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            lines.append(f"    {fd.name} ({type_label(fd)}) = {shown}")
        lines += [note] if note else []
        lines.append(f"  last: {self._summary}")
        if self.target is not None:
            lines.append(f"  served: calls {_where(self.target)}")
        else:
            svc = self.service
            lines.append(f"  served: {'at ' + svc.address if svc else 'not started'}")
        return "\n".join(lines) + ">"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget view plus the whole plain-text description (ipywidgets cuts it at 110)."""
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = repr(self)
        return data


def describe_error(exc: BaseException | None) -> tuple[str, str]:
    """A one-line title and a detail for an error, naming the node when one failed."""
    from krtlab.runtime.client import CallError
    from krtlab.runtime.errors import NodeFailed

    if isinstance(exc, NodeFailed):
        cause = exc.cause
        return f"node '{exc.node}' failed", f"{type(cause).__name__}: {cause}"
    if isinstance(exc, CallError):
        found = _NODE_RE.match(exc.details or "")
        if found:
            return f"node '{found.group(1)}' failed (gRPC {exc.code})", found.group(2)
        what = (
            "asking for its rpcs (reflection)" if exc.rpc == "reflection" else f"calling {exc.rpc}"
        )
        return f"gRPC {exc.code} {what}", exc.details
    if isinstance(exc, KrtlabError):
        text = str(exc)
        first, _, rest = text.partition("\n")
        return f"{type(exc).__name__}: {first}", rest
    return f"unexpected {type(exc).__name__}: {exc}", "panel.last_error holds the exception"


def _is_deployment(target: Any) -> bool:
    """A krtlab.deploy.Deployment (duck-typed: importing krtlab.deploy here is not needed)."""
    return hasattr(target, "server") and hasattr(target, "compare") and hasattr(target, "call")


def _where(target: Any) -> str:
    if isinstance(target, str):
        return target
    if _is_deployment(target):
        return f"deployed {target.name}"
    return str(getattr(target, "address", target))


def _stamp(version: Version) -> str:
    """A digest of everything a served version runs (krt.yml, protos, sources, assets)."""
    import hashlib

    digest = hashlib.sha256()
    for name, data in sorted(version.project().files.items()):
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


# JupyterLab breaks an output's <pre> anywhere (word-break: break-all): words stay whole here
_PRE = "<pre style='white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;margin:.2em 0'>"


def _json_html(msg: Any) -> str:
    from krtlab.runtime.client import message_to_dict

    text = json.dumps(message_to_dict(msg), indent=2, ensure_ascii=False, default=str)
    return f"<div style='{_BLOCK}'><b>response</b>{_PRE}{escape(text, quote=False)}</pre></div>"


def _error_html(title: str, detail: str, note: str = "") -> str:
    """An error block: the title, a ``note`` in prose (what happened, what to do), the error's
    ``detail`` as it came; a red mark down its left side and the text in the theme's colour (a
    red text is hard to read on one of JupyterLab's themes or the other)."""
    body = f"<div style='margin:.2em 0'>{escape(note, quote=False)}</div>" if note else ""
    body += f"{_PRE}{escape(detail, quote=False)}</pre>" if detail else ""
    style = f"border-left:3px solid {_RED};padding:.1em 0 .1em .6em;{_BLOCK}"
    return f"<div style='{style}'><b>{escape(title, quote=False)}</b>{body}</div>"


def _served_note(target: Any, rpc: str) -> str:
    """What a served call can show instead of a trace: the tail of its nodes' logs."""
    note = "<i>a served call has no per-node trace; Run locally shows one</i>"
    version = getattr(target, "version", None)
    if version is None or not hasattr(target, "logs"):
        return note
    nodes = [n for w in version.workflows.values() if w.entrypoint == rpc for n in w.sequential]
    try:
        tail = "\n".join(f"==> {n} <==\n" + "\n".join(target.logs(n).splitlines()[-10:])
                         for n in dict.fromkeys(nodes))  # fmt: skip
    except Exception:  # logs are a bonus
        return note
    return note + _logs_html(tail)


def _logs_html(text: str) -> str:
    if not text:
        return ""
    return f"<details><summary>node logs</summary>{_PRE}{escape(text, quote=False)}</pre></details>"
