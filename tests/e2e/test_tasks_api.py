"""tasks.* over raw HTTP: create/read/edit/update/clone/move, request errors, tenancy, parameters."""

from __future__ import annotations

import json

import pytest

from .conftest import Api
from .test_tasks_support import fails, new_project, new_task, second_company, task


@pytest.fixture(scope="module")
def other(server):
    client = second_company(server)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def latest(server):
    client = Api(server, version="")  # no version in the path: served at the max version
    yield client
    client.http.close()


# --- create and read -------------------------------------------------------------------------------


def test_create_then_get_by_id_returns_the_stored_task(api: Api) -> None:
    project = new_project(api)
    task_id = new_task(
        api, name="  first task  ", project=project, tags=["b", "a"], system_tags=["development"],
        comment="hello", output_dest="s3://bucket", script={"repository": " git@x:y ", "entry_point": "run.py"},
        hyperparams={"Args": {"lr": {"section": "Args", "name": "lr", "value": "0.1", "type": "float"}}},
        container={"image": "python:3.11"}, runtime={"x": 1},
    )
    assert len(task_id) == 32 and int(task_id, 16) >= 0
    found = task(api, task_id)
    assert found["id"] == task_id and found["name"] == "first task" and found["status"] == "created"
    assert found["project"] == project and found["tags"] == ["a", "b"] and found["system_tags"] == ["development"]
    assert found["output"] == {"destination": "s3://bucket"}
    assert found["script"] == {"binary": "python", "repository": "git@x:y", "entry_point": "run.py"}
    assert found["hyperparams"]["Args"]["lr"]["value"] == "0.1" and found["container"] == {"image": "python:3.11"}
    assert found["runtime"] == {"x": 1} and found["last_iteration"] == 0
    assert found["created"] == found["last_update"] == found["last_change"]
    assert found["created"].endswith("+00:00") and found["user"] == found["last_changed_by"]
    assert "rev" not in found and found["company"]


def test_validate_checks_without_storing(api: Api) -> None:
    assert api.ok("tasks.validate", name="checked task", type="testing") == {}
    assert not api.ok("tasks.get_all", name="^checked task$")["tasks"]
    assert "name=ab" in fails(api, "tasks.validate", 400, 800, name="ab", type="testing")


def test_short_names_are_a_data_validation_error(api: Api) -> None:
    assert "name=  qa " in fails(api, "tasks.create", 400, 800, name="  qa ", type="training")


def test_missing_required_fields_name_the_field(api: Api) -> None:
    assert "'type'" in fails(api, "tasks.create", 400, 12, name="no type")
    assert "'name'" in fails(api, "tasks.create", 400, 12, type="training")
    assert "'task'" in fails(api, "tasks.get_by_id", 400, 12)


def test_wrong_types_and_enum_misses_name_the_field(api: Api) -> None:
    assert "type" in fails(api, "tasks.create", 400, 12, name="bad type", type="nonsense")
    assert "tags" in fails(api, "tasks.create", 400, 12, name="bad tags", type="training", tags="not-a-list")
    assert "force" in fails(api, "tasks.started", 400, 12, task="x" * 32, force="yes")


