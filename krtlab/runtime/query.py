"""The subset of MongoDB queries krtlab's local store answers (``ctx.db.find``).

Equality on top-level and dotted keys (an array matches when an element does), the field
operators below, and top-level ``$and``/``$or``/``$nor``. Anything else is refused with a
:class:`~krtlab.errors.SpecError` listing what is supported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compile_query"]

_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
_LOGICAL_OPS = ("$and", "$or", "$nor")
_MISSING = object()


def compile_query(query: dict[str, Any]) -> Any:
    """A predicate ``doc -> bool`` for a MongoDB-style query (checked now, not per document).

    Raises:
        SpecError: an operator krtlab's local store does not support, or a malformed query.
    """
    from krtlab.errors import SpecError

    if not isinstance(query, dict):
        raise SpecError(f"a query is a dict, not {type(query).__name__}")
    tests = []
    for key, cond in query.items():
        if key in _LOGICAL_OPS:
            if not isinstance(cond, list) or not cond:
                raise SpecError(f"{key} takes a non-empty list of queries")
            subs = [compile_query(q) for q in cond]
            tests.append(_logical(key, subs))
        elif key.startswith("$"):
            raise SpecError(_unsupported(key, _LOGICAL_OPS))
        else:
            tests.append(_field_test(key.split("."), cond))
    return lambda doc: all(t(doc) for t in tests)


def _unsupported(op: str, known: tuple[str, ...]) -> str:
    from krtlab.spec.suggest import did_you_mean

    hint = did_you_mean(op, known)
    return (
        f"query operator {op!r} is not supported by krtlab's local store"
        + (f"; {hint}" if hint else "")
        + f" (supported: {', '.join(_FIELD_OPS + _LOGICAL_OPS)})"
    )


def _logical(op: str, subs: list[Any]) -> Any:
    if op == "$and":
        return lambda doc: all(s(doc) for s in subs)
    if op == "$or":
        return lambda doc: any(s(doc) for s in subs)
    return lambda doc: not any(s(doc) for s in subs)


def _field_test(path: list[str], cond: Any) -> Any:
    from krtlab.errors import SpecError

    ops = isinstance(cond, dict) and any(str(k).startswith("$") for k in cond)
    if not ops:
        return lambda doc: _matches_eq(_resolve(doc, path), cond)
    checks = []
    for op, arg in cond.items():
        if op not in _FIELD_OPS:
            raise SpecError(_unsupported(str(op), _FIELD_OPS))
        if op in ("$in", "$nin") and not isinstance(arg, list):
            raise SpecError(f"{op} takes a list, not {arg!r}")
        checks.append((op, arg))

    def test(doc: Any) -> bool:
        values = _resolve(doc, path)
        return all(_apply(op, arg, values) for op, arg in checks)

    return test


def _apply(op: str, arg: Any, values: list[Any]) -> bool:
    if op == "$eq":
        return _matches_eq(values, arg)
    if op == "$ne":
        return not _matches_eq(values, arg)
    if op == "$in":
        return any(_matches_eq(values, a) for a in arg)
    if op == "$nin":
        return not any(_matches_eq(values, a) for a in arg)
    if op == "$exists":
        return bool(values) == bool(arg)
    for v in _flat(values):
        if _bracket(v) is not None and _bracket(v) == _bracket(arg):
            if (
                (op == "$gt" and v > arg)
                or (op == "$gte" and v >= arg)
                or (op == "$lt" and v < arg)
                or (op == "$lte" and v <= arg)
            ):
                return True
    return False


def _resolve(value: Any, path: list[str]) -> list[Any]:
    """Every value a dotted path reaches (arrays of documents fan out, as in MongoDB)."""
    if not path:
        return [value]
    key, rest = path[0], path[1:]
    if isinstance(value, dict):
        return _resolve(value[key], rest) if key in value else []
    if isinstance(value, list):
        if key.isdigit():
            index = int(key)
            return _resolve(value[index], rest) if index < len(value) else []
        return [found for item in value for found in _resolve(item, path)]
    return []


def _flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        out.extend(v) if isinstance(v, list) else out.append(v)
    return out


def _matches_eq(values: list[Any], wanted: Any) -> bool:
    if wanted is None and not values:
        return True  # {"x": None} matches documents without x, as in MongoDB
    return any(_same(v, wanted) for v in values) or any(
        _same(v, wanted) for v in _flat(values) if not isinstance(wanted, list)
    )


def _bracket(v: Any) -> str | None:
    """MongoDB only orders values of the same type bracket: numbers, strings or booleans."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b  # True is not 1 in MongoDB
    return bool(a == b) if _bracket(a) == _bracket(b) else a is None and b is None


# -- what a version recorded, for v.metrics() and `krtlab metrics` -------------------------------
