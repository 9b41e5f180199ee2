"""Request defaults to apply before validation (jsonschema-rs checks but never fills them).

The result is a tree: ``{"prop": {"default": value}}`` for a property with a default, and
``{"prop": {"properties": {...}}}`` for an object property whose own properties have defaults; those
apply only when the client sends that object. ``default: null`` is skipped: null means absent.
"""

from __future__ import annotations

from typing import Any

_PREFIX = "#/definitions/"


def defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return _walk(schema, schema.get("definitions", {}), frozenset())


def _deref(node: Any, definitions: dict[str, Any], seen: frozenset[str]) -> tuple[Any, frozenset[str]]:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith(_PREFIX):
        name = node["$ref"][len(_PREFIX):]
        if name in seen:
            return {}, seen
        seen = seen | {name}
        node = definitions.get(name, {})
    return node, seen


def _walk(node: Any, definitions: dict[str, Any], seen: frozenset[str]) -> dict[str, Any]:
    node, seen = _deref(node, definitions, seen)
    out: dict[str, Any] = {}
    properties = node.get("properties") if isinstance(node, dict) else None
    for name, sub in (properties or {}).items():
        sub, sub_seen = _deref(sub, definitions, seen)
        if not isinstance(sub, dict):
            continue
        if sub.get("default") is not None:
            out[name] = {"default": sub["default"]}
        elif nested := _walk(sub, definitions, sub_seen):
            out[name] = {"properties": nested}
    return out
