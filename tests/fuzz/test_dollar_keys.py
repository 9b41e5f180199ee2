"""Keys with ``$``, ``.``, ``%`` and NUL in the maps clients fill freely (hyper-parameter sections and
names, configuration names, ``container``, ``runtime``, ``execution.model_labels``,
``script.requirements``, queue metadata) are stored and returned exactly, on the embedded SQLite store
and on MongoDB's wire protocol (nx-27017), and never reach the database as operators: MongoDB gets
them escaped, so no stored key starts with ``$`` or holds a dot (a ``{"$ref", "$id"}`` pair would come
back as a DBRef), and filters naming such paths are refused."""

from __future__ import annotations

import uuid

import pytest

from e2e.conftest import Api, server_on_store
from fuzz.conftest import CASES

KEYS = ["$where", "$set", "a.b", ".", "..", "$", "%2E", "100%", "x\x00y", "__$all", "$ref", "$id", "plain"]
NAMES = [k for k in KEYS if k]  # hyper-parameter and configuration names may not be empty


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def store_api(request, tmp_path_factory):
    with server_on_store(request.param, tmp_path_factory.mktemp(f"keys-{request.param}"), "fuzzkeys") as info:
        api = Api(info, version="2.26")
        yield request.param, info, api
        api.close()


def _ok(api: Api, endpoint: str, version: str | None = None, **data) -> dict:
    CASES["dollar keys"] += 1
    return api.ok(endpoint, version, **data)


def _weird_task(api: Api) -> tuple[str, dict]:
    fields = {
        "name": f"keys {uuid.uuid4().hex}",
        "type": "training",
        "tags": ["$in", "a.b", "$where"],  # "__$" starts an operator: refused as a tag (as ClearML does)
        "system_tags": ["$x.y"],
        "hyperparams": {s: {n: {"section": s, "name": n, "value": f"{s}/{n}"} for n in NAMES} for s in NAMES},
        "configuration": {n: {"name": n, "value": n, "type": "text"} for n in NAMES},
        "container": {k: f"v{i}" for i, k in enumerate(KEYS)},
        "execution": {"model_labels": {k: i for i, k in enumerate(KEYS)}},
        "script": {"requirements": {k: [k] for k in KEYS}},
    }
    task = _ok(api, "tasks.create", **fields)["id"]
    runtime = {k: {k: k} for k in KEYS} | {"dbref": {"$ref": "tasks", "$id": "x"}, "": "empty key"}
    _ok(api, "tasks.edit", task=task, runtime=runtime, force=True)
    return task, {**fields, "runtime": runtime}


def test_weird_keys_come_back_exactly(store_api):
    store, info, api = store_api
    task, sent = _weird_task(api)
    got = _ok(api, "tasks.get_by_id", task=task)["task"]
    for field in ("hyperparams", "configuration", "container", "runtime"):
        assert got[field] == sent[field], f"{store}: {field}"
    assert got["execution"]["model_labels"] == sent["execution"]["model_labels"], store
    assert got["script"]["requirements"] == sent["script"]["requirements"], store
    assert sorted(got["tags"]) == sorted(sent["tags"]) and got["system_tags"] == sent["system_tags"], store

    listed = _ok(api, "tasks.get_all", id=[task], only_fields=["id", "runtime", "container", "hyperparams"])["tasks"]
    assert [t["runtime"] for t in listed] == [sent["runtime"]] and listed[0]["hyperparams"] == sent["hyperparams"], store

    params = _ok(api, "tasks.get_hyper_params", tasks=[task])["params"][0]["hyperparams"]
    assert {(p["section"], p["name"], p["value"]) for p in params} == {(s, n, f"{s}/{n}") for s in NAMES for n in NAMES}
    configs = _ok(api, "tasks.get_configurations", tasks=[task])["configurations"][0]["configuration"]
    assert {c["name"] for c in configs} == set(NAMES), store
    names = _ok(api, "tasks.get_configuration_names", tasks=[task])["configurations"][0]["names"]
    assert set(names) == set(NAMES), store


