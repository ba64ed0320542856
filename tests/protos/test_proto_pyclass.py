"""Python classes -> proto3 text: the mapping a user relies on, and the refusals they will meet."""

# No `from __future__ import annotations`: classes defined inside tests must keep real
# annotations for typing.get_type_hints to resolve them. The old typing spellings (List,
# Optional, Union) are what users write too, so they are tested on purpose.
# ruff: noqa: UP006, UP007, UP035, UP045

import dataclasses
import datetime
import enum
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Dict, List, NewType, Optional, Union

import pytest

from krtlab.errors import MessageTypeError
from krtlab.protos import Registry, compile_protos, file_text, message_text


def _spec(cls, names=None):  # type: ignore[no-untyped-def]
    return message_text(cls, resolve_message=(names or {}).get)


def _fields(cls, names=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.name: f.proto_type for f in _spec(cls, names).fields}


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    HIGH = 2
    NONE = 0
    LOW = 1


class Rank(enum.IntEnum):
    FIRST = 1
    TENTH = 10


def test_scalars_in_declaration_order() -> None:
    class Scalars:
        """Every scalar."""

        count: int
        price: float
        name: str
        ok: bool
        raw: bytes

    spec = _spec(Scalars)
    assert spec.name == "Scalars"
    assert spec.text == (
        "// from Python class Scalars\n"
        "// Every scalar.\n"
        "message Scalars {\n"
        "  int64 count = 1;\n"
        "  double price = 2;\n"
        "  string name = 3;\n"
        "  bool ok = 4;\n"
        "  bytes raw = 5;\n"
        "}"
    )
    assert spec.depends_on == () and spec.imports == ()
    assert [(f.name, f.number) for f in spec.fields][:2] == [("count", 1), ("price", 2)]


def test_skips_private_and_classvar_and_accepts_zero_defaults() -> None:
    UserId = NewType("UserId", int)

    @dataclasses.dataclass
    class Row:
        user: UserId
        values: list[float] = dataclasses.field(default_factory=list)
        label: str = ""
        weight: float = 0.0
        level: Level = Level.NONE
        KIND: ClassVar[str] = "row"
        _cache: int = 3

    assert _fields(Row) == {
        "user": "int64",
        "values": "repeated double",
        "label": "string",
        "weight": "double",
        "level": "Level",
    }
    assert "Row(" not in _spec(Row).text  # the dataclass signature docstring is not a comment


def test_lists_and_maps() -> None:
    class Item:
        sku: str

    class Basket:
        a: list[int]
        b: List[str]
        c: Sequence[float]
        items: list[Item]
        m1: dict[str, float]
        m2: Dict[int, Item]
        m3: Mapping[bool, bytes]
        m4: dict[str, Color]

    assert _fields(Basket, {Item: "Item"}) == {
        "a": "repeated int64",
        "b": "repeated string",
        "c": "repeated double",
        "items": "repeated Item",
        "m1": "map<string, double>",
        "m2": "map<int64, Item>",
        "m3": "map<bool, bytes>",
        "m4": "map<string, Color>",
    }
    assert _spec(Basket, {Item: "Item"}).depends_on == ("Item",)


def test_enums_get_a_zero_value() -> None:
    class Paint:
        color: Color
        level: Level
        rank: Rank
        history: list[Color]

    spec = _spec(Paint)
    assert "    COLOR_UNSPECIFIED = 0;\n    RED = 1;\n    GREEN = 2;\n" in spec.text
    assert "COLOR_UNSPECIFIED was added: proto3 enums must start with a zero value" in spec.text
    # integer values are kept, the zero member goes first
    assert "    NONE = 0;\n    HIGH = 2;\n    LOW = 1;\n" in spec.text
    assert "    RANK_UNSPECIFIED = 0;\n    FIRST = 1;\n    TENTH = 10;\n" in spec.text
    assert spec.text.count("enum Color {") == 1  # two fields, one nested enum
    by_name = {f.name: f for f in spec.fields}
    assert by_name["color"].enum == (("RED", 1), ("GREEN", 2))
    assert by_name["history"].enum == (("RED", 1), ("GREEN", 2))
    assert by_name["level"].proto_type == "Level"