def test_malformed_and_non_object_bodies_are_rejected(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    status, body = api.raw("POST", "/v2.23/tasks.create", content=b'{"name": "x", ', headers=headers)
    assert (status, body["meta"]["result_code"], body["meta"]["result_subcode"]) == (400, 400, 0)
    assert body["data"] == {}
    status, body = api.raw("POST", "/v2.23/tasks.create", content=b'["a", "b"]', headers=headers)
    assert status == 400 and body["meta"]["result_code"] == 400 and body["data"] == {}


def test_unknown_keys_are_ignored(api: Api) -> None:
    task_id = new_task(api, name="with extras", method="get", unknown={"a": 1})
    assert "unknown" not in task(api, task_id)


def test_parent_and_project_must_exist(api: Api) -> None:
    assert "parent=" + "f" * 32 in fails(api, "tasks.create", 400, 101, name="orphan", type="training", parent="f" * 32)
    assert "id=" + "e" * 32 in fails(api, "tasks.create", 400, 401, name="lost", type="training", project="e" * 32)
    parent = new_task(api, name="parent task")
    assert task(api, new_task(api, name="child task", parent=parent))["parent"] == parent
    new_task(api, name="deleted parent", parent="__DELETED__abc")


def test_get_by_id_of_an_unknown_task_names_it(api: Api) -> None:
    assert "ids=(" + "a" * 32 + ")" in fails(api, "tasks.get_by_id", 400, 101, task="a" * 32)


def test_get_types_lists_the_types_in_use(api: Api) -> None:
    project = new_project(api)
    new_task(api, name="an inference", type="inference", project=project)
    new_task(api, name="a qc task", type="qc", project=project)
    assert api.ok("tasks.get_types", projects=[project]) == {"types": ["inference", "qc"]}


# --- edit and update -------------------------------------------------------------------------------


def test_edit_needs_a_created_task_unless_forced(api: Api) -> None:
    task_id = new_task(api, name="to edit")
    api.ok("tasks.started", task=task_id)
    message = fails(api, "tasks.edit", 400, 110, task=task_id, comment="no")
    assert "expected=created" in message and "status=in_progress" in message
    result = api.ok("tasks.edit", task=task_id, force=True, runtime={"progress": "10"}, status="stopped")
    assert result["updated"] == 1
    assert result["fields"]["runtime"] == {"progress": "10"} and result["fields"]["status"] == "stopped"
    found = task(api, task_id)
    assert found["runtime"] == {"progress": "10"} and found["status"] == "stopped"


def test_edit_merges_sub_documents_and_moves_last_update_only_for_non_user_fields(api: Api) -> None:
    task_id = new_task(api, name="merge me", script={"repository": "r", "branch": "main"}, execution={"framework": "pt"})
    before = task(api, task_id)
    renamed = api.ok("tasks.edit", task=task_id, name="merged", tags=["t"])
    assert renamed["fields"]["name"] == "merged" and "last_update" not in renamed["fields"]
    after_rename = task(api, task_id)
    assert after_rename["last_update"] == before["last_update"] and after_rename["last_change"] > before["last_change"]
    result = api.ok("tasks.edit", task=task_id, script={"branch": "dev"}, execution={"test_split": 5})
    assert result["fields"]["script"]["repository"] == "r" and "last_update" in result["fields"]
    found = task(api, task_id)
    assert found["script"]["branch"] == "dev" and found["script"]["repository"] == "r"
    assert found["execution"] == {"framework": "pt", "test_split": 5}
    assert found["last_update"] > before["last_update"]


def test_edit_validates_references_and_names(api: Api) -> None:
    task_id = new_task(api, name="edit refs")
    fails(api, "tasks.edit", 400, 401, task=task_id, project="0" * 32)
    fails(api, "tasks.edit", 400, 101, task=task_id, parent="0" * 32)
    fails(api, "tasks.edit", 400, 800, task=task_id, name="x")
    assert api.ok("tasks.edit", task=task_id) == {"updated": 0}


def test_update_writes_only_user_settable_fields(api: Api) -> None:
    task_id = new_task(api, name="to update")
    result = api.ok("tasks.update", task=task_id, comment="c", output__error="boom", status="failed", tags=["z", "y"])
    assert result["updated"] == 1 and result["fields"]["tags"] == ["y", "z"]
    found = task(api, task_id)
    assert found["comment"] == "c" and found["output"]["error"] == "boom" and found["status"] == "created"


def test_update_batch_takes_json_lines(api: Api) -> None:
    one = new_task(api, name="batch one")
    body = json.dumps({"task": one, "comment": "from batch", "method": "get"}).encode() + b"\n"
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json-lines"}
    status, answer = api.raw("GET", "/v2.23/tasks.update_batch", content=body, headers=headers)
    assert status == 200 and answer["data"] == {"updated": 1}
    assert task(api, one)["comment"] == "from batch"
    missing = json.dumps({"task": "9" * 32}).encode()
    status, answer = api.raw("GET", "/v2.23/tasks.update_batch", content=missing, headers=headers)
    assert (status, answer["meta"]["result_subcode"]) == (400, 101)


# --- clone, move, tags, publicity ------------------------------------------------------------------


def test_clone_copies_the_definition_not_the_run(api: Api) -> None:
    source = new_task(
        api, name="clone source", system_tags=["development", "keep"], tags=["t"], comment="c",
        execution={"queue": "q" * 32, "framework": "pt", "artifacts": [
            {"key": "in", "type": "a", "mode": "input"}, {"key": "out", "type": "a", "mode": "output"}]},
        hyperparams={"Args": {"a": {"section": "Args", "name": "a", "value": "1"}}},
        configuration={"cfg.x": {"name": "cfg.x", "value": "v"}}, output_dest="s3://d",
    )
    api.ok("tasks.started", task=source)
    clone_id = api.ok("tasks.clone", task=source)["id"]
    copy = task(api, clone_id)
    assert clone_id != source and copy["status"] == "created" and copy["parent"] == source
    assert copy["name"] == "clone source" and copy["tags"] == ["t"] and copy["system_tags"] == ["keep"]
    assert copy["execution"] == {"framework": "pt", "artifacts": [{"key": "in", "type": "a", "mode": "input"}]}
    assert copy["hyperparams"]["Args"]["a"]["value"] == "1" and list(copy["configuration"]) == ["cfg.x"]
    assert copy["output"] == {"destination": "s3://d"} and "started" not in copy
    grandchild = task(api, api.ok("tasks.clone", task=clone_id, new_task_name="renamed clone")["id"])
    assert grandchild["parent"] == source and grandchild["name"] == "renamed clone"


def test_clone_into_a_new_project_by_name(api: Api) -> None:
    source = new_task(api, name="to another project")
    result = api.ok("tasks.clone", task=source, new_project_name="cloned here/sub project")
    assert result["new_project"]["name"] == "cloned here/sub project"
    assert task(api, result["id"])["project"] == result["new_project"]["id"]
    again = api.ok("tasks.clone", task=source, new_project_name="cloned here/sub project")
    assert again["new_project"]["id"] == result["new_project"]["id"]
    fails(api, "tasks.clone", 400, 401, task=source, new_task_project="1" * 32)
    fails(api, "tasks.clone", 400, 101, task="1" * 32)


def test_move_to_a_project_by_id_or_by_name(api: Api) -> None:
    one, two = new_task(api, name="mover one"), new_task(api, name="mover two")
    project = new_project(api)
    assert api.ok("tasks.move", ids=[one, two], project=project) == {"project_id": project}
    assert task(api, two)["project"] == project
    named = api.ok("tasks.move", ids=[one], project_name="moved by name")["project_id"]
    assert task(api, one)["project"] == named
    assert api.ok("projects.get_by_id", project=named)["project"]["name"] == "moved by name"
    fails(api, "tasks.move", 400, 11, ids=[one])
    fails(api, "tasks.move", 400, 101, ids=[one, "2" * 32], project=project)


def test_update_tags_is_served_at_the_max_version(api: Api, latest: Api) -> None:
    task_id = new_task(api, name="tagged", tags=["old", "keep"])
    assert latest.ok("tasks.update_tags", ids=[task_id], add_tags=["new"], remove_tags=["old"]) == {"updated": 1}
    assert task(api, task_id)["tags"] == ["keep", "new"]
    status, _ = api.call("tasks.update_tags", ids=[task_id])
    assert status == 404  # a draft-only action has no released version below the max


def test_old_clients_get_legacy_shapes(api: Api) -> None:
    task_id = new_task(api, name="legacy shapes", container={"image": "img", "arguments": "-e A=1"},
                       models={"input": [{"name": "m", "model": "model-1"}]})
    old = api.ok("tasks.get_by_id", version="2.5", task=task_id)["task"]
    assert old["execution"]["docker_cmd"] == "img -e A=1" and old["execution"]["model"] == "model-1"
    assert "docker_cmd" not in task(api, task_id).get("execution", {})


# --- tenancy ---------------------------------------------------------------------------------------


def test_another_companys_task_is_invisible_and_unwritable(api: Api, other: Api) -> None:
    task_id = new_task(api, name="private task")
    message = fails(other, "tasks.get_by_id", 400, 101, task=task_id)
    assert task_id in message
    message = fails(other, "tasks.started", 400, 101, task=task_id)
    assert f"id={task_id}" in message
    fails(other, "tasks.edit", 400, 101, task=task_id, comment="x")
    fails(other, "tasks.delete", 400, 101, task=task_id)
    assert other.ok("tasks.get_all", id=[task_id])["tasks"] == []
    fails(other, "tasks.clone", 400, 101, task=task_id)
    foreign_project = new_project(other)
    fails(api, "tasks.create", 400, 401, name="wrong project", type="training", project=foreign_project)


def test_public_tasks_are_readable_everywhere_and_writable_nowhere(api: Api, other: Api) -> None:
    task_id = new_task(api, name="shared task")
    assert api.ok("tasks.make_public", ids=[task_id]) == {"updated": 1}
    assert task(other, task_id)["company"] == ""
    assert [t["id"] for t in other.ok("tasks.get_all", id=[task_id])["tasks"]] == [task_id]
    assert "cannot modify public task(s)" in fails(other, "tasks.started", 403, 21, task=task_id)
    fails(api, "tasks.edit", 403, 21, task=task_id, comment="x")
    assert task(other, other.ok("tasks.clone", task=task_id)["id"])["parent"] == task_id
    fails(other, "tasks.make_private", 400, 101, ids=[task_id])
    assert api.ok("tasks.make_private", ids=[task_id]) == {"updated": 1}
    fails(other, "tasks.get_by_id", 400, 101, task=task_id)


# --- parameters, configuration, artifacts, models --------------------------------------------------


def test_hyper_params_keep_dots_and_dollars_in_names(api: Api) -> None:
    task_id = new_task(api, name="params")
    items = [
        {"section": "Args", "name": "opt.lr", "value": "0.1"},
        {"section": "$env.x", "name": "$HOME", "value": "/root", "type": "str"},
    ]
    assert api.ok("tasks.edit_hyper_params", task=task_id, hyperparams=items) == {"updated": 1}
    listed = api.ok("tasks.get_hyper_params", tasks=[task_id])["params"]
    assert listed == [{"task": task_id, "hyperparams": [
        {"section": "$env.x", "name": "$HOME", "value": "/root", "type": "str"},
        {"section": "Args", "name": "opt.lr", "value": "0.1"},
    ]}]
    assert task(api, task_id)["hyperparams"]["Args"]["opt.lr"]["value"] == "0.1"
    assert api.ok("tasks.delete_hyper_params", task=task_id, hyperparams=[{"section": "$env.x"}]) == {"deleted": 1}
    assert list(task(api, task_id)["hyperparams"]) == ["Args"]
    fails(api, "tasks.delete_hyper_params", 400, 15, task=task_id,
          hyperparams=[{"section": "Args"}, {"section": "Args", "name": "opt.lr"}])
    replaced = [{"section": "New", "name": "n", "value": "1"}]
    api.ok("tasks.edit_hyper_params", task=task_id, hyperparams=replaced, replace_hyperparams="all")
    assert list(task(api, task_id)["hyperparams"]) == ["New"]


def test_hyper_param_edits_follow_the_status_rules(api: Api) -> None:
    task_id = new_task(api, name="running params")
    api.ok("tasks.started", task=task_id)
    item = [{"section": "Args", "name": "a", "value": "1"}]
    assert "status=in_progress" in fails(api, "tasks.edit_hyper_params", 400, 110, task=task_id, hyperparams=item)
    api.ok("tasks.edit_hyper_params", task=task_id, hyperparams=item, force=True)
    api.ok("tasks.stopped", task=task_id)
    fails(api, "tasks.edit_hyper_params", 400, 110, task=task_id, hyperparams=item, force=True)
    props = [{"section": "Properties", "name": "p", "value": "v"}]
    api.ok("tasks.edit_hyper_params", task=task_id, hyperparams=props)
    assert task(api, task_id)["hyperparams"]["properties"]["p"]["value"] == "v"


def test_configuration_items_round_trip(api: Api) -> None:
    task_id = new_task(api, name="configured")
    items = [{"name": "b.cfg", "value": "x: 1", "type": "yaml"}, {"name": "a$", "value": "y"}]
    assert api.ok("tasks.edit_configuration", task=task_id, configuration=items) == {"updated": 1}
    found = api.ok("tasks.get_configurations", tasks=[task_id], names=["b.cfg"])["configurations"]
    assert found == [{"task": task_id, "configuration": [{"name": "b.cfg", "value": "x: 1", "type": "yaml"}]}]
    everything = api.ok("tasks.get_configurations", tasks=[task_id])["configurations"][0]["configuration"]
    assert [c["name"] for c in everything] == ["a$", "b.cfg"]
    assert api.ok("tasks.delete_configuration", task=task_id, configuration=["a$"]) == {"deleted": 1}
    assert list(task(api, task_id)["configuration"]) == ["b.cfg"]
    fails(api, "tasks.get_configurations", 400, 101, tasks=[task_id, "3" * 32])


def test_artifacts_and_models(api: Api) -> None:
    task_id = new_task(api, name="with outputs")
    api.ok("tasks.started", task=task_id)
    artifacts = [{"key": "z", "type": "csv", "uri": "s3://z"}, {"key": "a", "type": "json", "mode": "input"}]
    assert api.ok("tasks.add_or_update_artifacts", task=task_id, artifacts=artifacts) == {"updated": 1}
    api.ok("tasks.add_or_update_artifacts", task=task_id, artifacts=[{"key": "z", "type": "parquet"}])
    found = task(api, task_id)["execution"]["artifacts"]
    assert [(a["key"], a["type"], a["mode"]) for a in found] == [("a", "json", "input"), ("z", "parquet", "output")]
    assert api.ok("tasks.delete_artifacts", task=task_id, artifacts=[{"key": "a", "mode": "input"}]) == {"deleted": 1}
    assert [a["key"] for a in task(api, task_id)["execution"]["artifacts"]] == ["z"]
    api.ok("tasks.add_or_update_model", task=task_id, name="best", model="m1", type="output", iteration=7)
    api.ok("tasks.add_or_update_model", task=task_id, name="best", model="m2", type="output")
    found = task(api, task_id)
    assert [(m["name"], m["model"]) for m in found["models"]["output"]] == [("best", "m2")]
    assert found["last_iteration"] == 7
    api.ok("tasks.delete_models", task=task_id, models=[{"name": "best", "type": "output"}])
    assert task(api, task_id)["models"]["output"] == []


def test_set_requirements_needs_a_script(api: Api) -> None:
    bare = new_task(api, name="no script")
    assert "Task has no script field" in fails(api, "tasks.set_requirements", 400, 122, task=bare, requirements={"pip": "x"})
    scripted = new_task(api, name="scripted", script={"entry_point": "a.py"})
    api.ok("tasks.started", task=scripted)
    result = api.ok("tasks.set_requirements", task=scripted, requirements={"pip": "numpy==2.0"})
    assert result == {"updated": 1, "fields": {"script.requirements": {"pip": "numpy==2.0"}}}
    assert task(api, scripted)["script"]["requirements"] == {"pip": "numpy==2.0"}
