"""server.*: what this server is (version, API level)."""

from __future__ import annotations

from specgate import __version__

from .context import CallContext
from .registry import action


@action("server.info")
async def info(ctx: CallContext, data: dict) -> dict:
    settings = ctx.services.settings
    return {
        "version": settings.server_version,
        "build": f"specgate-{__version__}",
        "commit": "",
        "uid": ctx.services.extra.get("installation_id", ""),
        "api_version": str(ctx.services.max_version),
    }
