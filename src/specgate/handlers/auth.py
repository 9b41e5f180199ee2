"""auth.*: log in (a token for the caller's credentials), log out, and the caller's own API keys."""

from __future__ import annotations

from datetime import datetime, timezone

from specgate._generated import errors as E
from specgate.core.clock import to_iso
from specgate.core.errors import ApiError

from .context import CallContext
from .registry import action

MAX_EXPIRATION = 365 * 24 * 3600


@action("auth.login")
async def login(ctx: CallContext, data: dict) -> dict:
    expiration = data.get("expiration_sec")
    if expiration is not None and not 0 < expiration <= MAX_EXPIRATION:
        raise ApiError(E.VALIDATION_ERROR, f"expiration_sec must be between 1 and {MAX_EXPIRATION}", field="expiration_sec")
    token, _ = ctx.services.tokens.issue(ctx.identity, expiration)
    ctx.cookies["clearml_token_basic"] = token
    return {"token": token}


@action("auth.logout")
async def logout(ctx: CallContext, data: dict) -> dict:
    expires = to_iso(datetime.now(timezone.utc))
    await ctx.services.accounts.revoke_session(ctx.identity, expires)
    ctx.services.tokens.forget(ctx.identity.session_id)
    ctx.cookies["clearml_token_basic"] = ""
    return {}


@action("auth.create_credentials")
async def create_credentials(ctx: CallContext, data: dict) -> dict:
    return {"credentials": await ctx.services.accounts.create_credentials(ctx.identity, data.get("label"))}


@action("auth.get_credentials")
async def get_credentials(ctx: CallContext, data: dict) -> dict:
    return {"credentials": await ctx.services.accounts.list_credentials(ctx.identity)}


@action("auth.revoke_credentials")
async def revoke_credentials(ctx: CallContext, data: dict) -> dict:
    """The key pair stops logging in, and the tokens minted from it stop authenticating (``api_tokens``)."""
    revoked = await ctx.services.accounts.revoke_credentials(ctx.identity, data["access_key"])
    if revoked:
        ctx.services.tokens.forget_all()  # cached verifications of its tokens must not outlive it here
    return {"revoked": revoked}


@action("auth.edit_credentials")
async def edit_credentials(ctx: CallContext, data: dict) -> dict:
    return {"updated": await ctx.services.accounts.edit_credentials(ctx.identity, data["access_key"], data.get("label"))}


@action("auth.create_api_token")
async def create_api_token(ctx: CallContext, data: dict) -> dict:
    return {"token": await ctx.services.extra["api_tokens"].create(ctx.identity, data.get("label", ""))}
