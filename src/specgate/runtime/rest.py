"""The REST frontend: every dialect's bindings, served next to the RPC paths by the same handlers.

One call runs: mount → route (typed path parameters; 405 for a known path with another method) →
authentication by the dialect's schemes → request object (query parameters coerced to the schema's
types, the JSON or multipart body, path parameters) → the action's request validator → handler →
the dialect's rendering (status, list envelope, error body). Only here are exceptions turned into
REST responses, in the dialect's own error shape.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from specgate._generated import errors as E
from specgate.adapters.ports import StoreUnavailable
from specgate.core.errors import ApiError, RequestValidationError
from specgate.core.refs import root_properties
from specgate.core.versions import parse_key
from specgate.domain.identity import Identity
from specgate.domain.tokens import TokenError
from specgate.handlers.context import CallContext, Services

from . import dialects
from .registry import Handlers
from .request import parse_body, read_body
from .routes import Router, compile_route
from .tables import Tables
from .validate import Validators

log = logging.getLogger("specgate.rest")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass
class HttpInfo:
    """What a handler may read of the HTTP request, and the headers it may add to the answer."""

    method: str
    base_url: str  # scheme://host + the dialect's mount
    path: str
    query: dict[str, list[str]]
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (field, filename, content)
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Mount:
    dialect: str
    prefix: str
    profile: dict[str, Any]
    router: Router


class RestApp:
    def __init__(self, tables: Tables, validators: Validators, handlers: Handlers, services: Services):
        self.tables, self.validators, self.handlers, self.services = tables, validators, handlers, services
        mounts = []
        moved = mount_overrides(getattr(services.settings, "dialect_mounts", ""))
        for name, profile in tables.dialects.items():
            router = Router([compile_route(r, profile["trailing_slash"]) for r in profile["routes"]])
            for prefix in (moved.get(name, profile["mount"]), *profile["aliases"]):
                mounts.append(Mount(name, prefix, profile, router))
        self.mounts = sorted(mounts, key=lambda m: -len(m.prefix))  # the longest prefix claims a path first
        self._root_heads: dict[str, set[str]] = {}
        self._props: dict[str, dict[str, Any]] = {}

    def mount_of(self, path: str) -> tuple[Mount, str] | None:
        for m in self.mounts:
            if not m.prefix or path == m.prefix or path.startswith(m.prefix + "/"):
                return m, path[len(m.prefix):] or "/"
        return None

    def claims(self, path: str) -> bool:
        """Whether a path is this frontend's: anything under a dialect's prefix, and at the root the paths
        whose first segment starts some route of the root-mounted dialect (``/tasks/…``, ``/jobs/…``);
        the rest stays RPC's, with RPC's errors."""
        found = self.mount_of(path)
        if found is None:
            return False
        mount, rest = found
        return bool(mount.prefix) or rest.split("/")[1] in self._heads(mount)

    def _heads(self, mount: Mount) -> set[str]:
        heads = self._root_heads.get(mount.dialect)
        if heads is None:
            heads = self._root_heads[mount.dialect] = {
                r.template.split("/")[1] for r in mount.router.routes if not r.template.startswith("/{")
            }
        return heads

    def _properties(self, schema_key: str | None) -> dict[str, Any]:
        """The request's top-level properties (query and form values are coerced to their types)."""
        if not schema_key:
            return {}
        found = self._props.get(schema_key)
        if found is None:
            found = self._props[schema_key] = root_properties(self.tables.schemas[schema_key])
        return found

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        found = self.mount_of(scope["path"])
        if found is None:
            await _send(send, 404, orjson.dumps({"detail": "Not found."}), {})
            return
        mount, rest = found
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies: dict[str, str] = {}
        out_headers: dict[str, str] = {}
        try:
            status, payload = await self._run(mount, rest, scope, receive, headers, cookies, out_headers)
            body = b"" if payload is None else orjson.dumps(payload)
        except Exception as error:  # the one catch-all: every failure becomes the dialect's error body
            status, body = self._failure(mount, error)
        extra = {**out_headers}
        await _send(send, status, body, extra, cookies)

    async def _run(self, mount: Mount, rest: str, scope: dict, receive: Any, headers: dict[str, str],
                   cookies: dict[str, str], out_headers: dict[str, str]) -> tuple[int, Any]:  # fmt: skip
        method = scope["method"]
        route, params, other = mount.router.find(method, rest)
        if route is None:
            if other:
                raise ApiError(E.METHOD_NOT_ALLOWED, text=f'Method "{method}" not allowed.')
            raise ApiError(E.RESOURCE_NOT_FOUND, text="Not found.")
        endpoint = self.tables.endpoints[route.endpoint]
        key = parse_key(route.key)
        call_id = os.urandom(16).hex()
        scope["specgate.call"] = (call_id, route.endpoint, route.key)
        entry = endpoint.versions[key]
        identity = await self._authenticate(mount.profile, route.endpoint, endpoint.authorize, headers, method)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        info = HttpInfo(method, _base_url(scope, headers) + mount.prefix, scope["path"], query)
        body = await read_body(receive, headers, self.services.settings.max_body_bytes)
        props = self._properties(entry.request)
        data: dict[str, Any] = _coerce(query, props)
        binding = route.binding
        if binding["body"] == "multipart":
            fields, info.files = await _multipart(scope, body, headers)
            data.update(_coerce(fields, props))
        elif binding["body"] != "none" and body.strip():
            if body.strip()[:1] != b"{":
                raise ApiError(E.BAD_REQUEST, "the JSON body must be an object")
            data.update(parse_body(body))
        for name, kind in route.params.items():
            data[name] = _int(params[name]) if kind == "int" else params[name]
        window = None
        if binding["kind"] == "list":
            style = binding["pagination"]
            window = dialects.page_window(style, {p: data.pop(p, None) for p in dialects.PAGE_PARAMS[style]})
        if entry.request is not None:
            try:
                data = self.validators.check(entry.request, data, has_nulls=None if binding["nulls"] == "drop" else False)
            except RequestValidationError as e:
                raise ApiError(E.VALIDATION_ERROR, e.message, field=e.path or "(body)") from None
        if window is not None:
            data["_page"] = window
        handler = self.handlers.pick(route.endpoint, key)
        if handler is None:
            raise ApiError(E.NOT_IMPLEMENTED, endpoint=route.endpoint, version=route.key)
        client = headers.get("x-real-ip") or (scope.get("client") or ("",))[0]
        ctx = CallContext(call_id, route.endpoint, key, key, identity, self.services, headers, client, cookies, info)
        result = await handler(ctx, data)
        out_headers.update(info.response_headers)
        kind, status = binding["kind"], binding["status"]
        if self.services.settings.validate_responses and kind in ("object", "list"):
            for item in (result or {}).get("items", ()) if kind == "list" else [result or {}]:
                self.validators.check_response(entry.response, item)
        if kind == "none":
            return status, None
        if kind == "list":
            url = info.base_url + rest
            return status, dialects.envelope(binding["pagination"], result or {}, window, url, query)
        return status, result if result is not None else {}

    async def _authenticate(self, profile: dict[str, Any], endpoint: str, required: bool, headers: dict[str, str],
                            method: str) -> Identity | None:  # fmt: skip
        cookies = _cookies(headers.get("cookie", ""))
        found = dialects.credentials(profile["auth"]["schemes"], headers, cookies)
        if found and found[0] == "session" and method not in ("GET", "HEAD", "OPTIONS"):
            # a browser sends cookies by itself: an unsafe call must also prove it read the CSRF cookie
            token = cookies.get("csrftoken")
            if not token or headers.get("x-csrftoken") != token:
                raise ApiError(E.FORBIDDEN, text="CSRF Failed: CSRF token missing or incorrect.")
        anonymous = endpoint in profile["auth"]["anonymous"] or not required
        if found is None:
            if anonymous:
                return None
            raise ApiError(E.MISSING_CREDENTIALS, text="Authentication credentials were not provided.")
        kind, value = found
        try:
            if kind == "basic":
                key, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
                if not sep:
                    raise ApiError(E.MALFORMED_CREDENTIALS)
                return await self.services.accounts.check_credentials(key, secret)
            identity = await self.services.extra["api_tokens"].resolve(value)
            if identity is None:
                identity, _ = self.services.tokens.decode(value)
                if await self.services.accounts.is_revoked(identity.session_id):
                    raise TokenError("revoked token")
                if not await self.services.extra["api_tokens"].alive(identity.credential):
                    raise TokenError("revoked credentials")
            return identity
        except (TokenError, binascii.Error, UnicodeDecodeError):
            if anonymous:
                return None
            raise ApiError(E.INVALID_TOKEN, text="Invalid token.") from None
        except ApiError:
            if anonymous:
                return None
            raise

    def _failure(self, mount: Mount, error: Exception) -> tuple[int, bytes]:
        if isinstance(error, StoreUnavailable):
            error = ApiError(E.SERVICE_UNAVAILABLE, str(error))
        if not isinstance(error, ApiError):
            log.exception("unexpected error in a %s call", mount.dialect, exc_info=error)
            error = ApiError(E.INTERNAL_ERROR)
        status = dialects.error_status(mount.profile, error)
        return status, orjson.dumps(dialects.error_body(mount.profile["errors"], error))


