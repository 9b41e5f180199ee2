"""REST bindings: dialect profiles (``schemas/dialects/*.conf``) and the ``http`` block of a version.

A binding is one more transport for an existing action version, so it is checked here with the rest of
the spec: the dialect exists, path parameters are typed and declared in the request, list answers name
a pagination style, and no two bindings of one dialect can match the same request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from specgate.core.ir import Api, Dialect, HttpBinding
from specgate.core.refs import root_properties
from specgate.core.versions import VersionError, floor, parse_key

from . import hocon
from .diagnostics import Diagnostics

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PARAM_TYPES = ("int", "uuid", "objectid", "string")
BODIES = ("json", "none", "multipart", "json-or-array")
KINDS = ("object", "list", "array", "none")
PAGINATION = ("page_number", "offset_limit", "token_body")
AUTH_SCHEMES = ("bearer", "basic", "session", "raw", "token")
ERRORS = ("detail", "message", "message_errors")
SLASHES = ("exact", "optional", "required")
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")


def dialects(directory: Path, root: Path, diags: Diagnostics) -> dict[str, Dialect]:
    out = {}
    for path in sorted((directory / "dialects").glob("*.conf")):
        file = hocon.rel(path, root)
        try:
            tree = hocon.parse_plain(path)
        except hocon.HoconError as e:
            diags.add(file, 0, "hocon-syntax", f"unparsable dialect profile: {e}")
            continue
        dialect = _dialect(path.stem, tree, file, hocon.locate(path.read_text()), diags)
        if dialect is not None:
            out[dialect.name] = dialect
    return out


def _dialect(name: str, tree: dict[str, Any], file: str, lines: dict, diags: Diagnostics) -> Dialect | None:
    def bad(key: str, message: str) -> None:
        diags.add(file, lines.get((key,), 0), "bad-dialect", f"dialect {name}: {message}")

    known = {"mount", "aliases", "pin", "ids", "auth", "errors", "validation_status", "trailing_slash"}
    for key in sorted(set(tree) - known):
        bad(key, f"unknown key {key!r}")
    mount = tree.get("mount", "")
    if not isinstance(mount, str) or (mount and (not mount.startswith("/") or mount.endswith("/"))):
        bad("mount", 'mount must be "" or a path like "/api" (no trailing slash)')
        return None
    try:
        pin = parse_key(str(tree.get("pin", "")))
    except VersionError as e:
        bad("pin", str(e))
        return None
    auth = tree.get("auth") or {}
    schemes = tuple(auth.get("schemes") or ("bearer",))
    for scheme in schemes:
        if scheme not in AUTH_SCHEMES:
            bad("auth", f"unknown auth scheme {scheme!r} (one of {', '.join(AUTH_SCHEMES)})")
    for key, allowed in (("errors", ERRORS), ("trailing_slash", SLASHES), ("ids", ("int", "uuid", "objectid"))):
        if key in tree and tree[key] not in allowed:
            bad(key, f"{key} must be one of {', '.join(allowed)}")
    return Dialect(
        name=name,
        mount=mount,
        pin=pin,
        aliases=tuple(tree.get("aliases") or ()),
        ids=tree.get("ids", "uuid"),
        auth_schemes=schemes,
        anonymous=tuple(auth.get("anonymous") or ()),
        errors=tree.get("errors", "message"),
        validation_status=int(tree.get("validation_status", 400)),
        trailing_slash=tree.get("trailing_slash", "exact"),
    )


def binding(block: Any, request: dict | None, where: tuple[str, int], endpoint: str, key: str, diags: Diagnostics) -> HttpBinding | None:
    """The checked ``http`` block of one version (or None with diagnostics)."""
    file, line = where

    def bad(message: str) -> None:
        diags.add(file, line, "bad-http-binding", message, endpoint, key)

    if not isinstance(block, dict):
        bad("http must be an object")
        return None
    method = str(block.get("method", "")).upper()
    path = block.get("path")
    if method not in METHODS:
        bad(f"http.method must be one of {', '.join(METHODS)}")
    if not isinstance(path, str) or not path.startswith("/"):
        bad('http.path must start with "/"')
        return None
    declared = set(root_properties(request or {}))
    for m in PARAM.finditer(path):
        if (m[2] or "string") not in PARAM_TYPES:
            bad(f"path parameter {{{m[1]}}} has unknown type {m[2]!r} (one of {', '.join(PARAM_TYPES)})")
        if m[1] not in declared:
            bad(f"path parameter {{{m[1]}}} is not a property of the request")
    default_body = "json" if method in ("POST", "PUT", "PATCH") else "none"
    body, kind = block.get("body", default_body), block.get("kind", "object")
    status, pagination = block.get("status", 200), block.get("pagination")
    nulls = block.get("nulls", "keep" if method == "PATCH" else "drop")
    if body not in BODIES:
        bad(f"http.body must be one of {', '.join(BODIES)}")
    if kind not in KINDS:
        bad(f"http.kind must be one of {', '.join(KINDS)}")
    if kind == "list" and pagination not in PAGINATION:
        bad(f"http.kind list needs http.pagination, one of {', '.join(PAGINATION)}")
    if pagination is not None and kind != "list":
        bad("http.pagination is only for kind list")
    if not isinstance(status, int) or not 200 <= status < 300:
        bad("http.status must be a 2xx status")
    elif status == 204 and kind != "none":
        bad("http.status 204 has no body: set kind none")
    if nulls not in ("drop", "keep"):
        bad("http.nulls must be drop or keep")
    for extra in sorted(set(block) - {"method", "path", "status", "body", "kind", "pagination", "nulls"}):
        bad(f"unknown http key {extra!r}")
    return HttpBinding(method, path, status if isinstance(status, int) else 200, body, kind, pagination, nulls)


def check_routes(api: Api, dialect_of: dict[str, str], where: dict[tuple[str, str], tuple[str, int]], diags: Diagnostics) -> None:
    """Every dialect named exists, and no two bindings a dialect serves at its pin match one request."""
    seen: dict[tuple[str, str, str], str] = {}
    for endpoint, action in api.endpoints():
        service = endpoint.split(".")[0]
        keys = [v.key for v in action.versions]
        dialect = dialect_of.get(service)
        bound = [v for v in action.versions if v.http is not None]
        if not bound:
            continue
        file, line = where.get((endpoint, str(bound[0].key)), ("", 0))
        if dialect is None:
            diags.add(file, line, "bad-http-binding", "http binding in a service without _default.dialect", endpoint)
            continue
        if dialect not in api.dialects:
            diags.add(file, line, "unknown-dialect", f"no schemas/dialects/{dialect}.conf", endpoint)
            continue
        chosen = floor(keys, api.dialects[dialect].pin)
        version = next((v for v in action.versions if v.key == chosen), None)
        if version is None or version.http is None:
            continue
        shape = PARAM.sub(lambda m: "{" + (m[2] or "string") + "}", version.http.path).rstrip("/")
        slot = (dialect, version.http.method, shape)
        if slot in seen:
            file, line = where.get((endpoint, str(version.key)), ("", 0))
            diags.add(file, line, "route-collision",
                      f"{version.http.method} {version.http.path} also matches {seen[slot]} in dialect {dialect}", endpoint)
        else:
            seen[slot] = endpoint
