"""Request forms generated from protobuf message descriptors, as ipywidgets.

A :class:`MessageForm` has one editor per field, picked by the field's type: ``Text`` for
strings (and base64 for bytes), ``BoundedIntText`` within the proto type's range, ``FloatText``,
``Checkbox``, a ``Dropdown`` of enum value names, a ``Textarea`` with one value per line for
repeated scalars, add/remove rows for repeated messages and maps, a nested box for messages and
RFC 3339 text for ``Timestamp``. ``form.value`` is the request in protobuf's JSON mapping (proto
field names), the dict ``v.run`` and ``svc.call`` take; ``form.value = {...}`` fills the form.

What is emitted: proto3 scalars always (their default is their absence anyway); a singular
message only when its "set" box is ticked (editing inside ticks it), so a request without the
field stays one; a oneof only its chosen member; empty well-known text fields not at all.
Singular fields of a message type already open above them (``message Tree { Tree left = 1; }``)
are built only when ticked, so recursive types never expand forever.

This module imports ipywidgets; only :mod:`krtlab.notebook.panel` imports it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from krtlab.errors import SpecError

__all__ = ["MessageForm", "field_comments", "type_label"]

_F = FieldDescriptor
_UNSET: Any = object()
_NAMES = {getattr(_F, n): n[5:].lower() for n in dir(_F) if n.startswith("TYPE_")}
_I32, _U32, _I64, _U64 = (
    (-(2**31), 2**31 - 1),
    (0, 2**32 - 1),
    (-(2**63), 2**63 - 1),
    (0, 2**64 - 1),
)
_INT_RANGES = {
    _F.TYPE_INT32: _I32, _F.TYPE_SINT32: _I32, _F.TYPE_SFIXED32: _I32,
    _F.TYPE_UINT32: _U32, _F.TYPE_FIXED32: _U32,
    _F.TYPE_INT64: _I64, _F.TYPE_SINT64: _I64, _F.TYPE_SFIXED64: _I64,
    _F.TYPE_UINT64: _U64, _F.TYPE_FIXED64: _U64,
}  # fmt: skip
_FLOATS = (_F.TYPE_FLOAT, _F.TYPE_DOUBLE)
# well-known types whose JSON form is a string (edited as text) or any JSON value (a textarea)
_TEXT_WKT = {
    "google.protobuf.Timestamp": "RFC 3339, e.g. 2026-01-31T09:30:00Z",
    "google.protobuf.Duration": "seconds, e.g. 1.5s",
    "google.protobuf.FieldMask": "paths, e.g. a.b,c",
}
_JSON_WKT = {f"google.protobuf.{n}" for n in ("Struct", "Value", "ListValue", "Any")}
_WRAPPERS = {
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
# layouts as dicts: each widget gets a Layout of its own (a shared one would close with any).
# A row is a label and its input; both give way in a narrow cell (nested messages lose 2em a
# level) rather than push past its edge: the label down to 8em, the input down to 5em.
_LABEL = {"flex": "0 1 16em", "width": "16em", "min_width": "8em"}
_INPUT = {"flex": "1 1 14em", "width": "auto", "min_width": "5em", "max_width": "24em"}
_INDENT = {"margin": "0 0 0 1.5em", "padding": "0 0 0 .5em", "border_left": "2px solid #ddd"}


class _Invalid(SpecError):
    """A field's text cannot become its proto value; ``path`` locates it from the root."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        self.message, self.path = message, path
        where = "".join(p if p.startswith("[") else f".{p}" for p in path).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)

    def under(self, segment: str) -> _Invalid:
        return _Invalid(self.message, (segment, *self.path))


def message_class(desc: Descriptor) -> type[Message]:
    """The message class of a descriptor (from whatever pool holds it)."""
    return message_factory.GetMessageClass(desc)  # protobuf >= 4.21 (the dependency's floor)