def test_message_references() -> None:
    reg = Registry(compile_protos({"public_input.proto": _PUBLIC}))
    Request = reg.message_class("entrypoint.Request")

    class Known:
        x: int

    class Tree:
        request: Request
        maybe: Optional[Known]
        other: Known | None
        parent: Optional["Tree"]
        children: list["Tree"]
        when: datetime.datetime

        class Leaf:
            value: float

        leaves: list[Leaf]

    spec = _spec(Tree, {Known: "entrypoint.Known"})
    assert _fields(Tree, {Known: "entrypoint.Known"}) == {
        "request": "entrypoint.Request",
        "maybe": "entrypoint.Known",
        "other": "entrypoint.Known",
        "parent": "Tree",
        "children": "repeated Tree",
        "when": "google.protobuf.Timestamp",
        "leaves": "repeated Leaf",
    }
    assert "  // from Python class Leaf\n  message Leaf {\n    double value = 1;\n  }" in spec.text
    assert set(spec.depends_on) == {"entrypoint.Request", "entrypoint.Known"}
    assert set(spec.imports) == {"public_input.proto", "google/protobuf/timestamp.proto"}


def _refusal(cls, names=None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(MessageTypeError) as info:
        _spec(cls, names)
    assert isinstance(info.value, TypeError)
    return str(info.value)


class Plain:
    x: int


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (Optional[int], "no presence in protobuf 3.13 (the kre-py runner); use a plain int (0 "),
        (int | None, "use a plain int (0 means unset) or a wrapper message"),
        (Optional[str], "use a plain str ('' means unset)"),
        (Optional[list[int]], "drop Optional: an empty list or dict means unset"),
        (Optional[Color], "drop Optional"),
        (Any, "needs one concrete type; use bytes"),
        (object, "needs one concrete type"),
        (tuple[int, int], "use list[T] for a sequence of one type"),
        (tuple, "use list[T]"),
        (set[int], "proto3 has no sets; use list[...]"),
        (frozenset, "use list[...]"),
        (list[list[int]], "proto3 has no nested lists; wrap the inner list in a message"),
        (list, "give the element type"),
        (dict, "give key and value types"),
        (dict[float, int], "map keys must be int, str or bool"),
        (dict[str, list[int]], "map values must be a scalar, an Enum or a message class"),
        (Union[int, str], "a proto3 field has one type"),
        (list[Optional[int]], "only scalars, Enums and messages go here"),
        (datetime.date, "use datetime.datetime"),
        (complex, "use two float fields"),
        (Mapping, "give key and value types"),
        (typing.Literal["a"], "only scalars, Enums and messages go here"),
        (Plain, "class Plain is not a message yet; turn it into one first"),
    ],
)
def test_refusals_name_class_field_type_and_fix(hint: Any, expected: str) -> None:
    cls = type("Bad", (), {"__annotations__": {"ok": int, "field": hint}})
    text = _refusal(cls)
    assert text.startswith("Field 'field' of class Bad has type "), text
    assert expected in text


def test_refused_type_is_named() -> None:
    class Bad:
        value: Optional[int]

    assert _refusal(Bad).startswith(
        "Field 'value' of class Bad has type Optional[int], which cannot be a proto3 field:"
    )


def test_non_zero_defaults_are_refused() -> None:
    @dataclasses.dataclass
    class WithDefault:
        qty: int = 1

    assert "has default 1, but proto3 fields have no defaults" in _refusal(WithDefault)

    class EnumDefault:
        level: Level = Level.HIGH

    assert "has default <Level.HIGH: 2>" in _refusal(EnumDefault)

    @dataclasses.dataclass
    class ListDefault:
        xs: list[int] = dataclasses.field(default_factory=lambda: [1])

    assert "proto3 fields have no defaults" in _refusal(ListDefault)


