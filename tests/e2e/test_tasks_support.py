"""Helpers shared by the tasks end-to-end modules (no tests here).

Importing this module registers the projects and tasks handlers, so the test servers serve them even
while ``specgate.handlers.MODULES`` does not list them yet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid

from specgate.core.clock import now_iso
from specgate.domain.accounts import COMPANIES, CREDENTIALS, USERS
from specgate.domain.identity import SYSTEM_COMPANY

from .conftest import Api, Server


def new_project(api: Api, name: str | None = None) -> str:
    return api.ok("projects.create", name=name or f"project {uuid.uuid4().hex[:8]}", description="")["id"]


def new_task(api: Api, name: str = "task one", type: str = "training", **fields) -> str:
    return api.ok("tasks.create", name=name, type=type, **fields)["id"]


def task(api: Api, task_id: str) -> dict:
    return api.ok("tasks.get_by_id", task=task_id)["task"]


def fails(api: Api, endpoint: str, code: int, subcode: int, version: str | None = None, **data) -> str:
    """Call ``endpoint`` expecting an error envelope; returns its ``result_msg``."""
    status, body = api.call(endpoint, version, **data)
    meta = body["meta"]
    assert (status, meta["result_code"], meta["result_subcode"]) == (code, code, subcode), meta
    assert body["data"] == {}
    return meta["result_msg"]


def second_company(server: Server) -> Api:
    """A client of a new company (own user and key pair), written straight into the server's store."""
    store = server.app.services.store
    company, user = uuid.uuid4().hex, uuid.uuid4().hex
    key, secret = uuid.uuid4().hex[:30].upper(), uuid.uuid4().hex + uuid.uuid4().hex
    now = now_iso()

    async def provision() -> None:
        await store.insert(COMPANIES, {"id": company, "company": company, "name": "other", "created": now})
        await store.insert(USERS, {"id": user, "company": company, "name": "other", "role": "admin", "created": now})
        await store.insert(CREDENTIALS, {
            "id": key, "company": SYSTEM_COMPANY, "user": user, "user_company": company,
            "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(), "label": "test", "created": now,
        })

    asyncio.run(provision())
    return Api(dataclasses.replace(server, access_key=key, secret_key=secret))