def field_comments(fileset: Any) -> dict[tuple[str, str], str]:
    """``{(message full name, field name): comment}`` from a ``FileSet``'s source info."""
    out: dict[tuple[str, str], str] = {}
    for name in getattr(fileset, "files", ()):
        fdp = fileset.descriptor(name)
        notes = {tuple(loc.path): (loc.leading_comments or loc.trailing_comments).strip()
                 for loc in fdp.source_code_info.location}  # fmt: skip

        def walk(
            msgs: Any, scope: str, path: tuple[int, ...], tag: int, notes: Any = notes
        ) -> None:
            for i, m in enumerate(msgs):
                here = (*path, tag, i)
                for j, f in enumerate(m.field):  # 2 = DescriptorProto.field
                    if notes.get((*here, 2, j)):
                        out[(f"{scope}{m.name}", f.name)] = notes[(*here, 2, j)]
                walk(m.nested_type, f"{scope}{m.name}.", here, 3, notes)  # 3 = nested_type

        walk(fdp.message_type, f"{fdp.package}." if fdp.package else "", (), 4)  # 4 = message_type
    return out


def _message_type(fd: FieldDescriptor) -> Descriptor:
    """The message of a message (or map) field."""
    assert fd.message_type is not None, fd.full_name
    return fd.message_type


def _enum_type(fd: FieldDescriptor) -> EnumDescriptor:
    """The enum of an enum field."""
    assert fd.enum_type is not None, fd.full_name
    return fd.enum_type


def _containing_type(fd: FieldDescriptor) -> Descriptor:
    """The message a field belongs to."""
    assert fd.containing_type is not None, fd.full_name
    return fd.containing_type


def _repeated(fd: FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)  # protobuf >= 6 drops ``label``
    return flag if isinstance(flag, bool) else fd.label == _F.LABEL_REPEATED  # type: ignore[attr-defined]


