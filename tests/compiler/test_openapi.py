"""OpenAPI export: valid 3.1 (and a valid 3.0 rendition) for schemas/ and for small trees whose every
detail is known: pins by the floor rule, definitions as service-prefixed components, draft-07 keywords
in 2020-12 terms, and REST bindings as their clients call them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from specgate.core.lockfile import decode
from specgate.core.versions import Version, parse_key
from specgate.runtime.docs import api_from_tables
from specgate.runtime.tables import load
from specgate_codegen import openapi, openapi_rest
from specgate_codegen.compiler import compile_tree
from specgate_codegen.openapi30 import downgrade
from specgate_codegen.openapi_cli import add_openapi_parser

ROOT = Path(__file__).resolve().parents[2]

SERVICE = """
_description: "Widgets for the tests"
_definitions {
  widget { type: object, properties { id { type: string }, note { type: [string, null] }, part { "$ref": "#/definitions/part" } } }
  part { type: object, properties { size { type: integer, minimum: 0 } } }
}
create {
  "1.0" {
    description: "Create a widget"
    request { type: object, required: [name], properties { name { type: string } } }
    response { type: object, properties { id { type: string } } }
  }
}
get_all {
  "1.0" {
    request {
      type: object
      properties {
        page { type: integer }, page_size { type: integer }
        kind { "$ref": "#/definitions/part", description: "the part to match", minimum: 3 }
      }
      dependencies { page: [page_size] }
    }
    response { type: object, properties { widgets { type: array, items { "$ref": "#/definitions/widget" } } } }
  }
  "1.3": ${get_all."1.0"} { description: "Also by name" }
}
late { "1.3" { request { type: object }, response { type: object } } }
future { "999.0" { request { type: object }, response { type: object } } }
"""

DIALECT = 'mount: "/x"\npin: "1.0"\nauth { schemes: [token, basic], anonymous: [x_items.about] }\nerrors: detail\nvalidation_status: 422\n'
REST = """
_default { dialect: x }
_definitions { item { type: object, properties { id { type: integer }, name { type: string } } } }
about { "1.0" { http { method: GET, path: "/about" }, request { type: object }, response { type: object } } }
list {
  "1.0" {
    http { method: GET, path: "/items/", kind: list, pagination: page_number }
    request { type: object, properties { name { type: string }, flags { type: array, items { type: string } }, filter { type: object } } }
    response { "$ref": "#/definitions/item" }
  }
}
get {
  "1.0" {
    http { method: GET, path: "/items/{id:int}" }
    request { type: object, required: [id], properties { id { type: integer, description: "the item" } } }
    response { "$ref": "#/definitions/item" }
  }
}
create {
  "1.0" {
    http { method: POST, path: "/items/", status: 201 }
    request { type: object, required: [name], properties { name { type: string } } }
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
page {
  "1.0" {
    http { method: POST, path: "/items/paginate", kind: list, pagination: token_body }
    request { type: object, properties { name { type: string } } }
    response { "$ref": "#/definitions/item" }
  }
}
"""


def compile_files(root: Path, files: dict[str, str]):
    schemas = root / "schemas"
    (schemas / "dialects").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "errors.conf", schemas)
    for name, text in files.items():
        (schemas / name).write_text(text)
    return compile_tree(schemas, root)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A small RPC service and a small dialect, compiled: (IR, artefacts by path, project root)."""
    root = tmp_path_factory.mktemp("openapi")
    api, artefacts = compile_files(root, {"widgets.conf": SERVICE, "dialects/x.conf": DIALECT, "x_items.conf": REST})
    return api, dict(artefacts), root


@pytest.fixture(scope="module")
def compiled():
    """schemas/ compiled in memory: (IR, artefacts by path)."""
    api, artefacts = compile_tree(ROOT / "schemas", ROOT)
    return api, dict(artefacts)


@pytest.fixture(scope="module")
def real(compiled):
    return compiled[0]


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def self_contained(document: dict) -> None:
    """No draft-07 leftovers, every reference resolves, every component is a 2020-12 schema."""
    text = json.dumps(document)
    assert "#/definitions/" not in text and '"$schema"' not in text
    components = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in components, ref
    for schema in components.values():
        Draft202012Validator.check_schema(schema)


def test_rpc_document_follows_the_floor_rule_at_each_pin(tree) -> None:
    api, *_ = tree
    latest = openapi.rpc(api)
    validate(latest)
    assert latest["openapi"] == "3.1.0" and latest["info"]["version"] == "1.3"
    widgets = sorted(p for p in latest["paths"] if "/widgets." in p)
    assert widgets == ["/v1.3/widgets.create", "/v1.3/widgets.future", "/v1.3/widgets.get_all", "/v1.3/widgets.late"]
    assert "/v1.3/x_items.get" in latest["paths"]  # a dialect's actions keep their RPC form
    op = latest["paths"]["/v1.3/widgets.get_all"]["post"]
    assert (op["operationId"], op["x-specgate-version"], op["description"]) == ("widgets.get_all", "1.3", "Also by name")
    # a draft-only action is served from the max version, as the gateway serves it with drafts off
    future = latest["paths"]["/v1.3/widgets.future"]["post"]
    assert (future["x-specgate-version"], future["x-draft"]) == ("999.0", True)
    older = openapi.rpc(api, Version(1, 2))
    assert sorted(p for p in older["paths"] if "/widgets." in p) == ["/v1.2/widgets.create", "/v1.2/widgets.get_all"]
    assert older["paths"]["/v1.2/widgets.get_all"]["post"]["x-specgate-version"] == "1.0"
    assert "/v999.0/widgets.future" in openapi.rpc(api, Version(999, 0), drafts=True)["paths"]
    assert openapi.versions(api) == [Version(1, 3), Version(1, 0)]
    assert latest["tags"] == [{"name": "widgets", "description": "Widgets for the tests"}, {"name": "x_items"}]


def test_rpc_operation_wraps_the_response_in_the_envelope(tree) -> None:
    api, *_ = tree
    op = openapi.rpc(api)["paths"]["/v1.3/widgets.create"]["post"]
    body = op["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert "example" not in body  # a required field: swagger-ui's generated example is the better start
    envelope = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert envelope["required"] == ["meta", "data"]
    assert envelope["properties"]["meta"] == {"$ref": "#/components/schemas/_meta"}
    assert envelope["properties"]["data"] == {"type": "object", "properties": {"id": {"type": "string"}}}
    assert "security" not in op  # authorize: true, so the document's Bearer or Basic is required
    get_all = openapi.rpc(api)["paths"]["/v1.3/widgets.get_all"]["post"]
    assert get_all["requestBody"]["content"]["application/json"]["example"] == {}


def test_definitions_become_prefixed_components_in_2020_12_terms(tree) -> None:
    api, *_ = tree
    document = openapi.rpc(api)
    self_contained(document)
    components = document["components"]["schemas"]
    assert {"widgets__widget", "widgets__part", "_meta"} <= set(components)
    assert components["widgets__widget"]["properties"]["part"] == {"$ref": "#/components/schemas/widgets__part"}
    assert components["widgets__widget"]["properties"]["note"] == {"type": ["string", "null"]}
    request = document["paths"]["/v1.3/widgets.get_all"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request["dependentRequired"] == {"page": ["page_size"]} and "dependencies" not in request
    # draft-07 ignores a $ref's siblings: the annotation stays, the assertion (never enforced) goes
    assert request["properties"]["kind"] == {"$ref": "#/components/schemas/widgets__part", "description": "the part to match"}


def test_schema_conversion_of_the_rarer_draft_07_forms() -> None:
    converted = openapi.to_2020(
        {"type": "array", "items": [{"type": "string"}], "additionalItems": {"$ref": "#/definitions/a"},
         "dependencies": {"x": {"required": ["y"]}}, "definitions": {"local": {"type": "string"}}},
        {"a": "svc__a"},
    )  # fmt: skip
    assert converted == {"type": "array", "prefixItems": [{"type": "string"}], "items": {"$ref": "#/components/schemas/svc__a"},
                         "dependentSchemas": {"x": {"required": ["y"]}}, "$defs": {"local": {"type": "string"}}}  # fmt: skip
    components = openapi.Components()
    first = components.schema("s", {"$ref": "#/definitions/d", "definitions": {"d": {"type": "string"}}})
    second = components.schema("s", {"$ref": "#/definitions/d", "definitions": {"d": {"type": "integer"}}})
    assert first == {"$ref": "#/components/schemas/s__d"} and second["$ref"].startswith("#/components/schemas/s__d__")
    assert components.schemas["s__d"] == {"type": "string"} and {"type": "integer"} in components.schemas.values()


def test_dialect_document_describes_each_binding_as_its_client_calls_it(tree) -> None:
    api, *_ = tree
    document = openapi_rest.dialect(api, "x")
    validate(document)
    self_contained(document)
    paths = document["paths"]
    assert sorted(paths) == ["/x/about", "/x/items/", "/x/items/paginate", "/x/items/{id}", "/x/items/{id}/files"]
    get = paths["/x/items/{id}"]["get"]
    assert get["parameters"] == [{"name": "id", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 0, "description": "the item"}}]  # fmt: skip
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/x_items__item"}
    assert sorted(get["responses"]) == ["200", "422", "default"]
    assert "requestBody" not in get and "security" not in get  # authenticated by the document's schemes
    listing = paths["/x/items/"]["get"]
    query = {p["name"]: p for p in listing["parameters"]}
    assert sorted(query) == ["flags", "name", "page", "page_size"]  # an object cannot travel in a query string
    assert query["flags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert sorted(page["properties"]) == ["count", "next", "previous", "results"]
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/x_items__item"}
    create = paths["/x/items/"]["post"]
    assert sorted(create["responses"])[0] == "201" and create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name"]
    assert paths["/x/items/{id}"]["delete"]["responses"]["204"] == {"description": "done, no body"}
    upload = paths["/x/items/{id}/files"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert sorted(form["properties"]) == ["major"] and form["additionalProperties"]["format"] == "binary"
    token_page = paths["/x/items/paginate"]["post"]
    body = token_page["requestBody"]["content"]["application/json"]["schema"]
    assert sorted(body["properties"]) == ["maximumResults", "name", "token"]  # token_body pages travel in the body
    envelope = token_page["responses"]["200"]["content"]["application/json"]["schema"]
    assert sorted(envelope["properties"]) == ["count", "data", "isTruncated", "nextToken", "total"]
    assert paths["/x/about"]["get"]["security"] == [{}, {"bearer": []}, {"basic": []}]  # anonymous
    assert document["security"] == [{"bearer": []}, {"basic": []}]
    assert document["components"]["schemas"]["_error"]["properties"] == {"detail": {"type": "string"}}


def test_offset_limit_envelope() -> None:
    page = openapi_rest.envelope("offset_limit", {"type": "object"})
    assert sorted(page["properties"]) == ["count", "data", "next", "previous", "totalCount"]


def test_output_is_deterministic(tree) -> None:
    api, *_ = tree
    assert openapi.dumps(openapi.rpc(api)) == openapi.dumps(openapi.rpc(api))
    text = openapi.dumps(openapi_rest.dialect(api, "x")).decode()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("which", ["tree", "compiled"])
def test_runtime_tables_give_the_same_documents_as_the_lock(which, request) -> None:
    """/openapi/* is built from the runtime tables; the lock (no descriptions either) must agree with it."""
    artefacts = request.getfixturevalue(which)[1]
    tables = load(dispatch=orjson.loads(artefacts["src/specgate/_generated/dispatch.json"]),
                  validators=orjson.loads(artefacts["src/specgate/_generated/validators.json"]))  # fmt: skip
    from_lock, from_tables = decode(json.loads(artefacts["specgate.lock.json"])), api_from_tables(tables)
    assert openapi.rpc(from_tables) == openapi.rpc(from_lock)
    assert openapi.rpc(from_tables, parse_key("1.0")) == openapi.rpc(from_lock, parse_key("1.0"))
    for name in from_lock.dialects:
        assert openapi_rest.dialect(from_tables, name) == openapi_rest.dialect(from_lock, name)


def test_schemas_tree_exports_valid_documents(real) -> None:
    document = openapi.rpc(real)
    validate(document)
    self_contained(document)
    batch = document["paths"][f"/v{real.max_version}/events.add_batch"]["post"]["requestBody"]["content"]
    assert sorted(batch) == ["application/json", "application/json-lines"]
    op = document["paths"][f"/v{real.max_version}/tasks.get_all"]["post"]
    data = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    assert data["properties"]["tasks"]["items"] == {"$ref": "#/components/schemas/tasks__task"}
    assert op["description"]  # compiled from schemas/, descriptions included
    served = {name for name, action in real.endpoints()
              if any(v.key <= real.max_version for v in action.versions) or all(v.draft for v in action.versions)}  # fmt: skip
    assert {p.split("/")[-1] for p in document["paths"]} == served
    validate(openapi.rpc(real, min(openapi.versions(real))))
    for name in real.dialects:
        dialect = openapi_rest.dialect(real, name)
        validate(dialect)
        self_contained(dialect)


def test_the_3_0_rendition_for_swagger_ui_is_valid(real, tree) -> None:
    validate(downgrade(openapi.rpc(real)), cls=OpenAPIV30SpecValidator)
    for name in real.dialects:
        validate(downgrade(openapi_rest.dialect(real, name)), cls=OpenAPIV30SpecValidator)
    api, *_ = tree
    old = downgrade(openapi.rpc(api))
    validate(old, cls=OpenAPIV30SpecValidator)
    assert old["openapi"] == "3.0.3"
    widget = old["components"]["schemas"]["widgets__widget"]["properties"]
    assert widget["note"] == {"type": "string", "nullable": True}
    request = old["paths"]["/v1.3/widgets.get_all"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request["properties"]["kind"] == {"allOf": [{"$ref": "#/components/schemas/widgets__part"}], "description": "the part to match"}


def run_cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="specgate")
    add_openapi_parser(parser.add_subparsers())
    args = parser.parse_args(["openapi", *argv])
    return args.run(args)


def test_cli_writes_a_document_from_a_tree_or_a_lock(tree, tmp_path, capsys) -> None:
    api, artefacts, root = tree
    out = tmp_path / "rpc.json"
    assert run_cli("--root", str(root), "--output", str(out)) == 0
    assert out.read_bytes() == openapi.dumps(openapi.rpc(api))
    assert "11 operations" in capsys.readouterr().err
    lock = tmp_path / "lock.json"
    lock.write_bytes(artefacts["specgate.lock.json"])
    assert run_cli("--lock", str(lock), "--dialect", "x") == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"] == "specgate x API"
    assert run_cli("--lock", str(lock), "--version", "1.0") == 0
    assert "/v1.0/widgets.create" in json.loads(capsys.readouterr().out)["paths"]
    assert run_cli("--lock", str(lock), "--dialect", "nope") == 2
    assert run_cli("--lock", str(lock), "--version", "7.0") == 2
    assert run_cli("--lock", str(lock), "--version", "x.y") == 2
    assert run_cli("--lock", str(tmp_path / "missing.json")) == 3
