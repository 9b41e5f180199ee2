"""tasks.get_all / get_all_ex / get_by_id_ex over raw HTTP (contract §8)."""

from __future__ import annotations

import time

import pytest

from .conftest import Api
from .test_tasks_support import fails, new_project, new_task


@pytest.fixture(scope="module")
def world(api: Api) -> dict:
    """One project tree with tasks of known names, tags, types and statuses (created once)."""
    root = new_project(api, "query root")
    child = api.ok("projects.create", name="query root/child", description="")["id"]
    ids = {
        "alpha": new_task(api, name="q-alpha", project=root, tags=["red", "big"], type="training", comment="Needle here"),
        "beta": new_task(api, name="q-beta", project=root, tags=["red"], type="testing"),
        "gamma": new_task(api, name="q-gamma", project=child, tags=["blue"], type="training"),
        "delta": new_task(api, name="q-delta", project=child, system_tags=["hidden"], type="training"),
        "eps": new_task(api, name="q-eps", project=root, type="inference",
                        hyperparams={"Args": {"batch": {"section": "Args", "name": "batch", "value": "32"}}}),
    }
    api.ok("tasks.started", task=ids["beta"])
    api.ok("tasks.started", task=ids["gamma"])
    api.ok("tasks.completed", task=ids["gamma"])
    return {"root": root, "child": child, **ids}


def names(result: dict) -> list[str]:
    return sorted(t["name"] for t in result["tasks"])


def query(api: Api, **data) -> list[str]:
    return names(api.ok("tasks.get_all", name="^q-", **data))


def test_only_fields_projects_exactly(api: Api, world: dict) -> None:
    result = api.ok("tasks.get_all", id=[world["alpha"]], only_fields=["name", "hyperparams", "tags"])
    assert result == {"tasks": [{"name": "q-alpha", "tags": ["big", "red"]}]}
    result = api.ok("tasks.get_all", id=[world["eps"]], only_fields=["id", "hyperparams.Args.batch.value"])
    assert result["tasks"] == [{"id": world["eps"], "hyperparams": {"Args": {"batch": {"value": "32"}}}}]
    full = api.ok("tasks.get_all", id=[world["eps"]], only_fields=["-hyperparams"])["tasks"][0]
    assert "hyperparams" not in full and full["name"] == "q-eps"


def test_name_is_an_unanchored_regex(api: Api, world: dict) -> None:
    assert names(api.ok("tasks.get_all", name="q-(alpha|beta)$")) == ["q-alpha", "q-beta"]
    assert names(api.ok("tasks.get_all", name="lph")) == ["q-alpha"]
    fails(api, "tasks.get_all", 400, 21, name="q-(")


def test_a_regex_that_could_backtrack_for_ever_is_refused_at_once(api: Api, world: dict) -> None:
    api.ok("tasks.create", name="a" * 40 + "!", type="training")  # what (a+)+$ would take ages to reject
    started = time.monotonic()
    fails(api, "tasks.get_all", 400, 21, name="(a+)+$")
    fails(api, "tasks.get_all", 400, 21, name="x" * 600)
    assert time.monotonic() - started < 5
    assert names(api.ok("tasks.get_all", name="^q-(alpha|beta)$")) == ["q-alpha", "q-beta"]  # ordinary ones still work


def test_list_fields_with_exclusion_and_operators(api: Api, world: dict) -> None:
    assert query(api, tags=["red"]) == ["q-alpha", "q-beta"]
    assert query(api, tags=["red", "-big"]) == ["q-beta"]
    assert query(api, tags=["__$all", "red", "big"]) == ["q-alpha"]
    assert query(api, tags=["__$any", "blue", "__$not", "red"]) == ["q-eps", "q-gamma"]
    assert query(api, type=["testing", "inference"]) == ["q-beta", "q-eps"]
    assert query(api, status=["in_progress"]) == ["q-beta"]
    assert query(api, id=[world["alpha"], world["beta"]]) == ["q-alpha", "q-beta"]
    assert "__$bad" in fails(api, "tasks.get_all", 400, 16, tags=["__$bad", "x"])


def test_structured_filters_and_multi_field_patterns(api: Api, world: dict) -> None:
    assert query(api, filters={"tags": {"any": {"include": ["blue", "big"]}}}) == ["q-alpha", "q-gamma"]
    assert query(api, filters={"tags": {"all": {"exclude": ["red"]}}}) == ["q-eps", "q-gamma"]
    assert query(api, _any_={"fields": ["name", "comment"], "pattern": "needle"}) == ["q-alpha"]
    assert query(api, _all_={"fields": ["name", "comment"], "pattern": "ALPHA"}) == []