def _is_map(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return mt is not None and _repeated(fd) and mt.GetOptions().map_entry


def _real_oneof(fd: FieldDescriptor) -> Any:
    group = fd.containing_oneof
    # proto3 ``optional`` makes a one-field oneof named ``_<field>`` (a "synthetic" oneof)
    synthetic = group is not None and len(group.fields) == 1 and group.name == f"_{fd.name}"
    return None if synthetic else group


def _short(fd: FieldDescriptor) -> str:
    if fd.message_type is not None:
        return fd.message_type.name
    if fd.enum_type is not None:
        return fd.enum_type.name
    return _NAMES.get(fd.type, "?")


def type_label(fd: FieldDescriptor) -> str:
    """The field's type as written in a proto: ``repeated string``, ``map<string, Item>``."""
    if _is_map(fd):
        entry = _message_type(fd)
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return f"map<{_short(key)}, {_short(value)}>"
    if _repeated(fd):
        return f"repeated {_short(fd)}"
    optional = fd.containing_oneof is not None and _real_oneof(fd) is None
    return f"optional {_short(fd)}" if optional else _short(fd)


def _label(name: str, fd: FieldDescriptor, tip: str) -> W.HTML:
    from html import escape

    title = f' title="{escape(tip)}"' if tip else ""
    text = f"<span{title}><b>{escape(name)}</b> <code>{escape(type_label(fd))}</code></span>"
    return W.HTML(text, layout=_LABEL, tooltip=tip or None)


def parse_scalar(fd: FieldDescriptor, text: str) -> Any:
    """One value of a scalar or enum field from its text, in protobuf's JSON mapping.

    protobuf's own JSON parser checks it (ranges, enum names, numbers), so the rules are its.
    """
    if fd.type in (_F.TYPE_STRING, _F.TYPE_BYTES) and text.startswith('"'):
        # a JSON string: how list editors write empty values and values with line breaks
        with contextlib.suppress(ValueError):
            decoded = json.loads(text)
            text = decoded if isinstance(decoded, str) else text
    if fd.type == _F.TYPE_STRING:
        return text
    text = text.strip()
    candidate: Any = {"true": True, "false": False}.get(text.lower(), text)
    if fd.type == _F.TYPE_BYTES:  # protobuf accepts any junk as base64: be stricter
        norm = text.replace("-", "+").replace("_", "/")
        try:
            base64.b64decode(norm + "=" * (-len(norm) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid(f"{text!r} is not base64") from None
    many = _repeated(fd)
    try:
        data: Any = {fd.name: [candidate] if many else candidate}
        if _containing_type(fd).full_name in _WRAPPERS:  # their JSON is the bare value
            data = candidate
        holder = json_format.ParseDict(data, message_class(_containing_type(fd))())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        reason = str(exc).split(" field: ", 1)[-1].split(" at ")[0].rstrip(".")
        raise _Invalid(reason) from None
    value = getattr(holder, fd.name)
    return _json_value(fd, value[0] if many else value)


def _json_value(fd: FieldDescriptor, value: Any) -> Any:
    """A scalar read from a message, as a JSON-able value (bytes in base64, enums by name)."""
    if fd.type == _F.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if fd.type == _F.TYPE_ENUM:
        known = _enum_type(fd).values_by_number.get(value)
        return value if known is None else known.name
    return value


def _line(fd: FieldDescriptor, value: Any) -> str:
    """A scalar read from a message, as one line of a list editor."""
    value = _json_value(fd, value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (not value or "\n" in value or value.startswith('"')):
        return json.dumps(value)
    return str(value)


class _Editor:
    """One field: ``row`` is displayed, ``input`` is its main widget.

    ``get()`` returns its JSON-able value (or ``_UNSET`` to leave the field out) and ``put(v)``
    shows ``v``, the field's value as read from a message (None: a message field not set).
    """

    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None],
                 widget: W.Widget) -> None:  # fmt: skip
        if not isinstance(widget, W.Checkbox):  # a text box, a list, a dropdown: it may shrink
            widget.layout = W.Layout(**_INPUT)
        self.fd, self.input, self.row = fd, widget, W.HBox([label, widget])
        widget.observe(lambda _: changed(), "value")

    def get(self) -> Any:
        raise NotImplementedError

    def put(self, value: Any) -> None:
        raise NotImplementedError


class _Scalar(_Editor):
    """One scalar; ``optional`` (proto3) ones are left out while they hold the default."""

    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None],
                 *, optional: bool = False) -> None:  # fmt: skip
        t, self.optional = fd.type, optional
        if t == _F.TYPE_ENUM:
            widget = W.Dropdown(options=[(v.name, v.name) for v in _enum_type(fd).values])
        elif t == _F.TYPE_BOOL:
            widget = W.Checkbox(value=False, indent=False)
        elif t in _INT_RANGES:
            widget = W.BoundedIntText(0, min=_INT_RANGES[t][0], max=_INT_RANGES[t][1])
        elif t in _FLOATS:
            widget = W.FloatText(0.0)
        else:
            widget = W.Text(placeholder="base64" if t == _F.TYPE_BYTES else "")
        super().__init__(fd, label, changed, widget)

    def get(self) -> Any:
        value = self.input.value
        if self.fd.type == _F.TYPE_BYTES:
            value = parse_scalar(self.fd, value)
        elif self.fd.type in _FLOATS:
            value = float(value)
        empty = self.fd.enum_type.values[0].name if self.fd.enum_type else self.fd.default_value
        return _UNSET if self.optional and value in (empty, "") else value

    def put(self, value: Any) -> None:
        value = _json_value(self.fd, value)
        if self.fd.type == _F.TYPE_ENUM and value not in [v for _, v in self.input.options]:
            # a number an open enum does not name (sent by a newer peer): offer it as it is
            self.input.options = [*self.input.options, (str(value), value)]
        self.input.value = value


