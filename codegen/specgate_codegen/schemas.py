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


def _fix_types(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _fix_types(v) for k, v in node.items()}
        t = node.get("type", "")
        if t is None or isinstance(t, list):
            out["type"] = "null" if t is None else ["null" if x is None else x for x in t]
        return out
    if isinstance(node, list):
        return [_fix_types(v) for v in node]
    return node


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
