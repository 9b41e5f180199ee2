"""Every RPC action at its lowest, a middle and its highest version key, fuzzed over HTTP with bodies
drawn from its compiled request schema: valid ones, and single mutations of them (wrong types, missing
or null required fields, unknown keys, values off the enum, huge strings and arrays, non-objects,
nesting past the limit). Each answer must be a catalogue answer, no 5xx and no hang; a body the schema
refuses must be refused with 400/12 naming a field it got wrong; a refused call must leave stored data
as it was; and the server must still answer afterwards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.checks import assert_answer
from fuzz.conftest import CASES, fuzz_settings
from fuzz.schemas import encode
from fuzz.targets import TARGETS, Target

SESSION_ENDERS = {"auth.logout", "cvat_auth.logout"}  # sent with a token of their own


def _send(client, tracker, target: Target, kind: str, body) -> None:
    content = encode(body)
    verdict = target.oracle.judge(body)
    case = f"{target.path} [{kind}, {verdict.outcome}] {content[:300]!r}"
    token = None
    if target.name in SESSION_ENDERS:
        token = client.fresh_token()
        tracker.forget()  # a login writes
    response, elapsed = tracker.call(lambda: client.send(target.path, content, token=token), case)
    CASES[f"rpc {kind if kind == 'valid' else 'mutated'}"] += 1
    assert_answer(response, elapsed, target.name, verdict, case)


@pytest.mark.parametrize(("name", "pin"), TARGETS, ids=[f"{n}@{p}" for n, p in TARGETS])
@fuzz_settings(2)
@given(data=st.data())
def test_schema_valid_bodies(client, tracker, name, pin, data):
    target = Target.of(name, pin)
    _send(client, tracker, target, "valid", data.draw(target.valid, label="body"))


@pytest.mark.parametrize(("name", "pin"), TARGETS, ids=[f"{n}@{p}" for n, p in TARGETS])
@fuzz_settings(4)
@given(data=st.data())
def test_mutated_bodies(client, tracker, name, pin, data):
    target = Target.of(name, pin)
    kind, body = data.draw(target.mutated, label="mutation")
    _send(client, tracker, target, kind, body)


def test_the_server_is_still_up_and_refused_calls_were_checked(client, tracker):
    """Runs after the fuzz tests of this module: the server answers, and refused calls were seen."""
    client.alive()
    if CASES["rpc mutated"]:
        assert tracker.refused > CASES["rpc mutated"] // 2