class _ScalarList(_Editor):
    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None]) -> None:
        names = ": " + ", ".join(v.name for v in fd.enum_type.values) if fd.enum_type else ""
        hint = f"one value per line{names}"
        super().__init__(fd, label, changed, W.Textarea(placeholder=hint, rows=3))

    def get(self) -> list[Any]:
        out = []
        for i, line in enumerate(self.input.value.splitlines()):
            if not line.strip() and self.fd.type not in (_F.TYPE_STRING, _F.TYPE_BYTES):
                continue  # a blank line is an empty string (or bytes), else nothing
            try:
                out.append(parse_scalar(self.fd, line))
            except _Invalid as exc:
                raise exc.under(f"[line {i + 1}]") from None
        return out

    def put(self, value: Any) -> None:
        self.input.value = "\n".join(_line(self.fd, v) for v in value)


class _WellKnown(_Editor):
    """Timestamp/Duration/FieldMask as text, wrappers as their scalar, Struct/Any as JSON."""

    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None]) -> None:
        self.kind = _message_type(fd).full_name
        if self.kind in _JSON_WKT:
            widget = W.Textarea(placeholder="JSON (empty: not set)", rows=3)
        else:
            widget = W.Text(placeholder=_TEXT_WKT.get(self.kind, "empty: not set"))
        super().__init__(fd, label, changed, widget)

    def get(self) -> Any:
        text = self.input.value
        if not text.strip():
            return _UNSET
        if self.kind in _JSON_WKT:
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise _Invalid(f"not JSON: {exc}") from None
        elif self.kind in _WRAPPERS:
            value = parse_scalar(_message_type(self.fd).fields_by_name["value"], text)
        else:
            value = text.strip()
        try:  # checked here so the error names this field, not the whole request
            json_format.ParseDict(value, message_class(_message_type(self.fd))())
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise _Invalid(str(exc).split(" at ")[0]) from None
        return value

    def put(self, value: Any) -> None:
        if value is None:
            self.input.value = ""
            return
        pool = value.DESCRIPTOR.file.pool
        data = json.loads(json_format.MessageToJson(value, descriptor_pool=pool))
        self.input.value = json.dumps(data, indent=1) if self.kind in _JSON_WKT else str(data)


class _MessageField(_Editor):
    """A nested message in an indented box, with a "set" box unless it is always present."""

    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None],
                 ctx: _Ctx, *, required: bool = False) -> None:  # fmt: skip
        self.fd, self.ctx, self.changed, self.required = fd, ctx, changed, required
        self.form: MessageForm | None = None
        recursive = _message_type(fd).full_name in ctx.ancestors or len(ctx.ancestors) > 24
        hide = "none" if required else ""
        self.input = W.Checkbox(
            value=required, indent=False, description="set", layout=W.Layout(display=hide)
        )
        self.box = W.VBox([], layout=_INDENT)
        if recursive and not required:
            self.box.children = (W.HTML("<i>recursive type: tick “set” to edit</i>"),)
        else:
            self._build()
        self.input.observe(self._toggled, "value")
        self.row = W.VBox([W.HBox([label, self.input]), self.box])

    def _build(self) -> MessageForm:
        if self.form is None:
            self.form = MessageForm(_message_type(self.fd), _ctx=self.ctx, _changed=self._touched)
            self.box.children = (self.form.widget,)
        return self.form

    def _touched(self) -> None:
        self.input.value = True  # editing inside a message means sending it
        self.changed()

    def _toggled(self, change: Any) -> None:
        if change["new"]:
            self._build()
        self.changed()

    def get(self) -> Any:
        if not self.input.value:
            return _UNSET
        return self._build().value

    def put(self, value: Any) -> None:
        if value is not None:
            self._build().fill(value)
        elif self.form is not None:
            self.form.fill(message_class(_message_type(self.fd))())
        self.input.value = self.required or value is not None


