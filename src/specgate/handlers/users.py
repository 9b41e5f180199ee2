"""users.*: the caller's own user record."""

from __future__ import annotations

from specgate.domain.accounts import USERS

from .context import CallContext
from .registry import action


@action("users.get_current_user")
async def get_current_user(ctx: CallContext, data: dict) -> dict:
    me = ctx.identity
    user = await ctx.services.store.get(USERS, me.user, companies=[me.company]) or {}
    return {
        "user": {
            "id": me.user,
            "name": user.get("name", me.user_name),
            "role": me.role,
            "company": {"id": me.company, "name": me.company_name},
            **({"created": user["created"]} if "created" in user else {}),
        }
    }
