"""specgate.validate_request on the real compiled specs: what a library user sees."""

import pytest

import specgate
from specgate import EndpointNotFound, RequestValidationError
from specgate.runtime.tables import load
from specgate.runtime.validate import Validators


def test_defaults_are_applied_and_the_caller_payload_is_untouched():
    payload = {"task": "t1"}
    data = specgate.validate_request("tasks.reset", "2.20", payload)
    assert data == {"task": "t1", "force": False, "clear_all": False}
    assert payload == {"task": "t1"}


def test_a_sent_value_wins_over_the_default():
    assert specgate.validate_request("tasks.reset", "2.20", {"task": "t", "force": True})["force"] is True


def test_nulls_mean_absent_so_a_null_required_field_is_missing():
    data = specgate.validate_request("tasks.create", "2.23", {"name": "n", "type": "training", "comment": None})
    assert "comment" not in data
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.create", "2.23", {"name": None, "type": "training"})
    assert e.value.path == "name" and "name" in e.value.message


def test_unknown_keys_pass_even_where_the_spec_forbids_them():
    # the SDK adds "method" to every body; auth.create_credentials says additionalProperties: false
    assert specgate.validate_request("auth.create_credentials", "2.23", {"method": "get"}) == {"method": "get"}


def test_missing_required_field_is_named():
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.create", "2.23", {"name": "n"})
    assert (e.value.path, e.value.keyword) == ("type", "required")
    assert e.value.message == "missing required field 'type'"


def test_wrong_type_deep_in_the_body_names_the_path():
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.create", "2.23", {"name": "n", "type": "training", "tags": ["a", 3]})
    assert e.value.path == "tags[1]"
    assert e.value.message.startswith("invalid field 'tags[1]'")


def test_enum_violation_through_a_definition_reference():
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.create", "2.23", {"name": "n", "type": "cooking"})
    assert e.value.path == "type" and e.value.keyword == "enum"


def test_a_body_that_is_not_an_object_is_rejected():
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.get_all", "2.23", [1, 2])
    assert e.value.path == "" and "object" in e.value.message


@pytest.fixture(scope="module")
def validators() -> Validators:
    return Validators(load())


@pytest.mark.parametrize(
    "pin,actual",
    [("2.1", "2.1"), ("2.9", "2.1"), ("2.13", "2.1"), ("2.14", "2.14"), ("2.20", "2.15"), ("2.26", "2.26"), ("3.0", "2.26"), ("2.100", "2.26")],
)
def test_a_pin_resolves_to_the_highest_key_at_or_below_it(validators, pin, actual):
    _, entry = validators.entry("tasks.get_all", pin)
    assert entry.key == actual


def test_version_keys_compare_numerically_not_as_text(validators):
    # tasks.get_all_ex has 2.1, 2.13, 2.14, 2.15, 2.23: "2.9" sorts after "2.13" as text
    assert validators.entry("tasks.get_all_ex", "2.9")[1].key == "2.1"
    assert validators.entry("tasks.get_all_ex", "2.13")[1].key == "2.13"


def test_the_same_rule_picks_the_schema_that_validates(validators):
    # tasks.get_all gained include_subprojects at 2.26; its default appears only from there on
    assert "include_subprojects" not in specgate.validate_request("tasks.get_all", "2.25", {})
    assert specgate.validate_request("tasks.get_all", "2.26", {})["include_subprojects"] is False


def test_drafts_are_not_served_unless_enabled():
    off, on = Validators(load()), Validators(load(drafts=True))
    assert off.entry("tasks.get_all_ex", "999.0")[1].key == "2.23"
    assert on.entry("tasks.get_all_ex", "999.0")[1].key == "999.0"


def test_an_action_that_exists_only_as_a_draft_is_served_from_the_max_version(validators):
    assert validators.entry("tasks.update_tags", "2.26")[1].key == "999.0"
    with pytest.raises(EndpointNotFound):
        validators.entry("tasks.update_tags", "2.25")


@pytest.mark.parametrize("endpoint,version", [("tasks.create", "2.0"), ("tasks.nothing", "2.20"), ("tasks.create", "2.05"), ("tasks.create", "x")])
def test_unknown_endpoint_low_or_malformed_pin(endpoint, version):
    with pytest.raises(EndpointNotFound) as e:
        specgate.validate_request(endpoint, version, {})
    assert endpoint in str(e.value)


def test_batch_items_validate_like_the_named_action():
    with pytest.raises(RequestValidationError) as e:
        specgate.validate_request("tasks.update_batch", "2.20", {"name": "no task id"})
    assert e.value.path == "task"
