"""Request validation: drop nulls, apply precomputed defaults, check with jsonschema-rs, make integers ints.

Validators are built once per distinct schema when the tables load. Request schemas are checked
leniently, as ClearML's server does: unknown top-level keys are accepted even where a spec says
``additionalProperties: false`` (the SDK sends ``"method": "get"`` in every body), and ``null`` means
absent. Formats are not asserted: the SDK sends ISO datetimes without a zone. JSON Schema's integers
include ``5.0`` and ``1e30`` (orjson reads integers past 64 bits as floats), so a valid request's
integer fields are made Python ints, and one outside 64 bits is refused: handlers slice, count and
store with them.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import orjson

from specgate.core.errors import EndpointNotFound, RequestValidationError
from specgate.core.versions import Version, VersionError, parse_pin

from .tables import Endpoint, Tables, VersionEntry


def drop_nulls(value: Any) -> Any:
    """A copy of ``value`` without null-valued object keys, at any depth (JSON containers only)."""
    t = type(value)
    if t is dict:
        return {k: drop_nulls(v) if type(v) in _CONTAINERS else v for k, v in value.items() if v is not None}
    if t is list:
        return [drop_nulls(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


def with_defaults(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``data`` with absent properties filled, copied only where something is added (never mutated).

    Nested defaults apply only inside objects the client sent.
    """
    out = data
    for name, spec in defaults.items():
        if "default" in spec:
            if name not in out:
                if out is data:
                    out = dict(data)
                value = spec["default"]
                out[name] = copy.deepcopy(value) if type(value) in _CONTAINERS else value
        elif type(sub := out.get(name)) is dict:
            filled = with_defaults(sub, spec["properties"])
            if filled is not sub:
                if out is data:
                    out = dict(data)
                out[name] = filled
    return out


def format_path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _lenient(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("additionalProperties") is False:
        return {k: v for k, v in schema.items() if k != "additionalProperties"}
    return schema


class Validators:
    """Compiled request validators for every endpoint version of the tables."""

    def __init__(self, tables: Tables):
        self.tables = tables
        keys = {
            key
            for e in tables.endpoints.values()
            for v in e.versions.values()
            for key in (v.request, v.batch_request)
            if key
        }
        self._request = {
            key: jsonschema_rs.Draft7Validator(_lenient(tables.schemas[key]), validate_formats=False) for key in keys
        }
        self._response: dict[str, Any] = {}  # built on first use: only dev and test check responses
        self._integers = {key: paths for key in keys if (paths := integer_paths(tables.schemas[key]))}

    def check_response(self, schema_key: str, data: Any) -> None:
        """Raise when a handler's answer breaks its response schema (a bug in the handler or spec)."""
        validator = self._response.get(schema_key)
        if validator is None:
            schema = self.tables.schemas[schema_key]
            validator = self._response[schema_key] = jsonschema_rs.Draft7Validator(schema, validate_formats=False)
        if not validator.is_valid(data):
            error = next(iter(validator.iter_errors(data)))
            path = format_path(list(error.instance_path)) or "(root)"
            raise ResponseValidationError(f"response breaks its schema at {path}: {error.message}")

    def entry(self, endpoint: str, version: str | Version) -> tuple[Endpoint, VersionEntry]:
        """The endpoint and the version entry serving a client pin (the floor rule)."""
        found = self.tables.endpoints.get(endpoint)
        try:
            pin = version if isinstance(version, Version) else parse_pin(version)
        except VersionError:
            raise EndpointNotFound(endpoint, str(version)) from None
        actual = found.routing.pick(pin) if found else None
        if actual is None:
            raise EndpointNotFound(endpoint, str(version))
        return found, found.versions[actual]

    def check(self, schema_key: str, payload: Any, *, has_nulls: bool | None = None) -> dict[str, Any]:
        """Validate one request body against a request schema; returns it with defaults applied.

        The payload is never mutated. ``has_nulls=False`` (a caller that saw the raw bytes) skips the
        null scan; most bodies have none, and copying a body only to drop nothing costs more than
        validating it.
        """
        if has_nulls is None:
            has_nulls = b"null" in orjson.dumps(payload)
        data = drop_nulls(payload) if has_nulls else payload
        if type(data) is not dict:
            raise RequestValidationError("", "request body must be a JSON object", "type")
        if found := self.tables.defaults.get(schema_key):
            data = with_defaults(data, found)
        validator = self._request[schema_key]
        if not validator.is_valid(data):  # twice as fast as validate(); the error is built only on failure
            try:
                validator.validate(data)
            except jsonschema_rs.ValidationError as e:
                raise _explain(e) from None
        for path in self._integers.get(schema_key, ()):
            data = _as_int(data, path, [])
        return data

    def validate_request(self, endpoint: str, version: str | Version, payload: Any) -> dict[str, Any]:
        _, entry = self.entry(endpoint, version)
        key = entry.request or entry.batch_request
        assert key is not None  # the compiler guarantees one of them
        return self.check(key, payload)


def integer_paths(root: dict[str, Any]) -> list[tuple[str, ...]]:
    """Where a request schema declares integers: property names, ``[]`` for array items, ``{}`` for the
    values of a map (``anyOf`` branches and ``$ref``s followed, recursive definitions cut at depth 8)."""
    defs, out = root.get("definitions", {}), set()

    def walk(schema: Any, path: tuple[str, ...]) -> None:
        for _ in range(32):
            if not (isinstance(schema, dict) and "$ref" in schema):
                break
            schema = defs.get(schema["$ref"].rsplit("/", 1)[-1])
        if not isinstance(schema, dict) or len(path) > 8:
            return
        kinds = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
        if "integer" in kinds:
            out.add(path)
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, (*path, name))
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], (*path, "{}"))
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], (*path, "[]"))
        for branch in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
            walk(branch, path)

    walk(root, ())
    return sorted(out, key=len)


