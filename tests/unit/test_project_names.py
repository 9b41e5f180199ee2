"""Project name normalisation and validation (contract §7 "Naming")."""

from __future__ import annotations

import pytest

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.domain.projects import MAX_DEPTH, basename_of, location_of, normalize_name, present, split_name


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("abc", "abc"),
        ("  abc  ", "abc"),
        (" aaa// bbb ", "aaa/bbb"),
        ("/aaa/bbb/", "aaa/bbb"),
        ("aaa / bbb / ccc", "aaa/bbb/ccc"),
        ("my project/sub project", "my project/sub project"),  # inner spaces are kept
        ("aaa/ /bbb", "aaa/bbb"),  # a blank part is dropped like an empty one
    ],
)
def test_normalize_splits_strips_and_drops_empty_parts(raw: str, expected: str):
    assert normalize_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "/", "///", " / / ", "   "])
def test_nothing_left_is_an_invalid_project_name(raw: str):
    with pytest.raises(ApiError) as info:
        normalize_name(raw)
    assert info.value.code is E.INVALID_PROJECT_NAME
    assert (info.value.code.status, info.value.code.subcode) == (400, 407)
    assert f"name={raw}" in info.value.message


@pytest.mark.parametrize("raw", ["ab", "aaa/b", "aaa/bb ", " a ", "aaa/bbb/cc"])
def test_basename_shorter_than_three_characters_is_a_validation_error(raw: str):
    with pytest.raises(ApiError) as info:
        normalize_name(raw)
    assert (info.value.code.status, info.value.code.subcode) == (400, 12)
    assert "name=" in info.value.message and "part=" in info.value.message


def test_three_characters_after_stripping_are_enough():
    assert normalize_name("  abc / def ") == "abc/def"


def test_a_short_ancestor_is_refused_too_because_it_would_be_created_with_that_basename():
    with pytest.raises(ApiError) as info:
        normalize_name("ab/cdef")
    assert info.value.code is E.VALIDATION_ERROR
    assert "part=ab" in info.value.message


def test_depth_limit():
    deepest = "/".join(f"p{i:02d}" for i in range(MAX_DEPTH))
    assert normalize_name(deepest) == deepest
    with pytest.raises(ApiError) as info:
        normalize_name(deepest + "/p99")
    assert (info.value.code.status, info.value.code.subcode) == (400, 409)
    assert f"max_depth={MAX_DEPTH}" in info.value.message


def test_empty_parts_do_not_count_towards_the_depth():
    name = "//".join(f"p{i:02d}" for i in range(MAX_DEPTH)) + "///"
    assert len(split_name(name)) == MAX_DEPTH
    assert normalize_name(name).count("/") == MAX_DEPTH - 1


def test_location_and_basename():
    assert location_of("aaa/bbb/ccc") == "aaa/bbb" and basename_of("aaa/bbb/ccc") == "ccc"
    assert location_of("aaa") == "" and basename_of("aaa") == "aaa"


def test_present_hides_path_and_rev_and_sorts_tags():
    doc = {"id": "x", "name": "aaa", "path": ["p"], "rev": 3, "company_origin": "c", "tags": ["b", "a"], "system_tags": ["z", "y"]}
    assert present(doc) == {"id": "x", "name": "aaa", "tags": ["a", "b"], "system_tags": ["y", "z"]}
    assert present(doc, ["path", "name"]) == {"path": ["p"], "name": "aaa"}
    assert present(doc, None, ["tags"]) == {"id": "x", "name": "aaa", "system_tags": ["y", "z"]}
