"""OpenAPI 3.1 from the compiled IR: the RPC form of every action at one pin, or one REST dialect.

Generated from ``specgate.core.ir.Api`` (the lock or a fresh compile), never from HOCON, so the document
is exactly what the gateway validates. Effective schemas are draft-07; OpenAPI 3.1 reads JSON Schema
2020-12, so ``to_2020`` rewrites what the two read differently:

- ``$schema`` is dropped (the document's dialect is OpenAPI's own 2020-12 dialect);
- ``definitions`` move to ``components/schemas`` as ``<service>__<name>``, every ``#/definitions/x``
  follows them (a name whose body differs within one document gets a content-hash suffix);
- ``dependencies`` splits into ``dependentRequired`` (lists) and ``dependentSchemas`` (schemas);
- array ``items`` becomes ``prefixItems`` and ``additionalItems`` becomes ``items``;
- ``$ref`` siblings are ignored by draft-07 but applied by 2020-12: only annotations are kept.

Pins follow the server (``specgate.core.versions.routable``): the floor rule over released keys, and an
action that exists only as a draft is listed from the max version, as the gateway serves it.
"""

from __future__ import annotations

import re
from typing import Any

from specgate.core import canonical
from specgate.core.ir import Api, EndpointVersion
from specgate.core.versions import Routing, Version, routable

OPENAPI = "3.1.0"
_DEFS = "#/definitions/"
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]")
_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema")  # fmt: skip
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas")
_REF_ANNOTATIONS = {"$ref", "description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment"}

META = {
    "type": "object",
    "description": "ClearML's call metadata: call id, endpoint and versions, result code, subcode and message.",
    "required": ["id", "trx", "endpoint", "result_code", "result_subcode", "result_msg"],
    "properties": {
        "id": {"type": "string", "description": "call id"},
        "trx": {"type": "string", "description": "transaction id (X-ClearML-Trx, else the call id)"},
        "endpoint": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "requested_version": {"type": ["string", "number", "null"]},
                "actual_version": {"type": ["string", "number", "null"], "description": "the key that served the call"},
            },
        },
        "result_code": {"type": "integer", "description": "the HTTP status"},
        "result_subcode": {"type": "integer", "description": "the catalogue subcode; 0 on success"},
        "result_msg": {"type": "string"},
        "error_stack": {"type": ["string", "null"]},
        "error_data": {"type": "object"},
    },
}


class Components:
    """``components/schemas`` of one document: each effective schema's definitions, named per service."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._bodies: dict[str, str] = {}  # component name → content digest of its draft-07 body

    def schema(self, service: str, effective: dict[str, Any] | None) -> dict[str, Any]:
        """An effective draft-07 schema as an OpenAPI 3.1 schema whose definitions live here."""
        if effective is None:
            return {"type": "object"}
        names: dict[str, str] = {}
        definitions = effective.get("definitions") or {}
        for name in sorted(definitions):
            names[name] = self._claim(f"{service}__{_NAME_BAD.sub('_', name)}", definitions[name])
        for name in sorted(definitions):
            self.schemas.setdefault(names[name], to_2020(definitions[name], names))
        return to_2020({k: v for k, v in effective.items() if k not in ("$schema", "definitions")}, names)

    def _claim(self, wanted: str, body: dict[str, Any]) -> str:
        fingerprint = canonical.digest(body)
        if self._bodies.setdefault(wanted, fingerprint) == fingerprint:
            return wanted
        other = f"{wanted}__{fingerprint[:8]}"
        self._bodies[other] = fingerprint
        return other


def to_2020(node: Any, names: dict[str, str]) -> Any:
    """One draft-07 subschema in 2020-12 terms, with ``#/definitions/x`` pointed at ``names[x]``."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    ref = out.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(_DEFS) and ref[len(_DEFS):] in names:
            out["$ref"] = "#/components/schemas/" + names[ref[len(_DEFS):]]
        out = {k: v for k, v in out.items() if k in _REF_ANNOTATIONS}  # draft-07 ignores the rest
    if "definitions" in out:
        out["$defs"] = out.pop("definitions")
    deps = out.pop("dependencies", None)
    if isinstance(deps, dict):
        lists = {k: v for k, v in deps.items() if isinstance(v, list)}
        schemas = {k: v for k, v in deps.items() if not isinstance(v, list)}
        if lists:
            out["dependentRequired"] = lists
        if schemas:
            out["dependentSchemas"] = schemas
    if isinstance(out.get("items"), list):
        out["prefixItems"] = out.pop("items")
        if "additionalItems" in out:
            out["items"] = out.pop("additionalItems")
    else:
        out.pop("additionalItems", None)  # without array items draft-07 ignores it
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = to_2020(out[key], names)
    for key in _MANY:
        if isinstance(out.get(key), list):
            out[key] = [to_2020(v, names) for v in out[key]]
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {k: to_2020(v, names) for k, v in out[key].items()}
    return out


def served(api: Api, pin: Version, *, drafts: bool = False):
    """(``service.action``, action, the version serving ``pin``) for every action the pin reaches."""
    for name, action in api.endpoints():
        keys = [v.key for v in action.versions]
        key = Routing(routable(keys, drafts=drafts, max_version=api.max_version)).pick(pin)
        if key is not None:
            yield name, action, next(v for v in action.versions if v.key == key)


