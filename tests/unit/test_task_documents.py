"""Task fields in (create/edit normalization) and out (wire form, projection, legacy shapes)."""

from __future__ import annotations

import pytest

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.core.versions import Version
from specgate.domain.task_documents import (
    CREATE_FIELDS, EDIT_FIELDS, merge_artifacts, prepare_fields, project, to_wire,
)

NOW = "2024-05-06T07:08:09.000000+00:00"
V = Version(2, 23)


def test_unknown_keys_are_ignored_and_name_is_stripped() -> None:
    fields = prepare_fields({"name": "  abc  ", "type": "training", "method": "get", "company": "x"}, CREATE_FIELDS, V, NOW)
    assert fields == {"name": "abc", "type": "training"}


@pytest.mark.parametrize("name", ["ab", "  ab  ", "   "])
def test_names_shorter_than_three_characters_are_rejected(name: str) -> None:
    with pytest.raises(ApiError) as raised:
        prepare_fields({"name": name}, CREATE_FIELDS, V, NOW)
    assert raised.value.code is E.DATA_VALIDATION_ERROR
    assert "name=" in raised.value.message


def test_tags_with_the_operator_prefix_are_rejected() -> None:
    with pytest.raises(ApiError) as raised:
        prepare_fields({"name": "abc", "system_tags": ["ok", "__$all"]}, CREATE_FIELDS, V, NOW)
    assert raised.value.code is E.FIELDS_VALUE_ERROR
    assert "__$all" in raised.value.message


def test_output_dest_becomes_output_destination_merged_with_the_stored_output() -> None:
    previous = {"output": {"error": "boom"}}
    fields = prepare_fields({"output_dest": "s3://b"}, EDIT_FIELDS, V, NOW, previous=previous)
    assert fields == {"output": {"error": "boom", "destination": "s3://b"}}


def test_script_strings_are_stripped_and_models_get_updated_times() -> None:
    fields = prepare_fields(
        {"script": {"repository": " git@x ", "entry_point": " run.py\n", "diff": " keep "},
         "models": {"input": [{"name": "m", "model": "id1"}]}},
        CREATE_FIELDS, V, NOW,
    )
    assert fields["script"] == {"repository": "git@x", "entry_point": "run.py", "diff": " keep "}
    assert fields["models"] == {"input": [{"name": "m", "model": "id1", "updated": NOW}]}


def test_empty_section_or_parameter_names_are_rejected() -> None:
    with pytest.raises(ApiError) as raised:
        prepare_fields({"hyperparams": {"": {"a": {"value": "1"}}}}, CREATE_FIELDS, V, NOW)
    assert raised.value.code is E.VALIDATION_ERROR


def test_artifacts_are_keyed_by_key_and_mode_and_sorted() -> None:
    merged = merge_artifacts(
        [{"key": "b", "type": "x", "mode": "output"}, {"key": "a", "type": "x", "mode": "input"}],
        [{"key": "b", "type": "y"}, {"key": "a", "type": "z", "mode": "output"}],
    )
    assert merged == [
        {"key": "a", "type": "x", "mode": "input"},
        {"key": "a", "type": "z", "mode": "output"},
        {"key": "b", "type": "y", "mode": "output"},
    ]


def test_legacy_parameters_become_legacy_hyperparams_replacing_old_legacy_ones() -> None:
    previous = {"hyperparams": {"Args": {
        "old": {"section": "Args", "name": "old", "value": "1", "type": "legacy"},
        "kept": {"section": "Args", "name": "kept", "value": "2", "type": "int"},
    }}}
    fields = prepare_fields(
        {"execution": {"parameters": {"lr": 0.5, "TF_DEFINE/x": "y"}}}, EDIT_FIELDS, V, NOW, previous=previous
    )
    assert fields["hyperparams"] == {
        "Args": {
            "kept": {"section": "Args", "name": "kept", "value": "2", "type": "int"},
            "lr": {"section": "Args", "name": "lr", "value": "0.5", "type": "legacy"},
        },
        "TF_DEFINE": {"x": {"section": "TF_DEFINE", "name": "x", "value": "y", "type": "legacy"}},
    }
    assert fields["execution"] == {}


def test_clients_below_2_13_send_model_and_docker_cmd_in_execution() -> None:
    fields = prepare_fields(
        {"execution": {"model": "m1", "docker_cmd": "img:1 --gpus all"}}, EDIT_FIELDS, Version(2, 5), NOW
    )
    assert fields["models"] == {"input": [{"name": "Input Model", "model": "m1", "updated": NOW}]}
    assert fields["container"] == {"image": "img:1", "arguments": "--gpus all"}
    assert fields["execution"] == {}


STORED = {
    "id": "t1", "company": "c", "rev": 3, "name": "abc", "tags": ["b", "a"], "system_tags": ["z", "y"],
    "enqueue_status": "created", "unique_metrics": ["m"],
    "hyperparams": {"Args": {"a.b": {"section": "Args", "name": "a.b", "value": "1", "type": "legacy"}}},
    "configuration": {"cfg": {"name": "cfg", "value": "v", "type": "legacy"}},
    "models": {"input": [{"name": "i", "model": "in1"}], "output": [{"name": "o1", "model": "out1"}, {"name": "o2", "model": "out2"}]},
    "container": {"image": "img", "arguments": "-it"},
    "execution": {"artifacts": [{"key": "z", "type": "t"}, {"key": "a", "type": "t"}]},
}


def test_wire_form_sorts_tags_and_drops_internal_and_excluded_fields() -> None:
    out = to_wire(STORED, V)
    assert out["tags"] == ["a", "b"] and out["system_tags"] == ["y", "z"]
    assert "rev" not in out and "enqueue_status" not in out and "unique_metrics" not in out
    assert [a["key"] for a in out["execution"]["artifacts"]] == ["a", "z"]
    assert "model" not in out["execution"] and "docker_cmd" not in out["execution"]
    assert STORED["tags"] == ["b", "a"]  # the stored document is not touched


def test_projection_keeps_only_named_paths_and_reaches_dotted_keys_and_lists() -> None:
    out = to_wire(STORED, V, ["hyperparams.Args.a.b.value", "models.output.model", "enqueue_status"])
    assert out == {
        "hyperparams": {"Args": {"a.b": {"value": "1"}}},
        "models": {"output": [{"model": "out1"}, {"model": "out2"}]},
        "enqueue_status": "created",
    }


def test_exclusion_paths_remove_fields() -> None:
    out = to_wire(STORED, V, None, ["hyperparams", "models.output"])
    assert "hyperparams" not in out and out["models"] == {"input": [{"name": "i", "model": "in1"}]}
    assert len(STORED["models"]["output"]) == 2 and "hyperparams" in STORED  # answers are copies


def test_old_clients_get_legacy_fields() -> None:
    out = to_wire(STORED, Version(2, 5))
    assert out["execution"]["model"] == "in1"
    assert out["output"]["model"] == "out2"
    assert out["execution"]["docker_cmd"] == "img -it"
    assert out["execution"]["parameters"] == {"a.b": "1"}
    assert out["execution"]["model_desc"] == {"cfg": "v"}
    newer = to_wire(STORED, Version(2, 9))
    assert "parameters" not in newer["execution"] and newer["execution"]["docker_cmd"] == "img -it"


def test_project_merges_several_paths_into_one_document() -> None:
    assert project({"a": {"b": 1, "c": 2, "d": 3}, "e": 4}, ["a.b", "a.d", "x"]) == {"a": {"b": 1, "d": 3}}