def _as_int(node: Any, path: tuple[str, ...], where: list) -> Any:
    """``node`` with the numbers at ``path`` made ints (copied where changed, never mutated)."""
    if not path:
        kind = type(node)
        if kind is float and node.is_integer() or kind is int:
            if not -(2**63) <= node < 2**64:
                field = format_path(where)
                raise RequestValidationError(field, f"invalid field {field!r}: {node!r} is out of range for a 64-bit integer", "maximum")
            return int(node)
        return node
    head, rest = path[0], path[1:]
    if head == "[]" and type(node) is list:
        new = [_as_int(v, rest, [*where, i]) for i, v in enumerate(node)]
        return new if any(a is not b for a, b in zip(new, node)) else node
    if head == "{}" and type(node) is dict:
        new_map = {k: _as_int(v, rest, [*where, k]) for k, v in node.items()}
        return new_map if any(new_map[k] is not v for k, v in node.items()) else node
    if type(node) is dict and head in node:
        value = _as_int(node[head], rest, [*where, head])
        return node if value is node[head] else {**node, head: value}
    return node


class ResponseValidationError(RuntimeError):
    """A handler answered something its own response schema forbids."""


def _explain(e: jsonschema_rs.ValidationError) -> RequestValidationError:
    keyword = type(e.kind).__name__
    if keyword in ("AnyOf", "OneOfNotValid"):
        # one alternative claimed the instance (its `const` discriminator matched): explain that one
        claimed = [b for b in e.kind.context if b and not any(type(x.kind).__name__ == "Constant" for x in b)]
        if len(claimed) == 1:
            return _explain(claimed[0][0])
    parts = list(e.instance_path)
    if keyword == "Required":
        path = format_path([*parts, e.kind.property])
        return RequestValidationError(path, f"missing required field {path!r}", "required")
    path = format_path(parts)
    where = f"invalid field {path!r}" if path else "invalid request body"
    return RequestValidationError(path, f"{where}: {e.message}", keyword.lower())
