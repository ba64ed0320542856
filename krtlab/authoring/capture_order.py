"""The order of a captured module's items, and where each line came from (internal).

Python ran the notebook in one order; the exported module must run its pieces in an order that
gives each statement what it had: every item after what it needs, the bindings of one name in
the order the notebook made them, and a statement that used a name's earlier binding before the
later one. Among the orders that allow, the module reads best with constants first, then the
notebook's own order, the node's functions last.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence

from krtlab.authoring.capture_common import Item

__all__ = ["order_items", "origins"]


def _after(items: Sequence[Item], uses: Sequence[tuple[tuple, str, tuple]]) -> dict:
    """For each item's key, the keys of the items that must come before it."""
    seq = {item.key: i for i, item in enumerate(items)}
    by_key = {item.key: item for item in items}
    before: dict[tuple, set[tuple]] = {i.key: {k for k in i.needs if k in seq} for i in items}
    binders: dict[str, list[Item]] = {}
    for item in items:
        for name in item.names:
            binders.setdefault(name, []).append(item)
    for group in binders.values():  # one name bound twice: in the notebook's order
        group.sort(key=lambda i: (i.pos, i.kind in ("const", "value"), seq[i.key]))
        for a, b in itertools.pairwise(group):
            before[b.key].add(a.key)
    for user, name, used in uses:  # used the earlier binding: before the later one
        u, d = by_key[user], by_key[used]
        for later in binders.get(name, ()):
            if later is not d and later is not u and later.pos > d.pos and u.pos < later.pos:
                before[later.key].add(user)
    for key, keys in before.items():
        keys.discard(key)
    return before


def order_items(
    items: Mapping[tuple, Item], uses: Sequence[tuple[tuple, str, tuple]]
) -> list[Item]:
    """The items in an order that runs (see the module docstring); ``uses`` lists, for each
    statement that ran, ``(its key, a name, the key of the binding it used)``."""
    listed = list(items.values())
    seq = {item.key: i for i, item in enumerate(listed)}
    before = _after(listed, uses)
    after: dict[tuple, list[tuple]] = {k: [] for k in before}
    for key, keys in before.items():
        for k in keys:
            after[k].append(key)
    missing = {k: len(keys) for k, keys in before.items()}

    def rank(item: Item) -> tuple:
        kind = 2 if item.root else 0 if item.kind == "const" else 1
        return (kind, item.pos, seq[item.key])

    ready = [(rank(i), i.key) for i in listed if not missing[i.key]]
    heapq.heapify(ready)
    done: list[Item] = []
    placed: set[tuple] = set()
    while len(done) < len(listed):
        if not ready:  # a cycle (functions calling each other at import): the notebook's order
            best = min((i for i in listed if i.key not in placed), key=rank)
            ready.append((rank(best), best.key))
        _, key = heapq.heappop(ready)  # never twice: a key is pushed once, and only unplaced
        placed.add(key)
        done.append(items[key])
        for other in after[key]:
            missing[other] -= 1
            if missing[other] == 0 and other not in placed:
                heapq.heappush(ready, (rank(items[other]), other))
    return done


def origins(item: Item, text: str) -> tuple[str, ...]:
    """Where each line of an item's rendered ``text`` came from ("" where nothing does)."""
    source = item.source
    if source is None:
        return ("",) * len(text.splitlines())
    # the rendered text is the source's lines without the dropped ones (renames keep lines)
    lines = range(1, len(source.text.splitlines()) + 1)
    return tuple(source.where(i) for i in lines if not any(i in r for r in item.drop))
