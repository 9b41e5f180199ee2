"""OpenAPI 3.1 for one REST dialect: every binding the dialect serves at its pin, as its clients see it.

Mirrors ``specgate.runtime.rest``: paths are ``mount + path`` with typed parameters; GET calls and
bodiless bindings take the other request properties as query parameters (the runtime coerces them),
the rest a JSON or multipart body; a success has the binding's status, and a ``list`` is wrapped in the
dialect's pagination envelope; errors take the dialect's error body and validation status.
"""

from __future__ import annotations

import re
from typing import Any

from specgate.core.ir import Api, Dialect
from specgate.core.versions import floor

from .openapi import OPENAPI, Components, common, tags

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_PARAM_TYPES = {
    "int": {"type": "integer", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "objectid": {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"},
    "string": {"type": "string"},
}
_LINK = {"type": ["string", "null"], "format": "uri"}
_PAGE_PARAMS = {  # what ``runtime.dialects.page_window`` reads, with its bounds
    "page_number": {"page": {"type": "integer", "minimum": 1, "default": 1},
                    "page_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}},
    "offset_limit": {"offset": {"type": "integer", "minimum": 0, "default": 0},
                     "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    "token_body": {"token": {"type": "string", "description": "nextToken of the previous page"},
                   "maximumResults": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
}  # fmt: skip
_ERRORS = {
    "detail": {"type": "object", "description": '`{"detail": message}`, or `{"<field>": [message]}` for a bad field',
               "properties": {"detail": {"type": "string"}}, "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    "message": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
    "message_errors": {"type": "object", "required": ["message"], "properties": {
        "message": {"type": "string"}, "errors": {"type": "object", "additionalProperties": {"type": "string"}}}},
}  # fmt: skip
_SCHEMES = {  # a dialect auth scheme → (security scheme name, definition)
    "bearer": ("bearer", {"type": "http", "scheme": "bearer", "description": "an API token (`specgate token create`) or a login token"}),
    "token": ("bearer", {"type": "http", "scheme": "bearer", "description": "an API token; `Token <token>` is accepted too"}),
    "basic": ("basic", {"type": "http", "scheme": "basic", "description": "access key and secret key"}),
    "raw": ("raw", {"type": "apiKey", "in": "header", "name": "Authorization", "description": "the token alone, no scheme word"}),
    "session": ("session", {"type": "apiKey", "in": "cookie", "name": "sessionid", "description": "the session a login sets"}),
}  # fmt: skip


def envelope(style: str, item: dict[str, Any]) -> dict[str, Any]:
    """The list body each pagination style renders (``runtime.dialects.envelope``)."""
    items = {"type": "array", "items": item}
    if style == "page_number":
        props = {"count": {"type": "integer"}, "next": _LINK, "previous": _LINK, "results": items}
    elif style == "offset_limit":
        props = {"count": {"type": "integer"}, "data": items, "next": _LINK, "previous": _LINK, "totalCount": {"type": "integer"}}
    else:
        props = {"data": items, "count": {"type": "integer"}, "total": {"type": "integer"}, "isTruncated": {"type": "boolean"},
                 "nextToken": {"type": ["string", "null"]}}  # fmt: skip
    return {"type": "object", "required": sorted(props), "properties": props}


def dialect(api: Api, name: str) -> dict[str, Any]:
    """The document of dialect ``name`` (KeyError when there is none)."""
    d = api.dialects[name]
    components, paths, services = Components(), {}, set()
    components.schemas["_error"] = _ERRORS[d.errors]
    schemes: dict[str, Any] = {}
    for scheme in d.auth_schemes:  # token and bearer are both sent as Bearer: the first named describes it
        schemes.setdefault(*_SCHEMES[scheme])
    security = [{s: []} for s in schemes]
    for endpoint, action in api.endpoints():
        service = endpoint.split(".")[0]
        if api.services[service].dialect != name:
            continue
        key = floor([v.key for v in action.versions], d.pin)
        v = next((v for v in action.versions if v.key == key), None)
        if v is None or v.http is None:
            continue
        services.add(service)
        path = d.mount + _PARAM.sub(lambda m: "{" + m[1] + "}", v.http.path)
        op = _operation(endpoint, v, d, components)
        if endpoint in d.anonymous or action.attributes.authorize is not True:
            op["security"] = [{}, *security]
        paths.setdefault(path, {})[v.http.method.lower()] = common(op, action, v)
    aliases = f" (also under {', '.join(f'`{a}`' for a in d.aliases)})" if d.aliases else ""
    description = (f"The {name} dialect at pin {d.pin}, mounted at `{d.mount or '/'}`{aliases}. "
                   f"Every operation is also `POST /v{d.pin}/service.action` in the RPC form.")  # fmt: skip
    return {
        "openapi": OPENAPI,
        "info": {"title": f"specgate {name} API", "version": str(d.pin), "description": description},
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": schemes},
        "security": security,
        "tags": tags(api, services),
    }


def _operation(endpoint: str, v, d: Dialect, components: Components) -> dict[str, Any]:
    http, service = v.http, endpoint.split(".")[0]
    request = components.schema(service, v.request) if v.request is not None else {"type": "object"}
    props = dict(request.get("properties") or {})
    required = set(request.get("required") or ())
    params = [{"name": m[1], "in": "path", "required": True,
               "schema": {**_PARAM_TYPES[m[2] or "string"], **_described(props.pop(m[1], {}))}}
              for m in _PARAM.finditer(http.path)]  # fmt: skip
    paging = _PAGE_PARAMS.get(http.pagination or "", {})
    in_query = http.method == "GET" or http.body == "none"
    for page_param, schema in paging.items():
        props.setdefault(page_param, schema)
    op: dict[str, Any] = {"operationId": endpoint, "tags": [service], "summary": endpoint, "x-specgate-version": str(v.key)}
    if in_query:
        params += [{"name": p, "in": "query", "required": p in required, "schema": s}
                   for p, s in sorted(props.items()) if _query_type(s)]  # fmt: skip
    elif props or "$ref" in request or http.body != "json":
        body, needed = _body(request, props, required)
        op["requestBody"] = {"required": needed, "content": _content(http.body, body)}
    if params:
        op["parameters"] = params
    op["responses"] = {str(http.status): _success(http, components.schema(service, v.response)),
                       str(d.validation_status): _error("the request failed validation"),
                       "default": _error("an error, in the dialect's error body")}  # fmt: skip
    return op


def _body(request: dict[str, Any], props: dict[str, Any], required: set[str]) -> tuple[dict[str, Any], bool]:
    """The body schema (the request less its path parameters) and whether a body is required."""
    if "$ref" in request and not props:
        return request, True  # a whole referenced schema: kept as it is
    body = {k: v for k, v in request.items() if k not in ("properties", "required")}
    body["properties"] = props
    if needed := sorted(required & set(props)):
        body["required"] = needed
    return body, bool(needed)


def _content(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind == "multipart":
        files = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
        return {"multipart/form-data": {"schema": {**body, "additionalProperties": files}}}
    if kind == "json-or-array":
        return {"application/json": {"schema": {"anyOf": [body, {"type": "array"}]}}}
    return {"application/json": {"schema": body}}


def _success(http, response: dict[str, Any]) -> dict[str, Any]:
    if http.kind == "none":
        return {"description": "done, no body"}
    if http.kind == "list":
        schema = envelope(http.pagination, response)
    elif http.kind == "array":
        schema = {"type": "array", "items": response}
    else:
        schema = response
    return {"description": "success", "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/_error"}}}}


def _described(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": schema["description"]} if isinstance(schema.get("description"), str) else {}


def _query_type(schema: dict[str, Any]) -> bool:
    """Whether a property can travel in a query string: scalars and arrays (objects cannot)."""
    types = schema.get("type")
    return not (types == "object" or (isinstance(types, list) and set(types) <= {"object", "null"}))
