"""Long-lived API tokens: one identity for every dialect (CVAT Bearer and session, Qarnot's bare
``Authorization``, DataRobot's ``Token``). Only the sha256 of a token is stored; revoking deletes it.

Revocation reaches what was made from a credential. Every authentication names the credential it
descends from (``Identity.credential``): a key pair (``key:<access key>``), an API token
(``api:<digest>``), or nothing (tokens of ``specgate token create``). An API token records the chain it
was created through (``origins``, flattened), and a login token the credential it was issued for; both
are refused (401/30) once any link is gone. So revoking a key pair (``auth.revoke_credentials``) ends its
Basic logins (401/22), every login token minted from it and every API token created while logged in
with it; revoking an API token ends the login tokens minted from it. Key pairs made with
``auth.create_credentials`` are credentials of their own: they stay until revoked themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets

from specgate.adapters.ports import DocumentStore
from specgate.core.clock import now_iso

from .accounts import CREDENTIALS, Accounts
from .identity import SYSTEM_COMPANY, Identity
from .tokens import TokenIssuer

API_TOKENS = "api_tokens"
PREFIX = "sgt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, store: DocumentStore, accounts: Accounts, tokens: TokenIssuer | None = None):
        self.store, self.accounts, self.tokens = store, accounts, tokens  # tokens: whose cache a revocation clears

    async def create(self, identity: Identity, label: str = "") -> str:
        token = PREFIX + secrets.token_urlsafe(32)
        doc = {"id": _digest(token), "company": SYSTEM_COMPANY, "user": identity.user, "user_company": identity.company,
               "label": label, "created": now_iso(), "origins": await self._chain(identity.credential)}  # fmt: skip
        await self.store.insert(API_TOKENS, doc)
        return token

    async def resolve(self, token: str) -> Identity | None:
        """The identity a token stands for, or None for an unknown or revoked one."""
        if not token.startswith(PREFIX):
            return None
        doc = await self.store.get(API_TOKENS, _digest(token), companies=[SYSTEM_COMPANY])
        if doc is None or not await self._all_stand(doc.get("origins") or []):
            return None
        identity = await self.accounts.identity(doc["user"], doc["user_company"])
        return dataclasses.replace(identity, credential=f"api:{doc['id']}")

    async def alive(self, credential: str) -> bool:
        """Whether the credential an identity descends from, and what that one was made from, still stand."""
        if not credential.startswith("api:"):
            return await self._all_stand([credential] if credential else [])
        doc = await self.store.get(API_TOKENS, credential[4:], companies=[SYSTEM_COMPANY], fields=["origins"])
        return doc is not None and await self._all_stand(doc.get("origins") or [])

    async def _chain(self, credential: str) -> list[str]:
        """What a token made by a caller authenticated through ``credential`` descends from."""
        if not credential.startswith("api:"):
            return [credential] if credential else []
        doc = await self.store.get(API_TOKENS, credential[4:], companies=[SYSTEM_COMPANY], fields=["origins"])
        return [credential, *((doc or {}).get("origins") or [])]

    async def _all_stand(self, chain: list[str]) -> bool:
        for credential in chain:
            kind, _, ref = credential.partition(":")
            collection = {"key": CREDENTIALS, "api": API_TOKENS}.get(kind)
            if collection is None or await self.store.get(collection, ref, companies=[SYSTEM_COMPANY], fields=["id"]) is None:
                return False
        return True

    async def revoke(self, token: str) -> bool:
        revoked = await self.store.delete(API_TOKENS, _digest(token), companies=[SYSTEM_COMPANY])
        if revoked and self.tokens is not None:
            self.tokens.forget_all()  # login tokens minted from it may be cached as verified
        return revoked