class _Rows(_Editor):
    """Repeated messages and maps: rows added and removed with buttons."""

    def __init__(self, fd: FieldDescriptor, label: W.Widget, changed: Callable[[], None],
                 ctx: _Ctx) -> None:  # fmt: skip
        self.fd, self.ctx, self.changed = fd, ctx, changed
        self.items: list[tuple[W.Widget, list[_Editor]]] = []
        self.input = W.Button(description="add", icon="plus", layout=W.Layout(width="auto"))
        self.input.on_click(lambda _: self.add())
        self.box = W.VBox([], layout=_INDENT)
        self.row = W.VBox([W.HBox([label, self.input]), self.box])

    def add(self) -> list[_Editor]:
        """Append a row (a message, or a key and a value) and return its editors."""
        if _is_map(self.fd):
            entry = _message_type(self.fd)
            editors = [_editor(entry.fields_by_name[n], self.ctx, self.changed, required=True)
                       for n in ("key", "value")]  # fmt: skip
        else:
            editors = [_editor(self.fd, self.ctx, self.changed, required=True, single=True)]
        # the button keeps its own width (its icon, whole); the fields take what is left
        remove = W.Button(icon="trash", tooltip="remove",
                          layout=W.Layout(width="auto", flex="0 0 auto"))  # fmt: skip
        fields = W.VBox([e.row for e in editors], layout=W.Layout(flex="1 1 auto", min_width="0"))
        row = W.HBox([fields, remove])
        remove.on_click(lambda _: self._remove(row))
        self.items.append((row, editors))
        self.box.children = tuple(r for r, _ in self.items)
        self.changed()
        return editors

    def _remove(self, row: W.Widget) -> None:
        self.items = [(r, e) for r, e in self.items if r is not row]
        self.box.children = tuple(r for r, _ in self.items)
        self.changed()

    def get(self) -> Any:
        out: Any = {} if _is_map(self.fd) else []
        for i, (_, editors) in enumerate(self.items):
            try:
                values = [e.get() for e in editors]
            except _Invalid as exc:
                raise exc.under(f"[{i}]") from None
            if values[-1] is _UNSET:
                raise _Invalid("empty: give a value or remove the row", (f"[{i}]",))
            if isinstance(out, dict):
                key = values[0]
                out["true" if key is True else "false" if key is False else str(key)] = values[1]
            else:
                out.append(values[0])
        return out

    def put(self, value: Any) -> None:
        self.items = []
        pairs = value.items() if _is_map(self.fd) else ((v,) for v in value)
        for item in pairs:
            for editor, part in zip(self.add(), item, strict=True):
                editor.put(part)
        self.box.children = tuple(r for r, _ in self.items)


class _Ctx:
    """What every editor of one form tree shares: comments and the messages open above."""

    def __init__(self, comments: Mapping[tuple[str, str], str], ancestors: tuple[str, ...]):
        self.comments, self.ancestors = comments, ancestors


def _editor(fd: FieldDescriptor, ctx: _Ctx, changed: Callable[[], None], *,
            required: bool = False, single: bool = False) -> _Editor:  # fmt: skip
    """The editor for one field (``single``: one element of a repeated field)."""
    tip = ctx.comments.get((_containing_type(fd).full_name, fd.name), "")
    label = _label("" if single else fd.name, fd, tip)
    if single:
        label.value = f"<code>{fd.message_type.name if fd.message_type else _short(fd)}</code>"
    if _repeated(fd) and not single:
        if fd.message_type is not None:
            return _Rows(fd, label, changed, ctx)
        return _ScalarList(fd, label, changed)
    if fd.message_type is not None:
        if fd.message_type.full_name in {*_TEXT_WKT, *_JSON_WKT, *_WRAPPERS}:
            return _WellKnown(fd, label, changed)
        return _MessageField(fd, label, changed, ctx, required=required)
    optional = fd.containing_oneof is not None and _real_oneof(fd) is None and not required
    return _Scalar(fd, label, changed, optional=optional)