def mount_overrides(text: str) -> dict[str, str]:
    """``SPECGATE_DIALECT_MOUNTS=cvat=/cvat/api,qarnot=/qarnot``: where a deployment serves a dialect instead."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, prefix = item.partition("=")
        if not sep or (prefix and (not prefix.startswith("/") or prefix.endswith("/"))):
            raise ValueError(f"SPECGATE_DIALECT_MOUNTS: {item!r} is not name=/prefix")
        out[name.strip()] = prefix
    return out


def _coerce(values: dict[str, list[str] | str], props: dict[str, Any]) -> dict[str, Any]:
    """Query or form strings to the request schema's types (Python's True/False spelling included)."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        items = raw if isinstance(raw, list) else [raw]
        schema = props.get(name) or {}
        types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
        if "array" in types:
            out[name] = [_scalar(v, ((schema.get("items") or {}).get("type"))) for v in items]
        else:
            out[name] = _scalar(items[-1], next((t for t in types if t and t != "null"), None))
    return out


def _int(text: str) -> int | str:
    """An integer from a path or query string; past 64 bits it stays a string, for the validator to name
    (as a number it would break every JSON encoder after it)."""
    number = int(text)
    return number if -(2**63) <= number < 2**64 else text


def _scalar(value: str, kind: Any) -> Any:
    try:
        if kind == "integer":
            return _int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # the validator names the field
    if kind == "boolean":
        low = value.lower()
        return True if low in _TRUE else False if low in _FALSE else value
    return value


