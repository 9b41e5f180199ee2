"""Signed bearer tokens (JWT, HS256) with the claims ClearML's clients read.

The clients decode the token without checking its signature and read ``api_version``,
``server_version``, ``feature_set`` (must be ``"basic"``), ``env``, ``exp`` and ``identity.user``; the
server checks signature, algorithm (HS256 only: ``none``, HS512, RS256... are refused) and expiry.
Verified tokens are cached for a short while, so the hot path does one dict lookup instead of an HMAC
and two JSON decodes.

A token also names the credential it descends from (claim ``credential``, see ``Identity.credential``):
the caller checks that it still stands (``ApiTokens.alive``), so revoking a key pair or an API token ends
the sessions minted from it. A revocation clears this process's cache (``forget_all``); other
processes may accept such a token until their cached verification expires (``CACHE_SECONDS``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

import orjson

from .identity import Identity

_HEADER = base64.urlsafe_b64encode(orjson.dumps({"alg": "HS256", "typ": "JWT"})).rstrip(b"=")
CACHE_SECONDS = 60
CACHE_SIZE = 10_000


class TokenError(Exception):
    """Why a token was refused (a short reason for the error message)."""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


@dataclass
class TokenIssuer:
    secret: bytes
    api_version: str
    server_version: str
    env: str
    lifetime: int

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[Identity, float]] = {}

    def issue(self, identity: Identity, expiration: int | None = None, now: float | None = None) -> tuple[str, Identity]:
        """A new token (with a new session id) for ``identity``; returns it and the stamped identity."""
        now = int(now if now is not None else time.time())
        stamped = Identity(**{**identity.__dict__, "session_id": uuid.uuid4().hex})
        claims = {
            "identity": stamped.claims(),
            "auth_type": "Bearer",
            "session_id": stamped.session_id,
            "env": self.env,
            "iat": now,
            "exp": now + (expiration or self.lifetime),
            "api_version": self.api_version,
            "server_version": self.server_version,
            "server_build": "",
            "feature_set": "basic",
        }
        if stamped.credential:
            claims["credential"] = stamped.credential
        signing = _HEADER + b"." + _b64(orjson.dumps(claims))
        signature = _b64(hmac.new(self.secret, signing, hashlib.sha256).digest())
        return (signing + b"." + signature).decode(), stamped

    def cached(self, token: str, now: float | None = None) -> Identity | None:
        """The identity of a token verified recently, or None (then ``decode`` and ``remember``)."""
        hit = self._cache.get(token)
        if hit is not None and hit[1] > (now if now is not None else time.time()):
            return hit[0]
        return None

    def remember(self, token: str, identity: Identity, expires: float, now: float | None = None) -> None:
        now = now if now is not None else time.time()
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (identity, min(expires, now + CACHE_SECONDS))

    def forget(self, session_id: str) -> None:
        """Drop cached verifications of a revoked session."""
        for token, (identity, _) in list(self._cache.items()):
            if identity.session_id == session_id:
                del self._cache[token]

    def forget_all(self) -> None:
        """Drop every cached verification (a credential was revoked: its tokens must be checked again)."""
        self._cache.clear()

    def decode(self, token: str, now: float | None = None) -> tuple[Identity, float]:
        """Check signature, algorithm and expiry; the identity and the expiry time, or TokenError."""
        now = now if now is not None else time.time()
        try:
            header, payload, signature = token.encode().split(b".")
            if orjson.loads(_unb64(header)).get("alg") != "HS256":
                raise TokenError("unsupported signing algorithm")
            expected = _b64(hmac.new(self.secret, header + b"." + payload, hashlib.sha256).digest())
            if not hmac.compare_digest(expected, signature):
                raise TokenError("signature verification failed")
            claims = orjson.loads(_unb64(payload))
            ident = claims["identity"]
            exp = float(claims["exp"])
            identity = Identity(
                user=ident["user"],
                company=ident["company"],
                role=ident.get("role", "user"),
                user_name=ident.get("user_name", ""),
                company_name=ident.get("company_name", ""),
                session_id=claims.get("session_id", ""),
                credential=claims.get("credential", ""),
            )
        except TokenError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TokenError("failed parsing token") from None
        if exp <= now:
            raise TokenError("token has expired")
        return identity, exp
