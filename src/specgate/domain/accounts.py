"""Companies, users and API credentials, over the document store.

Secrets are stored as sha256 digests only. Credentials and revoked sessions live under the system
company, because a Basic login names no company; everything else a user owns carries the user's
company. First start on an empty store provisions company ``default``, an admin user and one key pair.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass

from specgate._generated import errors as E
from specgate.adapters.ports import And, DocumentStore, DuplicateKey, Eq, Index
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import SYSTEM_COMPANY, Identity

COMPANIES, USERS, CREDENTIALS, REVOKED = "companies", "users", "credentials", "revoked_sessions"
DEFAULT_COMPANY = uuid.uuid5(uuid.NAMESPACE_URL, "specgate:company:default").hex
ADMIN_USER = uuid.uuid5(uuid.NAMESPACE_URL, "specgate:user:admin").hex
_KEY_ALPHABET = string.ascii_uppercase + string.digits


def new_key_pair() -> tuple[str, str]:
    """ClearML-shaped credentials: a 30-character [A-Z0-9] key and a URL-safe secret not starting with -/_."""
    key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(30))
    while (secret := secrets.token_urlsafe(50))[0] in "-_":
        pass
    return key, secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Provisioned:
    company: str
    user: str
    access_key: str
    secret_key: str | None  # None when the key pair existed before (its secret is not recoverable)


class Accounts:
    def __init__(self, store: DocumentStore):
        self.store = store

    async def prepare(self) -> None:
        await self.store.ensure_indexes(USERS, [Index(("name",))])
        await self.store.ensure_indexes(CREDENTIALS, [Index(("user",))])

    async def provision(self, access_key: str | None, secret_key: str | None) -> Provisioned:
        """Make sure the default company, its admin and a key pair exist (idempotent, race-safe)."""
        now = now_iso()
        for collection, doc in (
            (COMPANIES, {"id": DEFAULT_COMPANY, "company": DEFAULT_COMPANY, "name": "default", "created": now}),
            (USERS, {"id": ADMIN_USER, "company": DEFAULT_COMPANY, "name": "admin", "role": "admin", "created": now}),
        ):
            try:
                await self.store.insert(collection, doc)
            except DuplicateKey:
                pass
        if access_key and secret_key:
            existing = await self.store.get(CREDENTIALS, access_key, companies=[SYSTEM_COMPANY])
            if existing is None:
                await self._add_credentials(ADMIN_USER, DEFAULT_COMPANY, access_key, secret_key, "bootstrap")
            elif not hmac.compare_digest(existing["secret_sha256"], _digest(secret_key)):
                existing["secret_sha256"] = _digest(secret_key)
                await self.store.replace(CREDENTIALS, existing, expected_rev=existing["rev"])
            return Provisioned(DEFAULT_COMPANY, ADMIN_USER, access_key, secret_key)
        owned = await self.store.find(
            CREDENTIALS, companies=[SYSTEM_COMPANY], order=[("created", False)], limit=1
        )
        if owned:
            return Provisioned(DEFAULT_COMPANY, ADMIN_USER, owned[0]["id"], None)
        key, secret = new_key_pair()
        await self._add_credentials(ADMIN_USER, DEFAULT_COMPANY, key, secret, "bootstrap")
        return Provisioned(DEFAULT_COMPANY, ADMIN_USER, key, secret)

    async def _add_credentials(self, user: str, company: str, key: str, secret: str, label: str | None) -> None:
        doc = {
            "id": key,
            "company": SYSTEM_COMPANY,
            "user": user,
            "user_company": company,
            "secret_sha256": _digest(secret),
            "label": label,
            "created": now_iso(),
        }
        await self.store.insert(CREDENTIALS, doc)

    async def identity(self, user_id: str, company: str) -> Identity:
        user = await self.store.get(USERS, user_id, companies=[company])
        org = await self.store.get(COMPANIES, company, companies=[company])
        if user is None or org is None:
            raise ApiError(E.INVALID_CREDENTIALS, "failed to locate provided credentials")
        return Identity(user_id, company, user.get("role", "user"), user.get("name", ""), org.get("name", ""))

    async def check_credentials(self, access_key: str, secret_key: str, used_from: str = "") -> Identity:
        cred = await self.store.get(CREDENTIALS, access_key, companies=[SYSTEM_COMPANY])
        if cred is None or not hmac.compare_digest(cred["secret_sha256"], _digest(secret_key)):
            raise ApiError(E.INVALID_CREDENTIALS, "failed to locate provided credentials")
        identity = await self.identity(cred["user"], cred["user_company"])
        cred.update(last_used=now_iso(), last_used_from=used_from or None)
        await self.store.replace(CREDENTIALS, cred, expected_rev=cred["rev"])  # best effort: a lost race is fine
        return dataclasses.replace(identity, credential=f"key:{access_key}")

    async def create_credentials(self, identity: Identity, label: str | None) -> dict:
        key, secret = new_key_pair()
        await self._add_credentials(identity.user, identity.company, key, secret, label)
        return {k: v for k, v in {"access_key": key, "secret_key": secret, "label": label}.items() if v}

    async def list_credentials(self, identity: Identity) -> list[dict]:
        found = await self.store.find(
            CREDENTIALS,
            companies=[SYSTEM_COMPANY],
            where=And((Eq("user", identity.user), Eq("user_company", identity.company))),
            order=[("created", False)],
        )
        keep = ("label", "last_used", "last_used_from")
        return [{"access_key": c["id"], **{k: c[k] for k in keep if k in c}} for c in found]

    async def _own_credentials(self, identity: Identity, access_key: str) -> dict | None:
        cred = await self.store.get(CREDENTIALS, access_key, companies=[SYSTEM_COMPANY])
        if cred and cred["user"] == identity.user and cred["user_company"] == identity.company:
            return cred
        return None

    async def revoke_credentials(self, identity: Identity, access_key: str) -> int:
        """Delete one of the caller's own key pairs (0 for another user's or an unknown key, as for none).
        What was minted from it (login tokens, API tokens) is refused from then on (see ``api_tokens``)."""
        cred = await self._own_credentials(identity, access_key)
        if cred is None:
            return 0
        return int(await self.store.delete(CREDENTIALS, access_key, companies=[SYSTEM_COMPANY]))

    async def edit_credentials(self, identity: Identity, access_key: str, label: str | None) -> int:
        cred = await self._own_credentials(identity, access_key)
        if cred is None:
            raise ApiError(E.INVALID_ACCESS_KEY, "invalid user or invalid access key", access_key=access_key)
        cred["label"] = label
        return int(await self.store.replace(CREDENTIALS, cred, expected_rev=cred["rev"]) is not None)

    async def revoke_session(self, identity: Identity, expires: str) -> None:
        if identity.session_id:
            doc = {"id": identity.session_id, "company": SYSTEM_COMPANY, "expires": expires}
            try:
                await self.store.insert(REVOKED, doc)
            except DuplicateKey:
                pass

    async def is_revoked(self, session_id: str) -> bool:
        return await self.store.get(REVOKED, session_id, companies=[SYSTEM_COMPANY], fields=["id"]) is not None
