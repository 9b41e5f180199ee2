"""Version keys and pins: parsing and the floor rule, by example (properties live in tests/property)."""

import pytest

from specgate.core.versions import Version, VersionError, floor, parse_key, parse_pin


@pytest.mark.parametrize("text", ["2", "2.x", "v2.1", "2.01", "02.1", "2.1.1", "", " 2.1"])
def test_spec_keys_must_be_major_dot_minor(text):
    with pytest.raises(VersionError):
        parse_key(text)


def test_pins_may_omit_the_minor_part():
    assert parse_pin("2") == Version(2, 0)
    assert parse_pin("2.13") == Version(2, 13)
    with pytest.raises(VersionError):
        parse_pin("2.05")


def test_floor_is_numeric():
    keys = sorted(parse_key(k) for k in ["2.13", "2.9", "2.1"])
    assert [str(k) for k in keys] == ["2.1", "2.9", "2.13"]
    assert floor(keys, parse_pin("2.10")) == Version(2, 9)
    assert floor(keys, parse_pin("2.0")) is None


def test_drafts_are_major_999_and_above():
    assert parse_key("999.0").is_draft and not parse_key("2.26").is_draft
