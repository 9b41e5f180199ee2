"""Asynchronous RPC calls: answered with 202 and the call id, run by the background workers, their
outcome kept in Redis for a while (``async.result``). The call is authenticated and validated before
the 202, so a bad call still fails at once; only the handler's work is deferred."""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict
from typing import Any

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.core.versions import parse_key
from specgate.domain.identity import Identity
from specgate.handlers.context import CallContext

from .background import job

HEADERS = ("x-api-async", "x-clearml-async")


def wanted(headers: dict[str, str]) -> bool:
    return any(headers.get(h, "").strip().lower() in ("1", "true", "yes") for h in HEADERS)


def _key(call_id: str) -> str:
    return f"{{specgate:async}}:{call_id}"


async def submit(services: Any, call_id: str, endpoint: str, requested: Any, actual: Any, identity: Identity | None,
                 data: dict, headers: dict[str, str]) -> None:  # fmt: skip
    jobs, ttl = services.extra["jobs"], services.settings.async_result_ttl
    record = {"id": call_id, "endpoint": endpoint, "status": "pending", "company": identity.company if identity else ""}
    await jobs.client.set(_key(call_id), json.dumps(record), ex=ttl)
    payload = {"id": call_id, "endpoint": endpoint, "requested": str(requested), "actual": str(actual), "data": data,
               "identity": asdict(identity) if identity else None, "headers": headers}  # fmt: skip
    await jobs.submit("rpc.async", payload)


async def outcome(services: Any, call_id: str, company: str) -> dict | None:
    raw = await services.extra["jobs"].client.get(_key(call_id))
    record = json.loads(raw) if raw else None
    return record if record and record.get("company") == company else None


@job("rpc.async")
async def run(services: Any, payload: dict) -> None:
    jobs, ttl = services.extra["jobs"], services.settings.async_result_ttl
    identity = Identity(**payload["identity"]) if payload["identity"] else None
    actual = parse_key(payload["actual"])
    record = {"id": payload["id"], "endpoint": payload["endpoint"], "company": identity.company if identity else ""}
    handler = services.extra["handlers"].pick(payload["endpoint"], actual)
    ctx = CallContext(payload["id"], payload["endpoint"], parse_key(payload["requested"]), actual, identity, services,
                      payload["headers"])  # fmt: skip
    try:
        result = await handler(ctx, payload["data"]) or {}
        record.update(status="done", data=result)
    except ApiError as e:
        record.update(status="failed", error={"code": e.code.status, "subcode": e.code.subcode, "msg": e.message})
    except Exception as e:  # reported like a synchronous 500, without internals
        traceback.print_exception(e)
        code = E.INTERNAL_ERROR
        record.update(status="failed", error={"code": code.status, "subcode": code.subcode, "msg": f"Internal server error (call id {payload['id']})"})
    await jobs.client.set(_key(payload["id"]), json.dumps(record, default=str), ex=ttl)
