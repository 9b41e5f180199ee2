"""The REST frontend over a small dialect compiled from HOCON: routing, auth, coercion, envelopes, errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest

from specgate.core.errors import ApiError
from specgate.domain.identity import Identity
from specgate.domain.tokens import TokenError
from specgate.runtime.rest import RestApp
from specgate.runtime.tables import load
from specgate.runtime.validate import Validators
from specgate_codegen.compiler import compile_tree
from specgate._generated import errors as E

ROOT = Path(__file__).resolve().parents[2]
DIALECT = """
mount: "/demo"
aliases: ["/v1/demo"]
pin: "1.0"
auth { schemes: [token, raw, session], anonymous: [demo_items.about] }
errors: message_errors
validation_status: 422
trailing_slash: optional
"""
SERVICE = """
_default { dialect: demo }
_definitions { item { type: object, properties { id { type: integer }, name { type: string }, note { type: [string, null] } } } }
about { "1.0" { http { method: GET, path: "/about" }, request { type: object }, response { type: object } } }
list {
  "1.0" {
    http { method: GET, path: "/items/", kind: list, pagination: offset_limit }
    request { type: object, properties { name { type: string }, flag { type: boolean } } }
    response { "$ref": "#/definitions/item" }
  }
}
get {
  "1.0" {
    http { method: GET, path: "/items/{id:int}" }
    request { type: object, required: [id], properties { id { type: integer } } }
    response { "$ref": "#/definitions/item" }
  }
}
create {
  "1.0" {
    http { method: POST, path: "/items/", status: 201 }
    request { type: object, required: [name], properties { name { type: string, minLength: 1 } } }
    response { "$ref": "#/definitions/item" }
  }
}
patch {
  "1.0" {
    http { method: PATCH, path: "/items/{id:int}" }
    request { type: object, required: [id], properties { id { type: integer }, note { type: [string, null] } } }
    response { "$ref": "#/definitions/item" }
  }
}
delete {
  "1.0" {
    http { method: DELETE, path: "/items/{id:int}", status: 204, kind: none }
    request { type: object, required: [id], properties { id { type: integer } } }
    response { type: object }
  }
}
upload {
  "1.0" {
    http { method: POST, path: "/items/{id:int}/files", body: multipart, status: 201 }
    request { type: object, required: [id], properties { id { type: integer }, major { type: boolean } } }
    response { type: object }
  }
}
"""


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest")
    schemas = root / "schemas"
    (schemas / "dialects").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "errors.conf", schemas / "errors.conf")
    (schemas / "dialects" / "demo.conf").write_text(DIALECT)
    (schemas / "demo_items.conf").write_text(SERVICE)
    _, artefacts = compile_tree(schemas, root)
    files = {Path(p).name: orjson.loads(b) for p, b in artefacts if p.endswith(".json") and "_generated" in p}
    return load(dispatch=files["dispatch.json"], validators=files["validators.json"])


class Handlers:
    """Handlers over a dict, registered by endpoint name (the real registry binds the app's modules)."""

    def __init__(self):
        self.items: dict[int, dict] = {}
        self.seen: list[tuple[str, dict]] = []

    def pick(self, endpoint, key):
        return getattr(self, endpoint.split(".")[1])

    async def about(self, ctx, data):
        return {"anonymous": ctx.identity is None}

    async def list(self, ctx, data):
        self.seen.append(("list", data))
        items = sorted(self.items.values(), key=lambda i: i["id"])
        page = data["_page"]
        return {"items": items[page["offset"] : page["offset"] + page["limit"]], "total": len(items)}

    async def get(self, ctx, data):
        if data["id"] not in self.items:
            raise ApiError(E.RESOURCE_NOT_FOUND, f"no item {data['id']}")
        return self.items[data["id"]]

    async def create(self, ctx, data):
        item = {"id": len(self.items) + 1, "name": data["name"], "note": None}
        self.items[item["id"]] = item
        ctx.http.response_headers["Location"] = f"{ctx.http.base_url}/items/{item['id']}"
        return item

    async def patch(self, ctx, data):
        self.seen.append(("patch", data))
        item = await self.get(ctx, data)
        item.update({k: v for k, v in data.items() if k != "id"})
        return item

    async def delete(self, ctx, data):
        await self.get(ctx, data)
        del self.items[data["id"]]

    async def upload(self, ctx, data):
        return {"major": data.get("major"), "files": [[f, n, len(b)] for f, n, b in ctx.http.files]}


@pytest.fixture
def client(tables):
    async def resolve(token):
        return Identity("u1", "c1") if token == "good" else None

    def decode(token):
        raise TokenError("not a JWT")

    services = SimpleNamespace(
        settings=SimpleNamespace(max_body_bytes=100_000, validate_responses=True),
        extra={"api_tokens": SimpleNamespace(resolve=resolve)},
        tokens=SimpleNamespace(decode=decode),
    )
    handlers = Handlers()
    app = RestApp(tables, Validators(tables), handlers, services)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")
    http.handlers = handlers
    return http


AUTH = {"Authorization": "Token good"}


async def test_anonymous_action_needs_no_credentials_others_do(client) -> None:
    r = await client.get("/demo/about")
    assert (r.status_code, r.json()) == (200, {"anonymous": True})
    r = await client.get("/demo/items/")
    assert r.status_code == 401
    assert r.json()["message"] == "Authentication credentials were not provided."
    r = await client.get("/demo/items/", headers={"Authorization": "Token bad"})
    assert r.status_code == 401
    assert (await client.get("/demo/items/", headers={"Authorization": "good"})).status_code == 200


async def test_create_get_patch_delete_through_typed_routes(client) -> None:
    r = await client.post("/demo/items/", json={"name": "a"}, headers=AUTH)
    assert (r.status_code, r.json()) == (201, {"id": 1, "name": "a", "note": None})
    assert r.headers["location"] == "http://gw.test/demo/items/1"
    assert (await client.get("/v1/demo/items/1", headers=AUTH)).json()["name"] == "a"  # the alias mount
    r = await client.patch("/demo/items/1", json={"note": None}, headers=AUTH)
    assert r.status_code == 200
    assert client.handlers.seen[-1] == ("patch", {"id": 1, "note": None})  # PATCH keeps null: it clears a field
    r = await client.delete("/demo/items/1", headers=AUTH)
    assert (r.status_code, r.content) == (204, b"")
    r = await client.get("/demo/items/1", headers=AUTH)
    assert (r.status_code, r.json()) == (404, {"message": "Not found (no item 1)", "errors": {}})
    assert r.headers["content-type"] == "application/json"


async def test_wrong_method_is_405_and_unknown_path_404(client) -> None:
    assert (await client.put("/demo/items/1", json={}, headers=AUTH)).status_code == 405
    assert (await client.get("/demo/items/abc", headers=AUTH)).status_code == 404  # {id:int} does not match
    assert (await client.get("/demo/nothing", headers=AUTH)).status_code == 404


async def test_validation_failure_uses_the_dialect_status_and_names_the_field(client) -> None:
    r = await client.post("/demo/items/", json={"name": ""}, headers=AUTH)
    assert r.status_code == 422
    body = r.json()
    assert "name" in body["errors"] and "name" in body["message"]
    r = await client.post("/demo/items/", content=b"[1, 2]", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/demo/items/", content=b"{bad", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["message"]


async def test_list_pages_with_absolute_links_and_coerced_query(client) -> None:
    for name in "abcde":
        await client.post("/demo/items/", json={"name": name}, headers=AUTH)
    r = await client.get("/demo/items", params={"offset": 1, "limit": 2, "flag": "False"}, headers=AUTH)
    body = r.json()
    assert [i["name"] for i in body["data"]] == ["b", "c"]
    assert (body["count"], body["totalCount"]) == (2, 5)
    assert body["next"] == "http://gw.test/demo/items?flag=False&offset=3&limit=2"
    assert body["previous"] == "http://gw.test/demo/items?flag=False&offset=0&limit=2"
    assert client.handlers.seen[-1][1]["flag"] is False  # Python's spelling of a boolean, coerced by the schema
    last = (await client.get(body["next"], headers=AUTH)).json()
    assert [i["name"] for i in last["data"]] == ["d", "e"] and last["next"] is None
    r = await client.get("/demo/items", params={"limit": "x"}, headers=AUTH)
    assert r.status_code == 422 and "limit" in r.json()["errors"]


async def test_multipart_fields_are_coerced_and_files_passed_through(client) -> None:
    await client.post("/demo/items/", json={"name": "a"}, headers=AUTH)
    files = [("file", ("a.py", b"print(1)")), ("file", ("b.txt", b"xy"))]
    r = await client.post("/demo/items/1/files", data={"major": "True"}, files=files, headers=AUTH)
    assert r.status_code == 201
    assert r.json() == {"major": True, "files": [["file", "a.py", 8], ["file", "b.txt", 2]]}


async def test_session_cookie_needs_the_csrf_header_on_unsafe_methods(client) -> None:
    client.cookies.set("sessionid", "good")
    assert (await client.get("/demo/items/")).status_code == 200  # safe method: the cookie alone is enough
    r = await client.post("/demo/items/", json={"name": "a"})
    assert r.status_code == 403 and "CSRF" in r.json()["message"]
    client.cookies.set("csrftoken", "t1")
    assert (await client.post("/demo/items/", json={"name": "a"}, headers={"X-CSRFToken": "other"})).status_code == 403
    assert (await client.post("/demo/items/", json={"name": "a"}, headers={"X-CSRFToken": "t1"})).status_code == 201


async def test_a_deployment_can_move_a_dialect_to_another_prefix(tables) -> None:
    services = SimpleNamespace(settings=SimpleNamespace(max_body_bytes=1000, validate_responses=True, dialect_mounts="demo=/elsewhere"),
                               extra={}, tokens=None)  # fmt: skip
    app = RestApp(tables, Validators(tables), Handlers(), services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as http:
        assert (await http.get("/elsewhere/about")).json() == {"anonymous": True}
        assert (await http.get("/v1/demo/about")).status_code == 200  # aliases stay
        assert not app.claims("/demo/about")
    with pytest.raises(ValueError):
        RestApp(tables, Validators(tables), Handlers(), SimpleNamespace(settings=SimpleNamespace(dialect_mounts="demo")))
