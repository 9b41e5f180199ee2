"""Long-lived API tokens: one identity for every dialect (CVAT Bearer and session, Qarnot's bare
``Authorization``, DataRobot's ``Token``). Only the sha256 of a token is stored; revoking deletes it."""

from __future__ import annotations

import hashlib
import secrets

from specgate.adapters.ports import DocumentStore
from specgate.core.clock import now_iso

from .accounts import Accounts
from .identity import SYSTEM_COMPANY, Identity

API_TOKENS = "api_tokens"
PREFIX = "sgt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, store: DocumentStore, accounts: Accounts):
        self.store, self.accounts = store, accounts

    async def create(self, identity: Identity, label: str = "") -> str:
        token = PREFIX + secrets.token_urlsafe(32)
        doc = {"id": _digest(token), "company": SYSTEM_COMPANY, "user": identity.user, "user_company": identity.company,
               "label": label, "created": now_iso()}  # fmt: skip
        await self.store.insert(API_TOKENS, doc)
        return token

    async def resolve(self, token: str) -> Identity | None:
        """The identity a token stands for, or None for an unknown or revoked one."""
        if not token.startswith(PREFIX):
            return None
        doc = await self.store.get(API_TOKENS, _digest(token), companies=[SYSTEM_COMPANY])
        if doc is None:
            return None
        return await self.accounts.identity(doc["user"], doc["user_company"])

    async def revoke(self, token: str) -> bool:
        return await self.store.delete(API_TOKENS, _digest(token), companies=[SYSTEM_COMPANY])
