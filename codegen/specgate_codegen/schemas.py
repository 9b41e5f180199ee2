"""Effective JSON Schemas: one endpoint's request or response, made self-contained.

HOCON's unquoted ``null`` arrives as Python ``None`` (``type: [string, null]``) and becomes the JSON
Schema type ``"null"``; ``$schema`` is set to draft-07 explicitly; the definitions a schema reaches
through ``#/definitions/NAME`` (transitively) are copied under ``definitions``, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

DRAFT7 = "http://json-schema.org/draft-07/schema#"
_PREFIX = "#/definitions/"


@dataclass
class Effective:
    schema: dict[str, Any]
    missing: list[str] = field(default_factory=list)  # $ref strings that name no definition


# Keywords whose value is a subschema, a list of subschemas, or a map of names to subschemas. Only
# these are walked: data keywords (default, enum, const, examples, x-*) keep a "type" key as data.
_ONE = ("additionalProperties", "additionalItems", "items", "not", "if", "then", "else", "contains", "propertyNames")
_MANY = ("allOf", "anyOf", "oneOf", "items")
_MAP = ("properties", "patternProperties", "definitions", "dependencies")


def _fix_types(node: Any) -> Any:
    """HOCON ``null`` in a schema's ``type`` becomes ``"null"``, in every subschema and nowhere else."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    t = node.get("type", "")
    if t is None or isinstance(t, list):
        out["type"] = "null" if t is None else ["null" if x is None else x for x in t]
    for key in _ONE:
        if isinstance(node.get(key), dict):
            out[key] = _fix_types(node[key])
    for key in _MANY:
        if isinstance(node.get(key), list):
            out[key] = [_fix_types(v) for v in node[key]]
    for key in _MAP:
        if isinstance(node.get(key), dict):
            out[key] = {name: _fix_types(v) if isinstance(v, dict) else v for name, v in node[key].items()}
    return out


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` string in a schema, in document order."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def effective(schema: dict[str, Any], definitions: dict[str, Any]) -> Effective:
    closure: dict[str, Any] = {}
    missing: list[str] = []
    pending = list(refs(schema))
    while pending:
        ref = pending.pop(0)
        name = ref[len(_PREFIX):] if ref.startswith(_PREFIX) else None
        if name is None or not isinstance(definitions.get(name), dict):
            if ref not in missing:
                missing.append(ref)
            continue
        if name not in closure:
            closure[name] = definitions[name]
            pending.extend(refs(definitions[name]))
    body = _fix_types({k: v for k, v in schema.items() if k != "definitions"})
    out = {"$schema": DRAFT7, **body}
    if closure:
        out["definitions"] = {name: _fix_types(closure[name]) for name in sorted(closure)}
    return Effective(out, missing)


def meta_errors(schema: dict[str, Any]) -> list[str]:
    """Where a schema breaks the draft-07 meta-schema (a typo such as ``type: strng``)."""
    import jsonschema_rs

    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as e:
        path = ".".join(str(p) for p in e.instance_path)
        return [f"invalid JSON Schema at {path or '(root)'}: {e.message}"]
    return []
