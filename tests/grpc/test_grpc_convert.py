"""Messages -> dicts: every field kind, through the generated per-class converters (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenticaiframework.communication.grpc.convert import message_to_dict, to_message
from agenticaiframework.communication.grpc.descriptors import schema_from_protos

PROTO = """
syntax = "proto3";
package conv.v1;
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";

enum Color { COLOR_UNSPECIFIED = 0; RED = 1; BLUE = 2; }

message Inner { string label = 1; int64 weight = 2; }

message Tree { string name = 1; repeated Tree children = 2; }

message Everything {
  string text = 1;
  int64 big = 2;
  bytes blob = 3;
  bool flag = 4;
  double ratio = 5;
  Color color = 6;
  repeated string tags = 7;
  repeated Color colors = 8;
  repeated Inner inners = 9;
  map<string, int32> counts = 10;
  map<string, Inner> by_name = 11;
  Inner inner = 12;
  optional int32 maybe = 13;
  oneof choice { string word = 14; int32 number = 15; }
  google.protobuf.Struct extra = 16;
  google.protobuf.Timestamp when = 17;
  string from = 18;
  Tree tree = 19;
}

service Conv { rpc Echo(Everything) returns (Everything); }
"""


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> type:
    folder: Path = tmp_path_factory.mktemp("protos")
    path = folder / "conv.proto"
    path.write_text(PROTO)
    message_class: type = schema_from_protos([str(path)]).method("Conv", "Echo").request_type
    return message_class


def test_an_empty_message_has_every_field_without_presence(everything: type) -> None:
    assert message_to_dict(everything()) == {
        "text": "",
        "big": 0,
        "blob": b"",
        "flag": False,
        "ratio": 0.0,
        "color": "COLOR_UNSPECIFIED",
        "tags": [],
        "colors": [],
        "inners": [],
        "counts": {},
        "by_name": {},
        "from": "",
    }


def test_every_field_kind_converts_to_native_values(everything: type) -> None:
    message = to_message(
        everything,
        {
            "text": "hi",
            "big": 2**40,
            "blob": b"\x00\x01",
            "flag": True,
            "ratio": 0.5,
            "color": "BLUE",
            "tags": ["a", "b"],
            "colors": ["RED", "BLUE"],
            "inners": [{"label": "x", "weight": 1}],
            "counts": {"k": 3},
            "by_name": {"n": {"label": "y"}},
            "inner": {"label": "z", "weight": 7},
            "maybe": 0,
            "number": 5,
            "extra": {"nested": {"list": [1, "two"]}},
            "when": "2026-11-25T12:00:00Z",
            "from": "keyword-named field",
            "tree": {"name": "root", "children": [{"name": "leaf"}]},
        },
    )
    out = message_to_dict(message)
    assert out == {
        "text": "hi",
        "big": 2**40,
        "blob": b"\x00\x01",
        "flag": True,
        "ratio": 0.5,
        "color": "BLUE",
        "tags": ["a", "b"],
        "colors": ["RED", "BLUE"],
        "inners": [{"label": "x", "weight": 1}],
        "counts": {"k": 3},
        "by_name": {"n": {"label": "y", "weight": 0}},
        "inner": {"label": "z", "weight": 7},
        "maybe": 0,  # proto3 optional set to its default: present
        "number": 5,  # the oneof member that is set, and only that one
        "extra": {"nested": {"list": [1.0, "two"]}},
        "when": "2026-11-25T12:00:00Z",
        "from": "keyword-named field",
        "tree": {"name": "root", "children": [{"name": "leaf", "children": []}]},
    }
    # Declaration order, presence fields in their place.
    assert list(out)[11:15] == ["inner", "maybe", "number", "extra"]
    assert type(out["tags"]) is list and type(out["counts"]) is dict


def test_each_dict_is_new(everything: type) -> None:
    message = everything(tags=["a"])
    first, second = message_to_dict(message), message_to_dict(message)
    first["tags"].append("changed")
    assert second["tags"] == ["a"]
    assert message.tags == ["a"]


def test_unknown_enum_number_is_kept_as_a_number(everything: type) -> None:
    message = everything()
    message.color = 42  # open enums keep numbers they do not know
    assert message_to_dict(message)["color"] == 42
