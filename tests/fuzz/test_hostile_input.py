"""Hostile requests, each answered quickly with a clear catalogue error (or served), never a 5xx or a
hang: bodies over the size limit (declared, or chunked and growing), deep nesting, invalid UTF-8,
repeated keys, huge filter arrays and batches, and regular expressions that would backtrack for ages."""

from __future__ import annotations

import json
import select
import socket
import time
import uuid

import pytest

from fuzz.checks import assert_answer
from fuzz.conftest import CASES
from specgate.runtime.request import MAX_DEPTH
from specgate.runtime.settings import Settings

QUICK = 10.0  # seconds: far above what these take, far below a hang


def call(client, endpoint: str, body: bytes | dict, **kwargs):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response, elapsed = client.send(f"/v2.26/{endpoint}", raw, **kwargs)
    CASES["hostile"] += 1
    meta = assert_answer(response, elapsed, endpoint, None, f"{endpoint} {raw[:200]!r}")
    assert elapsed < QUICK, f"{endpoint}: {elapsed:.1f} s"
    return (meta["result_code"], meta["result_subcode"]), meta["result_msg"], response.json()["data"]


# --- size ----------------------------------------------------------------------------------------


def test_the_body_limit_is_a_setting_and_defaults_above_the_sdks_batches():
    assert Settings().max_body_bytes == 16 * 1024 * 1024  # the SDK sends batches of up to 15 MiB
    assert Settings.from_env({"SPECGATE_MAX_BODY_BYTES": "1000"}).max_body_bytes == 1000


