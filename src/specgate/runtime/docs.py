"""The API reference page (``/docs``) and the OpenAPI documents it reads (``/openapi/{name}.json``).

``name`` is a pin (``2.26``: the RPC form) or a dialect (``cvat``); ``/openapi.json`` is the max version.
The page is swagger-ui, served from the installed ``swagger-ui-bundle`` package, never from a CDN. That
bundle is swagger-ui 4.15, which renders OpenAPI 3.0 only, so the page asks for each document's 3.0
rendition (``?oas=3.0``); without it the document is the 3.1 one that ``specgate openapi`` writes.
Documents are built on first request and cached: start-up pays nothing for them.
"""

from __future__ import annotations

import functools
import html
import json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from specgate.core import canonical
from specgate.core.ir import Action, Api, Attributes, BatchRequest, Dialect, EndpointVersion, HttpBinding, Service
from specgate.core.versions import VersionError, parse_key, parse_pin

from .tables import Tables


def claims(path: str, prefix: str = "") -> bool:
    """Whether a request path is one of these routes (for the app's dispatcher, which sends the rest to RPC)."""
    rest = path[len(prefix):] if path.startswith(prefix) else None
    return rest is not None and (rest in ("/docs", "/openapi.json") or rest.startswith(("/docs/", "/openapi/")))


def routes(source: Tables | Api, *, drafts: bool | None = None, prefix: str = "") -> list[BaseRoute]:
    """``/openapi.json``, ``/openapi/{name}.json``, ``/docs`` and its assets, under ``prefix``.

    ``drafts`` defaults to what the tables were loaded with (an ``Api`` defaults to no drafts).
    """
    from specgate_codegen import openapi, openapi_rest
    from specgate_codegen.openapi30 import downgrade
    from swagger_ui_bundle import swagger_ui_path

    if isinstance(source, Tables):
        drafts = _tables_drafts(source) if drafts is None else drafts
        api = api_from_tables(source)
    else:
        api, drafts = source, bool(drafts)
    offered = openapi.versions(api, drafts=drafts)

    @functools.lru_cache(maxsize=16)
    def document(name: str, oas: str) -> bytes | None:
        if name in api.dialects:
            doc = openapi_rest.dialect(api, name)
        else:
            try:
                pin = parse_pin(name)
            except VersionError:
                return None
            if pin > api.max_version and not (drafts and pin.is_draft) or pin < min(offered):
                return None
            doc = openapi.rpc(api, pin, drafts=drafts)
        return canonical.dumps(downgrade(doc) if oas == "3.0" else doc).encode()

    async def serve(request: Request) -> Response:
        name = request.path_params.get("name", str(api.max_version))
        oas = "3.0" if request.query_params.get("oas") == "3.0" else "3.1"
        body = await run_in_threadpool(document, name, oas)  # ~50 ms the first time: off the event loop
        if body is None:
            known = ", ".join([str(v) for v in offered] + sorted(api.dialects))
            return JSONResponse({"detail": f"no OpenAPI document {name!r}; known: {known}"}, status_code=404)
        return Response(body, media_type="application/json")

    urls = [{"name": str(v), "url": f"{prefix}/openapi/{v}.json?oas=3.0"} for v in offered]
    urls += [{"name": f"{d} (REST)", "url": f"{prefix}/openapi/{d}.json?oas=3.0"} for d in sorted(api.dialects)]
    config = json.dumps({"urls": urls, "primary": str(api.max_version), "login": f"{prefix}/auth.login"})
    page = _PAGE.format(prefix=html.escape(prefix), config=config.replace("<", "\\u003c"))  # no "</script>" inside

    async def docs(_request: Request) -> Response:
        return HTMLResponse(page)

    return [
        Route(f"{prefix}/openapi.json", serve),
        Route(f"{prefix}/openapi/{{name}}.json", serve),
        Route(f"{prefix}/docs", docs),
        Mount(f"{prefix}/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets"),
    ]


def _tables_drafts(tables: Tables) -> bool:
    """Whether the tables serve draft keys as themselves (loaded with drafts enabled)."""
    return any(key.is_draft for e in tables.endpoints.values() for key in e.routing.serve)