def versions(api: Api, *, drafts: bool = False) -> list[Version]:
    """The pins worth offering, newest first: every released key up to the max version (and drafts)."""
    keys = {v.key for name, a in api.endpoints() if not api.services[name.split(".")[0]].dialect for v in a.versions}
    return sorted({k for k in keys if k <= api.max_version or (drafts and k.is_draft)} | {api.max_version}, reverse=True)


def rpc(api: Api, pin: Version | None = None, *, drafts: bool = False) -> dict[str, Any]:
    """The RPC document at ``pin`` (default: the max version): ``POST /vX.Y/service.action`` each."""
    pin = pin or api.max_version
    components, paths, services = Components(), {}, set()
    components.schemas["_meta"] = META  # no service is named with a leading underscore
    for name, action, v in served(api, pin, drafts=drafts):
        services.add(service := name.split(".")[0])
        request, response = components.schema(service, v.request), _rpc_data(v, components.schema(service, v.response))
        paths[f"/v{pin}/{name}"] = {"post": _rpc_operation(name, action, v, request, response, components)}
    return {
        "openapi": OPENAPI,
        "info": {"title": f"specgate RPC API {pin}", "version": str(pin), "description": _RPC_INFO.format(pin=pin)},
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": dict(RPC_SECURITY)},
        "security": [{"bearer": []}, {"basic": []}],
        "tags": tags(api, services),
    }


RPC_SECURITY = {
    "basic": {"type": "http", "scheme": "basic", "description": "access key and secret key (what `auth.login` takes)"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "the token `auth.login` returns, or an API token"},
}

_RPC_INFO = (
    "ClearML's RPC API as specgate serves it at pin {pin}. Each action is `POST /v{pin}/service.action` "
    "(GET with a JSON body works too) and answers ClearML's envelope `{{meta, data}}`; errors keep the envelope, "
    "with `meta.result_code` and `meta.result_subcode`. Each path shows the version key that serves this pin "
    "(the highest key at or below it). `null` means absent, and unknown top-level request keys are accepted."
)


def _rpc_data(v: EndpointVersion, response: dict[str, Any]) -> dict[str, Any]:
    """What ``data`` holds over RPC. A REST ``array`` binding's schema describes one element, and its RPC
    form answers the array; a ``list`` binding's RPC form answers the handler's page ``{items, total}``
    (the dialect's list envelope is rendered for REST only)."""
    kind = v.http.kind if v.http is not None else "object"
    if kind == "array":
        return {"type": "array", "items": response}
    if kind == "list":
        page = {"items": {"type": "array", "items": response}, "total": {"type": "integer"}}
        return {"type": "object", "properties": page}
    return response


def _rpc_operation(name: str, action, v: EndpointVersion, request: dict, response: dict, components: Components) -> dict:
    envelope = {"type": "object", "required": ["meta", "data"],
                "properties": {"meta": {"$ref": "#/components/schemas/_meta"}, "data": response}}  # fmt: skip
    error = {"type": "object", "properties": {"meta": {"$ref": "#/components/schemas/_meta"}, "data": {"type": "object"}}}
    body: dict[str, Any] = {"application/json": {"schema": request}}
    if not (v.request or {}).get("required"):
        body["application/json"]["example"] = {}  # try-it starts from an empty, valid call
    if v.batch_request is not None:  # one item as JSON, or many as json-lines
        lines = {"type": "string", "description": "one JSON object a line, each like the application/json body"}
        body = {"application/json": {"schema": components.schema(name.split(".")[0], v.batch_request.item)},
                "application/json-lines": {"schema": lines}}  # fmt: skip
    op: dict[str, Any] = {
        "operationId": name,
        "tags": [name.split(".")[0]],
        "summary": name,
        "requestBody": {"required": False, "content": body},
        "responses": {
            "200": {"description": "OK: the envelope with the action's response in `data`",
                    "content": {"application/json": {"schema": envelope}}},
            "default": {"description": "an error: the envelope with the code, subcode and message in `meta`",
                        "content": {"application/json": {"schema": error}}},
        },  # fmt: skip
        "x-specgate-version": str(v.key),
    }
    if action.attributes.authorize is not True:  # a token is checked when sent, never required
        op["security"] = [{}, {"bearer": []}, {"basic": []}]
    return common(op, action, v)


def common(op: dict[str, Any], action, v: EndpointVersion) -> dict[str, Any]:
    """Description, lifecycle and optional authentication, shared by the RPC and REST forms."""
    if v.description:
        op["description"] = v.description
    attrs = action.attributes
    if attrs.deprecated or attrs.sunset:
        op["deprecated"] = True
    if attrs.sunset:
        op["x-sunset"] = attrs.sunset
    if attrs.stability != "stable":
        op["x-stability"] = attrs.stability
    if attrs.internal:
        op["x-internal"] = True
    if v.draft:
        op["x-draft"] = True
    return op


def tags(api: Api, used: set[str]) -> list[dict[str, str]]:
    return [{"name": s, **({"description": api.services[s].description} if api.services[s].description else {})}
            for s in sorted(used)]  # fmt: skip


def dumps(document: dict[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, two-space indent, a final newline."""
    return (canonical.dumps(document, indent=2) + "\n").encode()
