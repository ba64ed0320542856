"""``literal_source``: the source of a value made only of literals, else None, never an error.

The set case was found by mypy (``make lint``): sets are written sorted by their items' text,
and an item without a literal source has no text, so sorting compared None with str.
"""

from __future__ import annotations

import pytest

from krtlab.authoring.handler_py import literal_source


@pytest.mark.parametrize(
    "value", [{1, object()}, frozenset({"a", len}), {(1, 2), (object(),)}, [{1, object()}]]
)
def test_a_set_with_an_item_without_literal_source_has_none(value):
    assert literal_source(value) is None


def test_sets_are_written_sorted_by_their_text():
    assert literal_source({3, 1, 2}) == "{1, 2, 3}"
    assert literal_source(frozenset({"b", "a"})) == 'frozenset({"a", "b"})'
    assert literal_source({"x", (1, 2)}) == '{"x", (1, 2)}'