def _raw_exchange(server, head: bytes, chunks, stop_after: int) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` until an answer arrives (or ``stop_after`` bytes went); returns the
    answer and how many body bytes were sent before it came."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=QUICK) as sock:
        sock.sendall(head)
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0] or sent >= stop_after:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        deadline = time.monotonic() + QUICK
        while b"\r\n\r\n" not in answer or len(answer) < answer.find(b"\r\n\r\n") + 4 + _length(answer):
            assert time.monotonic() < deadline, f"no answer after {sent} body bytes: {answer[:300]!r}"
            if not select.select([sock], [], [], 0.5)[0]:
                continue
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    return answer, sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _envelope(answer: bytes) -> tuple[int, dict]:
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer[answer.find(b"\r\n\r\n") + 4:])


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(fuzz_server, client):
    limit = Settings().max_body_bytes
    head = (f"POST /v2.26/server.info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {client.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {limit + 1}\r\n\r\n").encode()  # fmt: skip
    answer, sent = _raw_exchange(fuzz_server, head, [], 0)
    status, body = _envelope(answer)
    assert (status, body["meta"]["result_code"], body["meta"]["result_subcode"]) == (413, 413, 0), answer[:500]
    assert str(limit) in body["meta"]["result_msg"]
    CASES["hostile"] += 1


def test_a_chunked_body_growing_past_the_limit_is_refused_while_it_is_still_coming(fuzz_server, client):
    limit = Settings().max_body_bytes
    head = (f"POST /v2.26/server.info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {client.token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()  # fmt: skip
    piece = 256 * 1024
    chunk = f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"
    answer, sent = _raw_exchange(fuzz_server, head, iter(lambda: chunk, None), stop_after=4 * limit)
    status, body = _envelope(answer)
    assert (status, body["meta"]["result_code"]) == (413, 413), answer[:500]
    assert sent < 2 * limit, f"the server read {sent} bytes before refusing"  # it did not wait for the end
    CASES["hostile"] += 1


def test_a_body_just_under_the_limit_is_read(client):
    pad = b" " * (15 * 1024 * 1024)  # what the SDK's largest batches weigh
    assert call(client, "server.info", b'{"pad": "x"' + pad + b"}")[0] == (200, 0)


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                  b'{"runtime": ' + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5) + b"}"],
                         ids=["unclosed", "closed", "objects", "just past the limit"])  # fmt: skip
def test_deep_nesting_is_a_clear_400(client, body):
    code, message, _ = call(client, "tasks.get_all", body)
    assert code == (400, 0) and ("nests deeper" in message or "depth" in message), message


def test_nesting_up_to_the_limit_is_stored_and_returned_intact(client):
    nested: dict = {"leaf": 1}
    for _ in range(MAX_DEPTH - 2):  # the body, then runtime and MAX_DEPTH - 2 more objects: MAX_DEPTH levels
        nested = {"n": nested}
    code, message, data = call(client, "tasks.create", {"name": f"deep {uuid.uuid4().hex}", "type": "training", "runtime": nested})
    assert code == (200, 0), message
    task = client.ok("tasks.get_by_id", task=data["id"])["task"]
    assert task["runtime"] == nested


def test_deep_nesting_in_a_query_string_is_a_clear_400(client):
    path = "/v2.26/tasks.get_all?" + ".".join(["a"] * 500) + "=1"
    response, elapsed = client.send(path, b"")
    assert_answer(response, elapsed, "tasks.get_all", None, path[:80])
    assert (response.status_code, response.json()["meta"]["result_subcode"]) == (400, 0)


@pytest.mark.parametrize("body", [b'{"name": "\xff"}', b'{"name": "\xc0\xaf"}', b'{"name": "\xed\xa0\x80"}',
                                  b'{"name": "\\ud800"}', '{"name": "x"}'.encode("utf-16"), b"\xef\xbb\xbf{}"],
                         ids=["invalid byte", "overlong", "encoded surrogate", "escaped lone surrogate", "utf-16", "bom"])  # fmt: skip
def test_invalid_utf8_is_a_clear_400(client, body):
    code, message, _ = call(client, "tasks.get_all", body)
    assert code == (400, 0) and "JSON" in message, message


def test_a_repeated_key_takes_its_last_value(client):
    """Documented in ``runtime.request.parse_body``: last wins (orjson, Python's json, ClearML's server)."""
    name = f"dup {uuid.uuid4().hex}"
    code, message, data = call(client, "tasks.create", f'{{"name": 3, "type": "training", "name": "{name}"}}'.encode())
    assert code == (200, 0), message
    assert client.ok("tasks.get_by_id", task=data["id"])["task"]["name"] == name
    code, message, _ = call(client, "tasks.create", f'{{"name": "{name}", "type": "training", "name": 3}}'.encode())
    assert code == (400, 12) and "'name'" in message, message


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"project": "p", "page": 1e30}', (400, 12)),
    (b'{"project": "p", "page": 100000000000000000000000000000}', (400, 12)),  # orjson reads it as 1e29
    (b'{"project": "p", "page": 2.0, "page_size": 5.0}', (200, 0)),  # integers still (the page slices a list)
], ids=["float", "past 64 bits", "integral floats"])  # fmt: skip
def test_integers_past_64_bits_are_refused_and_integral_floats_are_integers(client, body, expected):
    code, message, _ = call(client, "projects.get_hyper_parameters", body)
    assert code == expected, message
    if code == (400, 12):
        assert "'page'" in message and "out of range" in message, message


def test_query_string_integers_past_64_bits_are_refused(client):
    path = "/v2.26/tasks.get_all?page=99999999999999999999999&page_size=5"
    response, elapsed = client.send(path, b"")
    meta = assert_answer(response, elapsed, "tasks.get_all", None, path)
    assert (meta["result_code"], meta["result_subcode"], meta["error_data"].get("field")) == (400, 12, "page"), meta


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/tasks/" + "9" * 30, 400), ("/api/tasks?project_id=-" + "9" * 30, 400),
    ("/api/tasks?page_size=" + "9" * 30, 200),  # a page size is capped, not refused
])  # fmt: skip
def test_rest_integers_past_64_bits_are_refused(client, path, expected):
    response = client.http.get(path, headers={"Authorization": f"Bearer {client.token}"})
    CASES["hostile"] += 1
    assert response.status_code == expected, f"{path}: {response.status_code} {response.text[:300]}"


# --- work bounds --------------------------------------------------------------------------------


def _ids(n: int) -> list[str]:
    return [uuid.UUID(int=i).hex for i in range(n)]


@pytest.mark.parametrize(("endpoint", "body", "expected"), [
    ("tasks.get_all", {"id": _ids(100_000)}, (400, 16)),
    ("tasks.get_all", {"id": _ids(6_000), "tags": _ids(6_000)}, (400, 16)),
    ("tasks.get_all", {"id": _ids(9_000)}, (200, 0)),
    ("tasks.get_all", {"status": ["created"] * 9_000}, (200, 0)),
    ("tasks.get_all", {"tags": _ids(9_000)}, (200, 0)),
    ("tasks.get_all", {"tags": ["__$all", *_ids(900)]}, (200, 0)),
    ("tasks.get_all", {"tags": ["__$all", *_ids(5_000)]}, (400, 16)),
    ("tasks.get_all", {"filters": {"tags": {"any": {"exclude": _ids(900)}}}}, (200, 0)),
    ("tasks.get_all", {"filters": {"tags": {"any": {"exclude": _ids(5_000)}}}}, (400, 16)),
    ("tasks.get_all", {"_any_": {"pattern": "x", "fields": [f"runtime.k{i}" for i in range(20_000)]}}, (400, 16)),
    ("tasks.get_all", {"_any_": {"pattern": "x", "fields": [f"runtime.k{i}" for i in range(500)]}}, (200, 0)),
    ("tasks.get_all", {"order_by": [f"runtime.k{i}" for i in range(5_000)]}, (400, 16)),
    ("tasks.get_all", {"only_fields": [f"runtime.k{i}" for i in range(20_000)]}, (200, 0)),
    ("projects.get_all", {"id": _ids(100_000)}, (400, 16)),
    ("queues.get_all", {"tags": ["__$all", *_ids(900)]}, (200, 0)),
    ("projects.get_all", {"system_tags": ["-" + i for i in _ids(9_000)]}, (200, 0)),
    ("tasks.get_by_id", {"task": "x" * 1_000_000}, (400, 101)),
    ("tasks.delete_many", {"ids": _ids(100_000)}, (400, 12)),
    ("tasks.dequeue_many", {"ids": _ids(30_000)}, (400, 12)),
    ("tasks.reset_many", {"ids": _ids(1_000)}, (200, 0)),
], ids=lambda v: v if isinstance(v, str) else None)  # fmt: skip
def test_huge_arrays_are_served_quickly_or_refused_clearly(client, endpoint, body, expected):
    code, message, data = call(client, endpoint, body)
    assert code == expected, message
    if code == (400, 16) or code == (400, 12):
        assert "at most" in message, message


@pytest.fixture(scope="module")
def long_names(client):
    """A task, project and queue whose names a catastrophic pattern would backtrack over for hours."""
    name = "a" * 40
    tag = uuid.uuid4().hex
    client.ok("tasks.create", name=name, type="training", tags=[tag])
    client.ok("projects.create", name=name, description="x")
    client.ok("queues.create", name=name + tag[:8])
    return name


@pytest.mark.parametrize("endpoint", ["tasks.get_all", "projects.get_all", "queues.get_all", "tasks.get_all_ex"])
@pytest.mark.parametrize("pattern", ["^(a+)+$", "(a|a)*$", "^(a|aa)*b$", "(x*)*y", "^(.*a){30}$", "((a)|(a))*!"])
def test_catastrophic_patterns_are_refused(client, long_names, endpoint, pattern):
    code, message, _ = call(client, endpoint, {"name": pattern, "only_fields": ["id"]})
    assert code == (400, 21) and "exponential" in message, message


@pytest.mark.parametrize("endpoint", ["tasks.get_all", "projects.get_all"])
@pytest.mark.parametrize("pattern", [".*a.*a.*a!", "a+b+c+d", "(.*x|y+)z*w+"])
def test_polynomial_patterns_are_refused(client, long_names, endpoint, pattern):
    """Three unbounded repetitions make a failing search cubic or worse in the name's length."""
    started = time.monotonic()
    code, message, _ = call(client, endpoint, {"name": pattern, "only_fields": ["id"]})
    assert code == (400, 21) and "unbounded repetitions" in message, message
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("pattern", ["^a+$", "^(ab|cd)*$", "a{40}", "^[ab]*a$", ".*a.*a"])
def test_plain_patterns_still_match(client, long_names, pattern):
    code, message, data = call(client, "tasks.get_all", {"name": pattern, "only_fields": ["name"]})
    assert code == (200, 0), message
    names = [t["name"] for t in data["tasks"]]
    assert (long_names in names) == (pattern != "^(ab|cd)*$"), names


def test_the_server_is_still_up(client):
    client.alive()