async def _multipart(scope: dict, body: bytes, headers: dict[str, str]) -> tuple[dict[str, list[str]], list[tuple[str, str, bytes]]]:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, replay).form(max_files=10_000, max_fields=10_000)
    except Exception as e:  # a malformed multipart body is the client's error
        raise ApiError(E.BAD_REQUEST, f"malformed multipart body: {e}") from None
    fields: dict[str, list[str]] = {}
    files: list[tuple[str, str, bytes]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, value.filename or "", await value.read()))
        else:
            fields.setdefault(name, []).append(value)
    await form.close()
    return fields, files


def _base_url(scope: dict, headers: dict[str, str]) -> str:
    """Where the client reached us: behind a proxy or load balancer, as its X-Forwarded-* headers say."""
    host = headers.get("x-forwarded-host") or headers.get("host") or "{}:{}".format(*(scope.get("server") or ("localhost", 80)))
    scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
    return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}"


def _cookies(raw: str) -> dict[str, str]:
    out = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


async def _send(send: Any, status: int, body: bytes, headers: dict[str, str], cookies: dict[str, str] | None = None) -> None:
    raw = [(b"content-length", str(len(body)).encode())]
    if body:
        raw.append((b"content-type", b"application/json"))
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [(b"set-cookie", _set_cookie(k, v)) for k, v in (cookies or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _set_cookie(name: str, value: str) -> bytes:
    """An empty value clears the cookie; the CSRF cookie stays readable by scripts, as CSRF needs."""
    # flags first and SameSite last: clients that read joined Set-Cookie headers (cvat-sdk) choke on "HttpOnly,"
    flags = ("" if name == "csrftoken" else "; HttpOnly") + ("; Max-Age=0" if value == "" else "")
    return f"{name}={value}{flags}; Path=/; SameSite=Lax".encode("latin-1")