class MessageForm:
    """A form for one message type: ``widget`` to display, ``value`` to read or set.

    Args:
        descriptor: the message's descriptor (``pb.Request.DESCRIPTOR``).
        comments: ``{(message full name, field name): text}`` shown as tooltips
            (see :func:`field_comments`).
        on_change: called whenever a value in the form changes.

    Attributes:
        editors: field name -> editor. ``editors["name"].input`` is the field's widget (for a
            message field its "set" box, with ``.form`` inside; for rows, the "add" button,
            and ``.add()`` appends a row); ``.row`` is what is displayed.
        oneofs: oneof name -> the ``Dropdown`` choosing its member.
    """

    def __init__(self, descriptor: Descriptor, *,
                 comments: Mapping[tuple[str, str], str] | None = None,
                 on_change: Callable[[], None] | None = None,
                 _ctx: _Ctx | None = None,
                 _changed: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.descriptor = descriptor
        parent = _ctx or _Ctx(comments or {}, ())
        ctx = _Ctx(parent.comments, (*parent.ancestors, descriptor.full_name))
        self._changed = _changed or on_change or (lambda: None)
        self.editors: dict[str, _Editor] = {}
        self.oneofs: dict[str, W.Dropdown] = {}
        rows: list[W.Widget] = []
        for fd in descriptor.fields:
            group = _real_oneof(fd)
            # a oneof member is sent whenever it is the chosen one, even a message left empty
            ed = _editor(fd, ctx, self._changed, required=group is not None)
            self.editors[fd.name] = ed
            if group is not None and group.name not in self.oneofs:
                pick = W.Dropdown(options=["(none)", *(f.name for f in group.fields)],
                                  layout=W.Layout(**_INPUT))  # fmt: skip
                pick.observe(lambda _, g=group.name: self._show_oneof(g, notify=True), "value")
                self.oneofs[group.name] = pick
                rows.append(W.HBox([W.HTML(f"<b>{group.name}</b> <code>oneof</code>",
                                           layout=_LABEL), pick]))  # fmt: skip
            rows.append(ed.row)
        self.widget = W.VBox(rows)
        for name in self.oneofs:
            self._show_oneof(name)

    def _show_oneof(self, group: str, *, notify: bool = False) -> None:
        chosen = self.oneofs[group].value
        for fd in self.descriptor.oneofs_by_name[group].fields:
            self.editors[fd.name].row.layout.display = "" if fd.name == chosen else "none"
        if notify:  # not while building: that would tick the "set" box of the enclosing message
            self._changed()

    @property
    def value(self) -> dict[str, Any]:
        """The request as a JSON-able dict (protobuf's JSON mapping, proto field names).

        Raises:
            SpecError: a field's text is not a value of its type (the message names the field).
        """
        out: dict[str, Any] = {}
        for fd in self.descriptor.fields:
            group = _real_oneof(fd)
            if group is not None and self.oneofs[group.name].value != fd.name:
                continue
            try:
                value = self.editors[fd.name].get()
            except _Invalid as exc:
                raise exc.under(fd.name) from None
            if value is not _UNSET:
                out[fd.name] = value
        return out

    @value.setter
    def value(self, request: Mapping[str, Any] | Message) -> None:
        self.fill(self._parse(request))

    def message(self) -> Message:
        """The request as a message of the descriptor's type."""
        return self._parse(self.value)

    def _parse(self, request: Mapping[str, Any] | Message) -> Message:
        cls = message_class(self.descriptor)
        if isinstance(request, Message):
            if request.DESCRIPTOR.full_name != self.descriptor.full_name:
                raise SpecError(f"expected a {self.descriptor.full_name}, "
                                f"got a {request.DESCRIPTOR.full_name}")  # fmt: skip
            return cls.FromString(request.SerializeToString())
        try:
            return json_format.ParseDict(dict(request or {}), cls())
        except json_format.ParseError as exc:
            raise SpecError(f"not a valid {self.descriptor.full_name}: {exc}") from None

    def fill(self, msg: Message) -> None:
        """Show ``msg`` (of this form's type) in the form."""
        for fd in self.descriptor.fields:
            value = getattr(msg, fd.name)
            if fd.message_type is not None and not _repeated(fd) and not msg.HasField(fd.name):
                value = None
            self.editors[fd.name].put(value)
        for name, pick in self.oneofs.items():
            pick.value = msg.WhichOneof(name) or "(none)"
