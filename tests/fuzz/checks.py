"""What every fuzzed answer must be, and the check that refused calls leave stored data alone.

``assert_answer`` holds an answer to the catalogue: never a 5xx, always ClearML's ``{meta, data}``
envelope whose ``result_code`` is the HTTP status, errors with a catalogue (code, subcode) and a
message, and a validation error that names a field the request really got wrong. ``Tracker``
fingerprints what is stored before a call and compares after every refused one.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from typing import Any

import httpx
import redis

from specgate._generated.errors import BY_CODE

from fuzz.schemas import Verdict

HANG = 20.0  # seconds: an answer slower than this is a hang, whatever the machine's load
META_KEYS = {"id", "trx", "endpoint", "result_code", "result_subcode", "result_msg", "error_stack", "error_data"}


class Client:
    """Raw HTTP to the fuzz server with a Bearer token; ``fresh_token`` for calls that end a session."""

    def __init__(self, server: Any):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=HANG * 3)
        self.basic = "Basic " + base64.b64encode(f"{server.access_key}:{server.secret_key}".encode()).decode()
        self.token = self.fresh_token()

    def fresh_token(self) -> str:
        response = self.http.post("/auth.login", headers={"Authorization": self.basic})
        assert response.status_code == 200, response.text
        return response.json()["data"]["token"]

    def send(self, path: str, content: bytes, *, token: str | None = None, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> tuple[httpx.Response, float]:  # fmt: skip
        started = time.perf_counter()
        response = self.http.post(path, content=content, headers={
            "Authorization": f"Bearer {token or self.token}", "Content-Type": content_type, **(headers or {})})  # fmt: skip
        self.http.cookies.clear()
        return response, time.perf_counter() - started

    def ok(self, endpoint: str, **data: Any) -> dict:
        response = self.http.post(f"/{endpoint}", json=data, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def alive(self) -> None:
        """The server still answers: its liveness probe and an authenticated call."""
        assert self.http.get("/health/live").status_code == 200
        assert self.ok("users.get_current_user")["user"]["id"]

    def close(self) -> None:
        self.http.close()


def assert_answer(response: httpx.Response, elapsed: float, endpoint: str, verdict: Verdict | None, case: str) -> dict:
    """The envelope of an answer that is no 5xx, no hang, and what ``verdict`` says it must be."""
    assert elapsed < HANG, f"{case}: answered after {elapsed:.1f} s"
    assert response.status_code < 500, f"{case}: {response.status_code} {response.text[:2000]}"
    body = response.json()
    assert set(body) == {"meta", "data"}, f"{case}: not an envelope: {response.text[:500]}"
    meta = body["meta"]
    assert set(meta) == META_KEYS, f"{case}: {meta}"
    status, subcode, message = meta["result_code"], meta["result_subcode"], meta["result_msg"]
    assert status == response.status_code and meta["endpoint"]["name"] == endpoint, f"{case}: {meta}"
    if status >= 300:
        assert (status, subcode) in BY_CODE, f"{case}: ({status}, {subcode}) is not in the catalogue: {message}"
        assert message and isinstance(meta["error_data"], dict), f"{case}: {meta}"
    if verdict is None:
        return meta
    if verdict.outcome == "parse":
        assert (status, subcode) == (400, 0), f"{case}: expected 400/0 for an unparseable body, got {meta}"
    elif verdict.outcome == "invalid":
        assert (status, subcode) == (400, 12), f"{case}: the schema refuses it at {sorted(verdict.fields)}, got {meta}"
        named = _squash(meta["error_data"].get("field", ""))
        wrong = {_squash(f) for f in verdict.fields}
        assert any(named == f or named.startswith((f + ".", f + "[")) for f in wrong) or (named == "(body)" and "" in wrong), (
            f"{case}: the error names {named!r}, the schema finds {sorted(wrong)} wrong: {message}"
        )
        assert named == "(body)" or repr(meta["error_data"]["field"]) in message, f"{case}: the message does not name {named!r}: {message}"
    return meta


def _squash(path: str) -> str:
    """An empty key leaves no segment in the validator's error path (``a..b`` is reported as ``a.b``)."""
    return re.sub(r"\.{2,}", ".", path).strip(".")


class Tracker:
    """Fingerprints of what is stored, compared around every refused call.

    The fingerprint is each document's revision in the server's SQLite file (every store write bumps
    it, so no field can change unseen), read-only, plus every Valkey list (the queues' entries).
    Collections that background jobs move on their own (the REST dialects' work) are left out.
    """

    SKIP = ("qarnot_", "cvat_", "datarobot_")

    def __init__(self, client: Client):
        self.client = client
        self.db = sqlite3.connect(f"file:{client.server.data_dir / 'specgate.db'}?mode=ro", uri=True)
        self.redis = redis.Redis.from_url(client.server.app.services.redis_url)
        self.lists = self.redis.register_script(_LISTS)
        self.before: dict | None = None
        self.refused = 0

    def fingerprint(self) -> dict:
        tables = [name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if not name.startswith(("sqlite_", *self.SKIP))]  # fmt: skip
        out: dict[str, Any] = {t: dict(self.db.execute(f'SELECT id, rev FROM "{t}"')) for t in tables}
        out = {t: rows for t, rows in out.items() if rows}  # reading a collection first creates its table
        flat = self.lists(keys=[], args=[])
        out["redis lists"] = dict(zip(flat[::2], flat[1::2]))
        return out

    def call(self, send, case: str) -> Any:
        """Run ``send()`` (returning the response first); a refused call must leave the fingerprint alone."""
        if self.before is None:
            self.before = self.fingerprint()
        result = send()
        response = result[0] if isinstance(result, tuple) else result
        if 400 <= response.status_code < 500:
            self.refused += 1
            before, self.before = self.before, self.fingerprint()  # the next call compares with this either way
            assert self.before == before, f"{case}: refused with {response.status_code} but changed stored data: {_diff(before, self.before)}"
        else:
            self.before = None
        return result

    def forget(self) -> None:
        """Something else wrote (a login): fingerprint afresh before the next call."""
        self.before = None

    def close(self) -> None:
        self.db.close()
        self.redis.close()


# every Redis list (queue contents) with its items, in one round trip
_LISTS = """
local out, cursor = {}, "0"
repeat
  local page = redis.call("SCAN", cursor, "COUNT", 1000, "TYPE", "list")
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    out[#out + 1] = key
    out[#out + 1] = table.concat(redis.call("LRANGE", key, 0, -1), ",")
  end
until cursor == "0"
return out
"""


def _diff(before: dict, after: dict) -> str:
    lines = []
    for table in sorted(set(before) | set(after)):
        a, b = before.get(table, {}), after.get(table, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                lines.append(f"{table}/{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return "; ".join(lines[:10])