def api_from_tables(tables: Tables) -> Api:
    """The IR again, from the runtime tables: schemas, attributes and bindings (no descriptions)."""
    bindings: dict[tuple[str, str], HttpBinding] = {}
    dialect_of: dict[str, str] = {}
    for name, profile in tables.dialects.items():
        for r in profile["routes"]:
            dialect_of[r["endpoint"].split(".")[0]] = name
            fields = {k: r[k] for k in ("method", "path", "status", "body", "kind", "pagination", "nulls") if k in r}
            bindings[(r["endpoint"], r["key"])] = HttpBinding(**fields)
    services: dict[str, dict[str, Action]] = {}
    for name, e in sorted(tables.endpoints.items()):
        sname, aname = name.split(".", 1)
        versions = tuple(
            EndpointVersion(key, tables.schemas[v.response], tables.schemas[v.request] if v.request else None,
                            BatchRequest("", "", tables.schemas[v.batch_request]) if v.batch_request else None,
                            bindings.get((name, v.key)))  # fmt: skip
            for key, v in sorted(e.versions.items())
        )
        attributes = Attributes(internal=e.internal, authorize=e.authorize, allow_roles=e.allow_roles)
        services.setdefault(sname, {})[aname] = Action(aname, attributes, versions)
    dialects = {
        name: Dialect(name, p["mount"], parse_key(p["pin"]), tuple(p["aliases"]), p["ids"], tuple(p["auth"]["schemes"]),
                      tuple(p["auth"]["anonymous"]), p["errors"], p["validation_status"], p["trailing_slash"])
        for name, p in tables.dialects.items()
    }  # fmt: skip
    return Api(tables.digest, tables.max_version,
               {s: Service(s, actions, dialect=dialect_of.get(s)) for s, actions in services.items()}, dialects)  # fmt: skip


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>specgate API reference</title>
<link rel="stylesheet" href="{prefix}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{prefix}/docs/assets/favicon-32x32.png">
<style>
  body {{ margin: 0; font-family: sans-serif; }}
  #login {{ display: flex; flex-wrap: wrap; gap: .6em; align-items: center; padding: .6em 1.2em;
            background: #f3f4f6; border-bottom: 1px solid #d1d5db; font-size: 14px; }}
  #login input {{ padding: .25em .4em; }}
  #login-status {{ font-weight: bold; }}
</style>
</head>
<body>
<form id="login" autocomplete="on">
  <strong>specgate</strong>
  <label>Access key <input id="access-key" name="access_key" autocomplete="username"></label>
  <label>Secret key <input id="secret-key" name="secret_key" type="password" autocomplete="current-password"></label>
  <button id="login-button" type="submit">Log in</button>
  <span>or</span>
  <label>Token <input id="token" name="token" autocomplete="off"></label>
  <button id="token-button" type="button">Use token</button>
  <span id="login-status" role="status">not authorized</span>
</form>
<div id="swagger-ui"></div>
<script id="specgate-config" type="application/json">{config}</script>
<script src="{prefix}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{prefix}/docs/assets/swagger-ui-standalone-preset.js"></script>
<script>
"use strict";
const config = JSON.parse(document.getElementById("specgate-config").textContent);
const status = document.getElementById("login-status");
let token = sessionStorage.getItem("specgate-token");

// every document names its Bearer scheme "bearer": authorize it again whenever another one loads
const KeepToken = () => ({{ statePlugins: {{ spec: {{ wrapActions: {{
  updateJsonSpec: (original) => (...args) => {{
    const result = original(...args);
    if (token) setTimeout(() => window.ui.preauthorizeApiKey("bearer", token));
    return result;
  }} }} }} }} }});

window.ui = SwaggerUIBundle({{
  urls: config.urls, "urls.primaryName": config.primary, dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl, KeepToken], layout: "StandaloneLayout",
  deepLinking: true, docExpansion: "none", defaultModelsExpandDepth: 0, filter: true,
  tryItOutEnabled: true, persistAuthorization: true, displayRequestDuration: true,
}});

function authorize(value, how) {{
  token = value;
  sessionStorage.setItem("specgate-token", value);
  window.ui.preauthorizeApiKey("bearer", value);
  status.textContent = "authorized (" + how + ")";
}}

document.getElementById("login").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const key = document.getElementById("access-key").value, secret = document.getElementById("secret-key").value;
  status.textContent = "logging in…";
  try {{
    const answer = await fetch(config.login, {{ headers: {{ Authorization: "Basic " + btoa(key + ":" + secret) }} }});
    const body = await answer.json();
    if (answer.ok) authorize(body.data.token, "logged in as " + key);
    else status.textContent = "login failed: " + body.meta.result_msg;
  }} catch (error) {{
    status.textContent = "login failed: " + error;
  }}
}});
document.getElementById("token-button").addEventListener("click", () => {{
  const value = document.getElementById("token").value.trim();
  if (value) authorize(value, "token");
}});
</script>
</body>
</html>
"""