def test_search_text_is_case_insensitive_over_name_comment_and_id(api: Api, world: dict) -> None:
    assert query(api, search_text="NEEDLE") == ["q-alpha"]
    assert query(api, search_text=world["beta"]) == ["q-beta"]
    assert query(api, search_text="q-gamma q-eps") == ["q-eps", "q-gamma"]


def test_hidden_tasks_need_search_hidden_or_an_id(api: Api, world: dict) -> None:
    assert "q-delta" not in query(api)
    assert "q-delta" in query(api, search_hidden=True)
    assert names(api.ok("tasks.get_all", id=[world["delta"]])) == ["q-delta"]


def test_include_subprojects_expands_project_ids(api: Api, world: dict) -> None:
    assert query(api, project=[world["root"]]) == ["q-alpha", "q-beta", "q-eps"]
    assert query(api, project=[world["root"]], include_subprojects=True) == ["q-alpha", "q-beta", "q-eps", "q-gamma"]
    assert query(api, project=[world["child"]], include_subprojects=True, search_hidden=True) == ["q-delta", "q-gamma"]


def test_order_paging_and_scrolling(api: Api, world: dict) -> None:
    ordered = api.ok("tasks.get_all", name="^q-", order_by=["-name"], only_fields=["name"])["tasks"]
    assert [t["name"] for t in ordered] == ["q-gamma", "q-eps", "q-beta", "q-alpha"]
    pages = [
        [t["name"] for t in api.ok("tasks.get_all", name="^q-", order_by=["name"], page=p, page_size=3,
                                   only_fields=["name"])["tasks"]]
        for p in (0, 1)
    ]
    assert pages == [["q-alpha", "q-beta", "q-eps"], ["q-gamma"]]
    seen, scroll = [], None
    for _ in range(3):
        result = api.ok("tasks.get_all", name="^q-", order_by=["name"], size=2, only_fields=["name"],
                        **({"scroll_id": scroll} if scroll else {"scroll_id": ""}))
        seen += [t["name"] for t in result["tasks"]]
        scroll = result["scroll_id"]
    assert seen == ["q-alpha", "q-beta", "q-eps", "q-gamma"]
    fails(api, "tasks.get_all", 400, 12, scroll_id="")


def test_ascending_order_puts_missing_values_last(api: Api, world: dict) -> None:
    ordered = api.ok("tasks.get_all", name="^q-", order_by=["started", "name"], only_fields=["name"])["tasks"]
    assert [t["name"] for t in ordered] == ["q-beta", "q-gamma", "q-alpha", "q-eps"]
    page = api.ok("tasks.get_all", name="^q-", order_by=["started", "name"], page=1, page_size=3,
                  only_fields=["name"])["tasks"]
    assert [t["name"] for t in page] == ["q-eps"]
    # pages that end among the tasks missing the field, start there, or start right at the boundary
    for number, size, names in ((0, 3, ["q-beta", "q-gamma", "q-alpha"]), (2, 1, ["q-alpha"]), (1, 2, ["q-alpha", "q-eps"])):
        page = api.ok("tasks.get_all", name="^q-", order_by=["started", "name"], page=number, page_size=size,
                      only_fields=["name"])["tasks"]
        assert [t["name"] for t in page] == names, (number, size)


def test_ranges_and_datetime_conditions(api: Api, world: dict) -> None:
    stamp = api.ok("tasks.get_all", id=[world["gamma"]], only_fields=["status_changed"])["tasks"][0]["status_changed"]
    assert query(api, status_changed=[f">={stamp}"]) == ["q-gamma"]
    assert query(api, started=[None, stamp], search_hidden=True) == ["q-alpha", "q-beta", "q-delta", "q-eps", "q-gamma"]
    assert query(api, last_iteration=[1, None]) == []
    assert query(api, **{"hyperparams.Args.batch.value": ["32"]}) == ["q-eps"]


def test_get_all_ex_and_get_by_id_ex(api: Api, world: dict) -> None:
    result = api.ok("tasks.get_all_ex", name="^q-", only_fields=["name"], include_subprojects=True,
                    project=[world["root"]])
    assert names(result) == ["q-alpha", "q-beta", "q-eps", "q-gamma"]
    by_id = api.ok("tasks.get_by_id_ex", id=[world["delta"]], only_fields=["name", "system_tags"])
    assert by_id == {"tasks": [{"name": "q-delta", "system_tags": ["hidden"]}]}
    assert "missing=(id)" in fails(api, "tasks.get_by_id_ex", 400, 11, only_fields=["name"])


def test_agent_status_poll_shape(api: Api, world: dict) -> None:
    """What the SDK sends while a task runs (Appendix A step 15), at the version the agent uses."""
    result = api.ok("tasks.get_all", version="2.13", id=[world["beta"]],
                    only_fields=["status", "status_message", "id"], search_hidden=False)
    assert result == {"tasks": [{"id": world["beta"], "status": "in_progress", "status_message": ""}]}
