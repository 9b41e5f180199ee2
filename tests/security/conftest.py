"""Security tests' harness: one real server per module (uvicorn, embedded SQLite + Valkey, loopback
only) with a known token secret, and tenants (a company, its user and a key pair) written straight
into the server's store, each with an RPC client (Bearer token from ``auth.login``) and a raw HTTP
client for the REST dialects."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import uuid
from dataclasses import dataclass

import httpx
import pytest

from e2e.conftest import Api, Server, start_server
from specgate.core.clock import now_iso
from specgate.domain.accounts import COMPANIES, CREDENTIALS, USERS, new_key_pair
from specgate.domain.identity import SYSTEM_COMPANY

AUTH_SECRET = "security-tests-token-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    info, uv, thread = start_server(tmp_path_factory.mktemp("security"), auth_secret=AUTH_SECRET)
    yield info
    uv.should_exit = True
    thread.join(timeout=10)


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@dataclass
class Tenant:
    """One company with one user: ``api`` speaks RPC with a login token, ``http`` is unauthenticated."""

    label: str
    company: str
    user: str
    key: str
    secret: str
    api: Api
    http: httpx.Client

    def rpc(self, endpoint: str, **data) -> tuple[int, dict]:
        return self.api.call(endpoint, **data)

    def ok(self, endpoint: str, **data) -> dict:
        return self.api.ok(endpoint, **data)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api.token}"}

    def close(self) -> None:
        self.api.close()
        self.http.close()


def add_tenant(server: Server, label: str, role: str = "user") -> Tenant:
    """A new company, its user and a key pair, written into the store the way provisioning does."""
    store = server.app.services.store
    company, user = uuid.uuid4().hex, uuid.uuid4().hex
    key, secret = new_key_pair()
    now = now_iso()

    async def provision() -> None:
        await store.insert(COMPANIES, {"id": company, "company": company, "name": label, "created": now})
        await store.insert(USERS, {"id": user, "company": company, "name": label, "role": role, "created": now})
        await store.insert(CREDENTIALS, {
            "id": key, "company": SYSTEM_COMPANY, "user": user, "user_company": company,
            "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(), "label": "security", "created": now,
        })  # fmt: skip

    asyncio.run(provision())
    api = Api(dataclasses.replace(server, access_key=key, secret_key=secret))
    return Tenant(label, company, user, key, secret, api, httpx.Client(base_url=server.url, timeout=30))


def add_user(server: Server, tenant: Tenant, label: str, role: str = "user") -> Tenant:
    """A second user of ``tenant``'s company, with its own key pair."""
    store = server.app.services.store
    user = uuid.uuid4().hex
    key, secret = new_key_pair()
    now = now_iso()

    async def provision() -> None:
        await store.insert(USERS, {"id": user, "company": tenant.company, "name": label, "role": role, "created": now})
        await store.insert(CREDENTIALS, {
            "id": key, "company": SYSTEM_COMPANY, "user": user, "user_company": tenant.company,
            "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(), "label": "security", "created": now,
        })  # fmt: skip

    asyncio.run(provision())
    api = Api(dataclasses.replace(server, access_key=key, secret_key=secret))
    return Tenant(label, tenant.company, user, key, secret, api, httpx.Client(base_url=server.url, timeout=30))
