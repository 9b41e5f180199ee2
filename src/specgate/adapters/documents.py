"""Document rules both store adapters keep, so SQLite and MongoDB store, compare and traverse values
alike: what a storable document is, null dropping, MongoDB's cross-type order, and dotted-path
traversal with array semantics."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import orjson

from specgate.adapters.ports import Document


def clean(value: Any) -> Any:
    """Drop None-valued keys recursively (through lists too); tuples become lists. Scalars are kept
    without a call: most of a document's values are strings and numbers."""
    if isinstance(value, dict):
        for key in value:
            if type(key) is not str and not isinstance(key, str):
                raise TypeError(f"document keys must be strings, not {key!r}")
        return {k: v if type(v) in _SCALARS else clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _SCALARS else clean(v) for v in value]
    return value


_SCALARS = (str, int, float, bool)


def prepare(doc: Document) -> Document:
    if not isinstance(doc, dict):
        raise TypeError("a document is a dict")
    if not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ValueError("a document needs a non-empty string 'id'")
    if not isinstance(doc.get("company"), str):
        raise ValueError("a document needs a string 'company'")
    if "_id" in doc:
        raise ValueError("'_id' is reserved; documents use 'id'")
    return clean(doc)


def value_rank(value: Any) -> tuple:
    """Sort key across types in MongoDB's order: numbers, strings, objects, arrays, booleans."""
    if isinstance(value, bool):
        return (4, value)
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, dict):
        return (2, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return (3, orjson.dumps(value))


def distinct_sorted(values: Iterable[Any]) -> list[Any]:
    seen: dict[tuple, Any] = {}
    for value in values:
        if value is None:
            continue
        seen.setdefault(value_rank(value), value)
    return [seen[key] for key in sorted(seen)]


def path_values(node: Any, segments: Sequence[str]) -> Iterable[Any]:
    """Values at a dotted path with MongoDB's traversal: arrays along the way are walked element-wise,
    and an array at the end contributes its elements."""
    if not segments:
        if isinstance(node, list):
            yield from node
        else:
            yield node
        return
    if isinstance(node, dict):
        if segments[0] in node:
            yield from path_values(node[segments[0]], segments[1:])
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and segments[0] in item:
                yield from path_values(item[segments[0]], segments[1:])