def test_weird_keys_survive_edits(store_api):
    store, info, api = store_api
    task, _ = _weird_task(api)
    _ok(api, "tasks.edit_hyper_params", task=task, force=True,
        hyperparams=[{"section": "$new.sec", "name": "$n.m", "value": "1"}, {"section": "a.b", "name": "$where", "value": "changed"}])
    _ok(api, "tasks.delete_hyper_params", task=task, force=True, hyperparams=[{"section": "$set", "name": "x\x00y"}, {"section": "."}])
    _ok(api, "tasks.edit_configuration", task=task, force=True, configuration=[{"name": "$c.d", "value": "2"}])
    _ok(api, "tasks.delete_configuration", task=task, force=True, configuration=["%2E"])
    got = _ok(api, "tasks.get_by_id", task=task)["task"]
    assert got["hyperparams"]["$new.sec"]["$n.m"]["value"] == "1", store
    assert got["hyperparams"]["a.b"]["$where"]["value"] == "changed", store
    assert "x\x00y" not in got["hyperparams"]["$set"] and "." not in got["hyperparams"], store
    assert got["configuration"]["$c.d"]["value"] == "2" and "%2E" not in got["configuration"], store
    assert got["configuration"]["$where"]["value"] == "$where", store  # untouched by the edits


def test_queue_metadata_keys_come_back_exactly(store_api):
    store, info, api = store_api
    metadata = {k: {"key": k, "type": "str", "value": k} for k in KEYS}  # the map form: keys are the client's
    queue = _ok(api, "queues.create", name=f"keys {uuid.uuid4().hex}", metadata=metadata)["id"]
    got = _ok(api, "queues.get_by_id", queue=queue)["queue"]["metadata"]
    got = got if isinstance(got, dict) else {m["key"]: m for m in got}
    assert got == metadata, store
    _ok(api, "queues.update", queue=queue, metadata={"$set.x": {"key": "$set.x", "type": "str", "value": "new"}})
    got = _ok(api, "queues.get_all", id=[queue], only_fields=["metadata"])["queues"][0]["metadata"]
    got = got if isinstance(got, dict) else {m["key"]: m for m in got}
    assert got == {"$set.x": {"key": "$set.x", "type": "str", "value": "new"}}, store


@pytest.mark.parametrize("query", [
    {"hyperparams.$where.value": ["x"]}, {"runtime.$where": ["x"]}, {"order_by": ["runtime.$ref"]},
    {"_any_": {"pattern": "x", "fields": ["runtime.$where"]}}, {"filters": {"$where": {"any": {"include": ["x"]}}}},
    {"order_by": ["runtime..x"]},
], ids=lambda q: str(q)[:40])  # fmt: skip
def test_filters_naming_operator_paths_are_refused(store_api, query):
    store, info, api = store_api
    for endpoint in ("tasks.get_all", "projects.get_all", "queues.get_all"):
        status, body = api.call(endpoint, **query)
        CASES["dollar keys"] += 1
        assert (status, body["meta"]["result_subcode"]) in ((400, 14), (200, 0)), f"{store} {endpoint}: {body['meta']}"
        if endpoint == "tasks.get_all":
            assert status == 400, f"{store}: {body['meta']}"


@pytest.mark.parametrize("value", [{"$ne": None}, {"$regex": ".*"}, {"$where": "1"}, ["$ne"]])
def test_operator_values_are_data_not_operators(store_api, value):
    """An operator where a value belongs is refused by the schema, or (as a string) matches nothing."""
    store, info, api = store_api
    task, _ = _weird_task(api)
    status, body = api.call("tasks.get_all", id=value if isinstance(value, list) else [value], only_fields=["id"])
    CASES["dollar keys"] += 1
    assert status in (200, 400) and body["meta"]["result_code"] == status, body["meta"]
    assert status == 400 or body["data"]["tasks"] == [], f"{store}: {body}"
    status, body = api.call("tasks.get_all", name=value, only_fields=["id"])
    assert status == 400 and body["meta"]["result_subcode"] == 12, f"{store}: {body['meta']}"


def test_mongodb_stores_no_operator_keys(store_api):
    store, info, api = store_api
    if store != "mongo":
        pytest.skip("MongoDB only: SQLite stores JSON text, where keys have no meaning")
    import pymongo

    task, _ = _weird_task(api)
    settings = info.app.services.settings
    with pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=5000) as client:
        raw = client.get_default_database()["tasks"].find_one({"_id": task})
    assert raw is not None
    bad = [key for key in _keys(raw) if key.startswith("$") or "." in key or "\x00" in key]
    assert not bad, f"stored raw keys: {bad[:10]}"


def _keys(value) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []
