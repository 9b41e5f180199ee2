"""IR → the runtime's tables under src/specgate/_generated/.

- ``validators.json``: every distinct effective schema once, keyed by content hash, and the request
  defaults per request schema key (defaults are a function of the request schema alone).
- ``dispatch.json``: ``service.action`` → attributes and version entries in ascending numeric order,
  each naming its schema keys.
- ``__init__.py``: the input digest, which the runtime compares with both tables before serving.
"""

from __future__ import annotations

from typing import Any

from specgate.core import canonical
from specgate.core.ir import Api
from specgate.core.versions import floor

from . import GENERATED_DIR, banner
from .defaults import defaults


def emit(api: Api) -> list[tuple[str, bytes]]:
    schemas: dict[str, Any] = {}
    request_defaults: dict[str, Any] = {}
    endpoints: dict[str, Any] = {}

    def store(schema: dict[str, Any]) -> str:
        key = canonical.schema_key(schema)
        if schemas.setdefault(key, schema) != schema:
            raise ValueError(f"schema key collision on {key}")
        return key

    for name, action in api.endpoints():
        versions = []
        for v in action.versions:
            entry: dict[str, Any] = {"key": str(v.key), "draft": v.draft, "response": store(v.response)}
            for part, schema in (("request", v.request), ("batch_request", v.batch_request and v.batch_request.item)):
                if schema is not None:
                    entry[part] = key = store(schema)
                    if found := defaults(schema):
                        request_defaults[key] = found
            versions.append(entry)
        a = action.attributes
        endpoints[name] = {
            "attributes": {"internal": a.internal, "authorize": a.authorize, "allow_roles": list(a.allow_roles)},
            "versions": versions,
        }
    head = {"generated": banner(api.digest), "digest": api.digest}
    validators = {**head, "schemas": schemas, "defaults": request_defaults}
    dispatch = {**head, "max_version": str(api.max_version), "endpoints": endpoints}
    if api.dialects:
        dispatch["dialects"] = _dialects(api)
    init = f'"""{banner(api.digest)}"""\n\nDIGEST = "{api.digest}"\n'
    return [
        (f"{GENERATED_DIR}/__init__.py", init.encode()),
        (f"{GENERATED_DIR}/dispatch.json", _json(dispatch)),
        (f"{GENERATED_DIR}/validators.json", _json(validators)),
    ]


def _dialects(api: Api) -> dict[str, Any]:
    """Each dialect's profile and its route table: the binding of every action at the dialect's pin."""
    out = {name: {**d.to_data(), "routes": [], "services": []} for name, d in api.dialects.items()}
    for sname, service in api.services.items():
        if service.dialect in out:
            out[service.dialect]["services"].append(sname)
    for name, action in api.endpoints():
        dialect = api.services[name.split(".")[0]].dialect
        if dialect not in out:
            continue
        chosen = floor([v.key for v in action.versions], api.dialects[dialect].pin)
        version = next((v for v in action.versions if v.key == chosen), None)
        if version is not None and version.http is not None:
            out[dialect]["routes"].append({"endpoint": name, "key": str(version.key), **version.http.to_data()})
    return out


def _json(value: Any) -> bytes:
    return (canonical.dumps(value, indent=1) + "\n").encode()
