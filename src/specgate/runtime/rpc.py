"""The RPC frontend: ``[/vX.Y]/service.action`` as a raw ASGI app (the hot path skips Starlette).

One call runs: path grammar → version negotiation → endpoint (floor rule) → authentication and role →
body (JSON, query parameters, json-lines batches) → validation → handler → envelope. The order matches
ClearML's server: an unknown endpoint or missing credentials is reported before a malformed body.
Every failure becomes a catalogue error in the envelope; only here are exceptions turned into responses.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import traceback
from typing import Any

from specgate._generated import errors as E
from specgate.adapters.ports import StoreUnavailable
from specgate.core.errors import ApiError, RequestValidationError
from specgate.core.versions import Version, VersionError, parse_pin
from specgate.domain.api_tokens import PREFIX as API_TOKEN_PREFIX
from specgate.domain.identity import Identity
from specgate.domain.tokens import TokenError
from specgate.handlers.context import CallContext, Services

from . import async_calls, envelope
from .registry import Handlers
from .request import BATCH_TYPE, PATH, merge_query, parse_batch, parse_body, read_body
from .tables import Tables
from .validate import Validators

log = logging.getLogger("specgate.rpc")

VERSION_HEADERS = ("x-api-version", "x-clearml-api-version", "x-trains-api-version")
COOKIE = "clearml_token_basic"
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-allow-methods", b"GET, POST, PUT, OPTIONS"),
]


class Call:
    """The state of one call, filled in as the pipeline goes; enough to render any outcome."""

    __slots__ = ("id", "trx", "endpoint", "requested", "actual", "headers")

    def __init__(self, headers: dict[str, str]):
        self.id = os.urandom(16).hex()  # 32 hex digits as ClearML's, without uuid4's cost (4.6 us)
        self.headers = headers
        self.trx = headers.get("x-clearml-trx") or headers.get("x-trains-trx") or self.id
        self.endpoint = ""
        self.requested: Version | None = None
        self.actual: Version | None = None


class RpcApp:
    def __init__(self, tables: Tables, validators: Validators, handlers: Handlers, services: Services):
        self.tables, self.validators, self.handlers, self.services = tables, validators, handlers, services
        self.settings = services.settings
        self.default_pin = parse_pin(self.settings.default_version) if self.settings.default_version else tables.max_version
        # a REST dialect's actions keep an RPC form, versioned like their dialect (CVAT 2.80), not like ClearML
        self.dialect_pins = {
            service: parse_pin(profile["pin"]) for profile in tables.dialects.values() for service in profile.get("services", ())
        }
        # their list and array answers describe one item in the schema: not checkable as a whole over RPC
        self.unchecked = {r["endpoint"] for p in tables.dialects.values() for r in p["routes"] if r["kind"] in ("list", "array")}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] == "OPTIONS":
            await _send(send, 200, b"", _CORS)
            return
        if "content-encoding" in headers:
            text = f"Content encoding is not supported ({headers['content-encoding']})".encode()
            await _send(send, 415, text, [(b"content-type", b"text/plain; charset=utf-8")])
            return
        call = Call(headers)
        cookies: dict[str, str] = {}
        try:
            status, data = await self._run(call, scope, receive, headers, cookies)
            body = envelope.render(call.id, call.trx, call.endpoint, call.requested, call.actual, status, data=data)
        except Exception as error:  # the one catch-all: every failure is rendered as a catalogue error
            status, body = self._failure(call, error)
        scope["specgate.call"] = (call.id, call.endpoint, str(call.actual or call.requested or ""))
        extra = [(b"set-cookie", _cookie(k, v)) for k, v in cookies.items()]
        if call.actual is not None:
            extra.append((b"x-api-version", str(call.actual).encode()))
        await _send(send, status, body, [(b"content-type", b"application/json"), *extra, *_CORS])

    async def _run(self, call: Call, scope: dict, receive: Any, headers: dict[str, str], cookies: dict) -> tuple[int, dict]:
        path = scope["path"]
        match = PATH.fullmatch(path)
        if match is None:
            raise ApiError(E.BAD_REQUEST, text=f"Invalid request path {path}")
        call.endpoint = name = f"{match['service']}.{match['action']}"
        call.requested = pin = self._pin(match["version"], headers, self.dialect_pins.get(match["service"]))
        endpoint = self.tables.endpoints.get(name)
        actual = endpoint.routing.pick(pin) if endpoint else None
        if actual is None:
            raise ApiError(E.ENDPOINT_NOT_FOUND, text=f"Unable to find endpoint for name {name} and version {pin}")
        call.actual = actual
        entry = endpoint.versions[actual]
        body = await read_body(receive, headers, self.settings.max_body_bytes)
        identity = await self._authenticate(headers, scope, required=endpoint.authorize)
        if identity is not None and "*" not in endpoint.allow_roles and identity.role not in endpoint.allow_roles:
            raise ApiError(E.ROLE_NOT_ALLOWED, role=identity.role, allowed=endpoint.allow_roles)
        batch = headers.get("content-type", "").startswith(BATCH_TYPE)
        if entry.batch_request is not None:
            items = parse_batch(body) if batch else [parse_body(body)]
            data: Any = [self._validate(entry.batch_request, item, f" in batch item #{i}") for i, item in enumerate(items)]
        else:
            if batch:
                raise ApiError(E.BAD_REQUEST, f"{name} does not take json-lines batches")
            raw = merge_query(parse_body(body), scope.get("query_string", b"").decode("latin-1"))
            data = self._validate(entry.request, raw, "", has_nulls=b"null" in body)
        handler = self.handlers.pick(name, actual)
        if handler is None:
            raise ApiError(E.NOT_IMPLEMENTED, endpoint=name, version=str(actual))
        if async_calls.wanted(headers) and name != "async.result":
            await async_calls.submit(self.services, call.id, name, pin, actual, identity, data, headers)
            return 202, {"id": call.id}
        client = headers.get("x-real-ip") or (scope.get("client") or ("",))[0]
        ctx = CallContext(call.id, name, pin, actual, identity, self.services, headers, client, cookies)
        result = await handler(ctx, data)
        if result is None:  # not `or {}`: an empty array answer (a REST dialect's list) stays an array
            result = {}
        if self.settings.validate_responses and name not in self.unchecked:
            self.validators.check_response(entry.response, result)
        return 200, result

    def _pin(self, in_path: str | None, headers: dict[str, str], dialect_pin: Version | None = None) -> Version:
        raw = in_path or next((headers[h] for h in VERSION_HEADERS if headers.get(h)), None)
        if raw is None:
            return dialect_pin or self.default_pin
        try:
            pin = parse_pin(raw)
        except VersionError as e:
            raise ApiError(E.INVALID_VERSION, version=raw, reason=str(e)) from None
        top = max(self.tables.max_version, dialect_pin or self.tables.max_version)
        if self.settings.strict_versions and pin > top and not (self.settings.enable_drafts and pin.is_draft):
            raise ApiError(E.BAD_REQUEST, text=f"Invalid API version (max. supported version is {top})")
        return pin

    def _validate(self, schema_key: str, payload: dict, where: str, has_nulls: bool | None = None) -> dict:
        try:
            return self.validators.check(schema_key, payload, has_nulls=has_nulls)
        except RequestValidationError as e:
            raise ApiError(E.VALIDATION_ERROR, e.message + where, field=e.path or "(body)") from None

    async def _authenticate(self, headers: dict[str, str], scope: dict, required: bool) -> Identity | None:
        auth = headers.get("authorization") or ""
        if not auth:
            token = _cookie_value(headers.get("cookie", ""), COOKIE)
            if token:
                auth = f"Bearer {token}"
            elif required:
                raise ApiError(E.MISSING_CREDENTIALS)
            else:
                return None
        scheme, _, value = auth.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                key, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(E.MALFORMED_CREDENTIALS, "credentials are not base64 of key:secret") from None
            if not sep:
                raise ApiError(E.MALFORMED_CREDENTIALS, "credentials are not base64 of key:secret")
            worker = headers.get("x-clearml-worker") or headers.get("x-trains-worker") or ""
            return await self.services.accounts.check_credentials(key, secret, worker)
        if scheme == "bearer":
            tokens = self.services.tokens
            token = value.strip()
            if token.startswith(API_TOKEN_PREFIX):  # a long-lived API token (specgate token create)
                identity = await self.services.extra["api_tokens"].resolve(token)
                if identity is None:
                    raise ApiError(E.INVALID_TOKEN, "unknown or revoked API token")
                return identity
            try:
                identity = tokens.cached(token)
                if identity is None:
                    identity, expires = tokens.decode(token)
                    if await self.services.accounts.is_revoked(identity.session_id):
                        raise TokenError("revoked token")
                    if not await self.services.extra["api_tokens"].alive(identity.credential):
                        raise TokenError("revoked credentials")
                    tokens.remember(token, identity, expires)
            except TokenError as e:
                raise ApiError(E.INVALID_TOKEN, str(e)) from None
            return identity
        raise ApiError(E.BAD_AUTH_TYPE, f"expected Basic or Bearer, got {scheme or 'nothing'}")

    def _failure(self, call: Call, error: Exception) -> tuple[int, bytes]:
        stack = None
        if isinstance(error, ApiError):
            code, message = error.code, error.message
            error_data = {k: v for k, v in error.data.items() if isinstance(v, (str, int, float, bool))}
        elif isinstance(error, StoreUnavailable):
            code, message, error_data = E.SERVICE_UNAVAILABLE, f"Service unavailable ({error})", {}
        else:
            code, error_data = E.INTERNAL_ERROR, {}
            message = f"Internal server error (call id {call.id})"
            log.error("call %s %s failed:\n%s", call.id, call.endpoint, "".join(traceback.format_exception(error)))
            if self.settings.return_stack:
                stack = "".join(traceback.format_exception(error))
        body = envelope.render(
            call.id, call.trx, call.endpoint, call.requested, call.actual,
            code.status, code.subcode, message, error_data=error_data, stack=stack,
        )
        return code.status, body


def _cookie_value(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _cookie(name: str, value: str) -> bytes:
    if not value:
        return f"{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax".encode()
    return f"{name}={value}; Max-Age=99999999999; Path=/; HttpOnly; SameSite=Lax".encode()


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
