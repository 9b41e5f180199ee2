"""Properties of the floor rule: versions.floor / routable / Routing and its use by Validators.entry.

The oracle is written from ints only (never from Version's own ordering), so a Version that compared
as text, or a floor that bisected the wrong way, makes these fail.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from specgate.core.errors import EndpointNotFound
from specgate.core.versions import (
    DRAFT_MAJOR,
    Routing,
    Version,
    VersionError,
    floor,
    parse_key,
    parse_pin,
    routable,
)
from specgate.runtime import tables as tables_mod
from specgate.runtime.validate import Validators

SETTINGS = settings(max_examples=100, deadline=None)

# Small ranges so collisions and the 2.9 / 2.10 / 2.100 traps are frequent.
majors = st.one_of(st.integers(0, 3), st.integers(0, 12), st.sampled_from([DRAFT_MAJOR, DRAFT_MAJOR + 1]))
minors = st.one_of(st.integers(0, 12), st.sampled_from([1, 9, 10, 11, 19, 100, 101]))
released_majors = st.one_of(st.integers(0, 3), st.integers(0, 12))


def ints(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1]))


def versions(major=majors):
    return st.builds(lambda a, b: parse_key(f"{a}.{b}"), major, minors)


def key_lists(major=majors, min_size=0):
    """Ascending, distinct version keys (sorted by the int oracle, not by Version)."""
    return st.lists(versions(major), min_size=min_size, max_size=8, unique_by=ints).map(lambda ks: sorted(ks, key=ints))


def oracle_floor(keys, pin):
    below = [k for k in keys if ints(k) <= ints(pin)]
    return max(below, key=ints) if below else None


def le(a, b) -> bool:
    """a <= b with None as the bottom element."""
    return a is None or (b is not None and ints(a) <= ints(b))


# --- parsing ------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_parse_key_is_numeric_and_round_trips(major, minor):
    v = parse_key(f"{major}.{minor}")
    assert ints(v) == (major, minor)
    assert str(v) == f"{major}.{minor}"
    assert v.is_draft == (major >= DRAFT_MAJOR)
    assert parse_pin(str(v)) == v


@SETTINGS
@given(st.integers(0, 10**6))
def test_partial_pin_means_minor_zero(major):
    assert ints(parse_pin(str(major))) == (major, 0)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 120)), min_size=2, max_size=10, unique=True))
def test_ordering_is_numeric_not_lexicographic(pairs):
    texts = [f"{a}.{b}" for a, b in pairs]
    parsed = sorted(parse_key(t) for t in texts)
    assert [ints(v) for v in parsed] == sorted(pairs)


def test_ordering_traps():
    assert parse_key("2.9") < parse_key("2.10") < parse_key("2.100")
    assert parse_key("9.0") < parse_key("10.0")
    assert parse_key("2.1") != parse_key("2.10")
    assert floor([parse_key("2.9"), parse_key("2.10")], parse_pin("2.9")) == parse_key("2.9")
    assert floor([parse_key("2.9"), parse_key("2.10")], parse_pin("2.11")) == parse_key("2.10")


@pytest.mark.parametrize("text", ["2", "02.1", "2.01", "2.1.0", "2.", ".1", "v2.1", "2,1", "-1.0", "", "2.1 "])
def test_bad_keys_rejected(text):
    with pytest.raises(VersionError):
        parse_key(text)


@pytest.mark.parametrize("text", ["02", "2.01", "2.1.0", "x", "", "2."])
def test_bad_pins_rejected(text):
    with pytest.raises(VersionError):
        parse_pin(text)


# --- floor --------------------------------------------------------------------------------------


@SETTINGS
@given(key_lists(), versions())
def test_floor_is_the_highest_key_at_or_below_the_pin(keys, pin):
    got = floor(keys, pin)
    assert got == oracle_floor(keys, pin)
    if got is not None:
        assert got in keys and ints(got) <= ints(pin)
        assert all(ints(k) <= ints(got) or ints(k) > ints(pin) for k in keys)


@SETTINGS
@given(key_lists(min_size=1))
def test_floor_below_the_first_key_is_none_and_each_key_serves_itself(keys):
    first = keys[0]
    below = [Version(first.major, first.minor - 1)] if first.minor else []
    below += [Version(first.major - 1, 10**6)] if first.major else []
    for pin in below:
        assert floor(keys, pin) is None
    for k in keys:
        assert floor(keys, k) == k


@SETTINGS
@given(key_lists(), versions(), versions())
def test_floor_is_monotone_in_the_pin(keys, a, b):
    lo, hi = sorted([a, b], key=ints)
    assert le(floor(keys, lo), floor(keys, hi))


# --- routable / Routing ------------------------------------------------------------------------


def oracle_pick(keys, pin, drafts, max_version):
    """What clearml-server serves: floor over released keys, or over all keys with drafts on; a
    draft-only action answers from max_version when drafts are off."""
    if drafts:
        return oracle_floor(keys, pin)
    released = [k for k in keys if k[0] < DRAFT_MAJOR]
    if released:
        return oracle_floor(released, pin)
    if keys and ints(pin) >= ints(max_version):
        return keys[0]
    return None


@SETTINGS
@given(key_lists(), st.booleans(), versions(released_majors))
def test_routable_pairs(keys, drafts, max_version):
    pairs = routable(keys, drafts=drafts, max_version=max_version)
    serve = [ints(s) for s, _ in pairs]
    assert serve == sorted(set(serve)), "serve-from keys must be ascending and distinct"
    actual = [a for _, a in pairs]
    assert all(a in keys for a in actual)
    released = [k for k in keys if k[0] < DRAFT_MAJOR]
    if drafts:
        assert pairs == [(k, k) for k in keys]
    elif released:
        assert pairs == [(k, k) for k in released]
        assert not any(a.is_draft for a in actual)
    elif keys:
        assert pairs == [(max_version, keys[0])]
    else:
        assert pairs == []


@SETTINGS
@given(key_lists(), st.booleans(), versions(released_majors), st.lists(versions(), max_size=6))
def test_routing_pick_follows_the_floor_rule(keys, drafts, max_version, pins):
    routing = Routing(routable(keys, drafts=drafts, max_version=max_version))
    has_released = any(not k.is_draft for k in keys)
    previous = None
    for pin in sorted(pins, key=ints):
        got = routing.pick(pin)
        assert got == oracle_pick(keys, pin, drafts, max_version)
        if not drafts and has_released:
            assert got is None or not got.is_draft, "a draft must not be served with drafts off"
        if drafts or has_released:
            assert le(previous, got), "pick must be monotone in the pin"
        previous = got


@SETTINGS
@given(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True), versions(released_majors), st.booleans())
def test_draft_only_action_is_served_from_max_version(draft_minors, max_version, drafts):
    keys = sorted(Version(DRAFT_MAJOR, m) for m in draft_minors)
    routing = Routing(routable(keys, drafts=drafts, max_version=max_version))
    if drafts:
        assert routing.pick(max_version) is None
        assert routing.pick(keys[-1]) == keys[-1]
    else:
        assert routing.pick(max_version) == keys[0]
        assert routing.pick(Version(max_version.major, max_version.minor + 1)) == keys[0]
        if max_version.minor:
            assert routing.pick(Version(max_version.major, max_version.minor - 1)) is None


# --- the same rule through the runtime tables -------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(key_lists(min_size=1), st.booleans(), st.lists(versions(), min_size=1, max_size=5), st.booleans())
def test_validators_entry_uses_the_floor_rule(keys, drafts, pins, partial_pin):
    max_version = max((k for k in keys if not k.is_draft), key=ints, default=Version(0, 0))
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
    versions_ = [{"key": str(k), "draft": k.is_draft, "response": "s", "request": "s"} for k in keys]
    dispatch = {
        "digest": "d",
        "max_version": str(max_version),
        "endpoints": {
            "svc.act": {
                "attributes": {"internal": False, "authorize": True, "allow_roles": ["*"]},
                "versions": versions_,
            }
        },
    }
    validators = {"digest": "d", "schemas": {"s": schema}, "defaults": {}}
    v = Validators(tables_mod.load(drafts=drafts, dispatch=dispatch, validators=validators))
    for pin in pins:
        text = str(pin.major) if partial_pin and pin.minor == 0 else str(pin)
        expected = oracle_pick(keys, pin, drafts, max_version)
        if expected is None:
            with pytest.raises(EndpointNotFound):
                v.entry("svc.act", text)
        else:
            _, entry = v.entry("svc.act", text)
            assert entry.key == str(expected)
    with pytest.raises(EndpointNotFound):
        v.entry("svc.nope", str(keys[-1]))


@SETTINGS
@given(st.text(max_size=8))
def test_unparsable_pins_are_not_found(text):
    assume(not text.strip() or not all(c.isdigit() or c == "." for c in text.strip()))
    dispatch = {
        "digest": "d",
        "max_version": "2.0",
        "endpoints": {
            "svc.act": {
                "attributes": {"internal": False, "authorize": True, "allow_roles": ["*"]},
                "versions": [{"key": "1.0", "draft": False, "response": "s", "request": "s"}],
            }
        },
    }
    validators = {"digest": "d", "schemas": {"s": {"type": "object"}}, "defaults": {}}
    v = Validators(tables_mod.load(dispatch=dispatch, validators=validators))
    try:
        parse_pin(text)
    except VersionError:
        with pytest.raises(EndpointNotFound):
            v.entry("svc.act", text)