def test_name_clashes_are_refused() -> None:
    clash = type("Clash", (), {"__annotations__": {"foo_bar": int, "fooBar": int}})
    assert "protoc gives both the JSON name 'fooBar'" in _refusal(clash)

    class Red(enum.Enum):
        RED = 1

    same = type("Same", (), {"__annotations__": {"RED": int, "c": Red}})
    assert "defines 'RED' twice" in _refusal(same)

    accented = type("Accented", (), {"__annotations__": {"café": int}})
    assert "not a proto identifier" in _refusal(accented)

    class Status(enum.Enum):
        OK = 1
        STATUS_UNSPECIFIED = 2

    holder = type("Holder", (), {"__annotations__": {"s": Status}})
    assert "give the member STATUS_UNSPECIFIED the value 0" in _refusal(holder)


def test_proto_keywords_are_fine_as_field_names() -> None:
    cls = type("Kw", (), {"__annotations__": {"message": str, "option": int, "map": bool}})
    fs = compile_protos({"kw.proto": file_text("p", [_spec(cls)])})
    assert fs.messages("kw.proto") == ["p.Kw"]


def test_unresolvable_annotation_is_explained() -> None:
    class Later:
        x: "DoesNotExist"  # type: ignore[name-defined]  # noqa: F821

    assert "Cannot read the annotations of class Later" in _refusal(Later)


def test_file_text_compiles_with_the_public_proto() -> None:
    reg = Registry(compile_protos({"public_input.proto": _PUBLIC}))
    Request = reg.message_class("entrypoint.Request")

    @dataclasses.dataclass
    class Features:
        values: list[float]
        names: dict[str, int]
        color: Color
        at: datetime.datetime
        request: Optional[Request] = None

    @dataclasses.dataclass
    class Prediction:
        features: Features
        price: float = 0.0

    names = {Features: "Features"}
    specs = [_spec(Features), _spec(Prediction, names)]
    text = file_text("entrypoint", specs, ["google/protobuf/timestamp.proto"])
    assert text.startswith("// Generated by krtlab from Python classes")
    assert '\nsyntax = "proto3";\n\npackage entrypoint;\n\n' in text
    assert text.count('import "google/protobuf/timestamp.proto";') == 1
    assert 'import "public_input.proto";' in text
    fs = compile_protos({"public_input.proto": _PUBLIC, "internal_nodes.proto": text})
    assert fs.messages("internal_nodes.proto") == ["entrypoint.Features", "entrypoint.Prediction"]
    assert fs.message_line("entrypoint.Prediction") is not None

    pb = Registry(fs).module("internal_nodes.proto")
    msg = pb.Prediction(price=3.5)
    msg.features.values.extend([1.0, 2.0])
    msg.features.names["a"] = 1
    msg.features.color = pb.Features.GREEN
    msg.features.request.neighbourhood = "Harlem"
    again = pb.Prediction.FromString(msg.SerializeToString())
    assert again.features.request.neighbourhood == "Harlem"
    assert pb.Features.Color.Name(again.features.color) == "GREEN"


def test_file_text_validates() -> None:
    spec = _spec(Plain)
    with pytest.raises(MessageTypeError, match="Bad proto package"):
        file_text("not-a-package", [spec])
    with pytest.raises(MessageTypeError, match="Two messages are named 'Plain'"):
        file_text("p", [spec, spec])
    assert "package" not in file_text("", [spec])


def test_output_is_deterministic() -> None:
    class Both:
        a: dict[str, Color]
        b: datetime.datetime

    assert _spec(Both) == _spec(Both)
    assert file_text("p", [_spec(Both)]) == file_text("p", [_spec(Both)])


def test_typing_generics_are_named_readably() -> None:
    cls = type("G", (), {"__annotations__": {"x": typing.Tuple[int, str]}})
    assert "has type Tuple[int, str]" in _refusal(cls)


_PUBLIC = """syntax = "proto3";
package entrypoint;
message Request { string neighbourhood = 1; }
message Response { double price = 1; }
service Entrypoint { rpc MakePrediction (Request) returns (Response); }
"""
