"""An OpenAPI 3.0.3 rendition of a 3.1 document, for readers that know only 3.0.

The reference page uses swagger-ui 4.15 (the ``swagger-ui-bundle`` package), which refuses
``openapi: 3.1.x``. The 3.1 document stays the canonical one; this keeps its paths, operations and
components and rewrites only the schemas: type lists become ``nullable``/``anyOf``, ``const`` an enum,
a ``$ref`` with annotations an ``allOf``, and 2020-12 keywords 3.0 lacks are dropped.
"""

from __future__ import annotations

import copy
from typing import Any

_KEEP = {"title", "multipleOf", "maximum", "minimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
         "uniqueItems", "maxProperties", "minProperties", "required", "enum", "type", "allOf", "oneOf", "anyOf", "not",
         "items", "properties", "additionalProperties", "description", "format", "default", "nullable", "readOnly",
         "writeOnly", "example", "deprecated", "exclusiveMinimum", "exclusiveMaximum"}  # fmt: skip
_ANNOTATIONS = ("description", "title", "default", "deprecated", "readOnly", "writeOnly")


def downgrade(document: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(document)
    out["openapi"] = "3.0.3"
    components = out.get("components") or {}
    components["schemas"] = {k: schema(v) for k, v in (components.get("schemas") or {}).items()}
    for item in out.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", ()):
                param["schema"] = schema(param["schema"])
            bodies = [op.get("requestBody") or {}, *op.get("responses", {}).values()]
            for media in (m for body in bodies for m in (body.get("content") or {}).values()):
                media["schema"] = schema(media["schema"])
    return out


def schema(node: Any) -> Any:
    """One 2020-12 schema as a 3.0 Schema Object."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        notes = {k: node[k] for k in _ANNOTATIONS if k in node}
        return {"allOf": [{"$ref": node["$ref"]}], **notes} if notes else {"$ref": node["$ref"]}
    out = {k: v for k, v in node.items() if k in _KEEP or k.startswith("x-")}
    if "const" in node:
        out["enum"] = [node["const"]]
    types = node.get("type")
    if isinstance(types, (list, str)):
        types = [types] if isinstance(types, str) else list(types)
        concrete = [t for t in types if t != "null"]
        out.pop("type")
        if "null" in types:
            out["nullable"] = True
        if len(concrete) == 1:
            out["type"] = concrete[0]
        elif concrete:
            out.setdefault("allOf", []).append({"anyOf": [{"type": t} for t in concrete]})
    for bound, keyword in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if not isinstance(out.get(bound), bool) and bound in out:
            out[keyword], out[bound] = out[bound], True
    if out.get("required") == []:
        del out["required"]
    for key in ("items", "not", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [schema(v) for v in out[key]]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: schema(v) for k, v in out["properties"].items()}
    return out
