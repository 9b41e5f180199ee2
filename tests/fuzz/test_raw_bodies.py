"""Raw request bodies: valid JSON bodies broken on the way (truncated, invalid or overlong UTF-8, a lone
surrogate escape, NaN, integers past 64 bits, UTF-16, a byte flipped, garbage appended) and plain random
bytes, as single JSON bodies and as json-lines batches. Bytes that are not JSON must get 400/0 with a
message that says the body could not be parsed (and for a batch, which item); nothing may be a 5xx or
change stored data."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.checks import assert_answer
from fuzz.conftest import CASES, fuzz_settings
from fuzz.schemas import FREE_JSON, Verdict, encode
from fuzz.targets import Target

# one action per service, the two batch actions, and REST dialects' RPC forms
TARGETS = [("server.info", "2.12"), ("tasks.create", "2.13"), ("tasks.get_all", "2.26"), ("projects.create", "2.1"),
           ("queues.create", "2.13"), ("workers.status_report", "2.23"), ("events.add_batch", "2.1"),
           ("tasks.update_batch", "2.1"), ("cvat_tasks.create", "2.80"), ("qarnot_tasks.create", "1.0")]  # fmt: skip
BATCHES = {"events.add_batch", "tasks.update_batch"}


def _strict_json(raw: bytes) -> bool:
    """Whether ``raw`` is JSON as orjson reads it: UTF-8, no NaN/Infinity (nor a number that overflows to
    one), no lone surrogate. Integers past 64 bits are read as floats, not refused."""
    def bad_constant(name: str):
        raise ValueError(name)

    def finite(text: str) -> float:
        if math.isinf(value := float(text)):
            raise ValueError(text)
        return value

    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=bad_constant, parse_float=finite, parse_int=lambda t: finite(t) and int(t))
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate cannot be encoded
    except (ValueError, UnicodeError, RecursionError):
        return False
    return True


@st.composite
def broken(draw, target: Target) -> tuple[str, bytes]:
    body = encode(draw(target.valid))
    at = draw(st.integers(0, max(0, len(body) - 1)))
    kind = draw(st.sampled_from(["truncated", "invalid utf-8", "overlong utf-8", "lone surrogate", "nan", "big int",
                                 "utf-16", "byte flipped", "garbage after", "random bytes", "random text"]))  # fmt: skip
    if kind == "truncated":
        return kind, body[:at]
    if kind == "invalid utf-8":
        return kind, body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + body[at:]
    if kind == "overlong utf-8":
        return kind, b'{"name": "\xc0\xaf\xe0\x80\xaf"}'
    if kind == "lone surrogate":
        return kind, b'{"name": "\\ud800", "comment": "\\udfff"}'
    if kind == "nan":
        return kind, draw(st.sampled_from([b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}']))
    if kind == "big int":
        return kind, b'{"page": 1' + b"0" * draw(st.integers(20, 400)) + b', "page_size": 1' + b"0" * 30 + b"}"
    if kind == "utf-16":
        return kind, body.decode().encode("utf-16")
    if kind == "byte flipped" and body:
        return kind, body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1:]
    if kind == "garbage after":
        return kind, body + draw(st.sampled_from([b"}", b",", b" x", b"\x00", b"{}"]))
    if kind == "random text":
        return kind, draw(st.text(max_size=60)).encode("utf-8", "surrogatepass")
    return "random bytes", draw(st.binary(max_size=80))


@pytest.mark.parametrize(("name", "pin"), TARGETS, ids=[f"{n}@{p}" for n, p in TARGETS])
@fuzz_settings(20)
@given(data=st.data())
def test_broken_json_bodies(client, tracker, name, pin, data):
    target = Target.of(name, pin)
    kind, raw = data.draw(broken(target), label="raw body")
    case = f"{target.path} [{kind}] {raw[:200]!r}"
    response, elapsed = tracker.call(lambda: client.send(target.path, raw), case)
    CASES["raw json"] += 1
    strict = _strict_json(raw) or not raw.strip()  # an empty body is an empty call
    meta = assert_answer(response, elapsed, name, None if strict else Verdict("parse"), case)
    if not strict:
        assert "JSON" in meta["result_msg"] or "UTF-8" in meta["result_msg"], f"{case}: {meta['result_msg']}"


@pytest.mark.parametrize("name", sorted(BATCHES))
@fuzz_settings(20)
@given(data=st.data())
def test_json_lines_batches_with_a_bad_line(client, tracker, name, data):
    """Good lines, then one bad line at index ``k``: refused as a whole (400/0 naming item #k), and no
    item before it was stored."""
    target = Target.of(name, "2.1")
    good = [encode(item) for item in data.draw(st.lists(target.valid, min_size=0, max_size=4), label="good lines")]
    bad = data.draw(st.sampled_from([b"{", b"[1]", b'"text"', b"\xff\xfe", b"", b"null", b'{"a": NaN}']), label="bad line")
    k = data.draw(st.integers(0, len(good)), label="k")
    if bad == b"" and k == len(good):
        bad = b"{"  # an empty last line is no line at all
    lines = [*good[:k], bad, *good[k:]]
    raw = b"\n".join(lines)
    case = f"{target.path} [json-lines, bad #{k}] {raw[:300]!r}"
    response, elapsed = tracker.call(lambda: client.send(target.path, raw, content_type="application/json-lines"), case)
    CASES["raw json-lines"] += 1
    meta = assert_answer(response, elapsed, name, Verdict("parse"), case)
    assert re.findall(r"batch item #(\d+)", meta["result_msg"]) == [str(k)], f"{case}: {meta['result_msg']}"


@fuzz_settings(30)
@given(raw=st.one_of(st.binary(max_size=200), st.builds(lambda v: encode(v), FREE_JSON)))
def test_rest_dialect_bodies(client, raw):
    """A REST route (CVAT's task creation) answers random bytes in its own error shape, never a 5xx."""
    response = client.http.post("/api/tasks", content=raw, headers={
        "Authorization": f"Bearer {client.token}", "Content-Type": "application/json"})  # fmt: skip
    CASES["raw rest"] += 1
    assert response.status_code < 500, f"{raw[:200]!r}: {response.status_code} {response.text[:500]}"
    assert isinstance(response.json(), (dict, list)), response.text[:300]


def test_the_server_is_still_up(client):
    client.alive()
