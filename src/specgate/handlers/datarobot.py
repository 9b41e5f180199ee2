"""DataRobot dialect (``/api/v2/``): the version handshake, custom tasks and their versions."""

from __future__ import annotations

from specgate.domain.datarobot_custom_tasks import CustomTasks

from .context import CallContext
from .registry import action

API_MAJOR, API_MINOR = 2, 49  # what datarobot==3.20.0 expects (datarobot._version.__expected_server_version__)


def _tasks(ctx: CallContext) -> CustomTasks:
    return CustomTasks(ctx.services.store)


def _files(ctx: CallContext) -> list[tuple[str, str, bytes]]:
    return list(getattr(ctx.http, "files", None) or [])


@action("datarobot_version.get")
async def version(ctx: CallContext, data: dict) -> dict:
    text = f"{API_MAJOR}.{API_MINOR}.0"
    return {"major": API_MAJOR, "minor": API_MINOR, "versionString": text, "releasedVersion": text}


@action("datarobot_custom_tasks.create")
async def create(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).create(ctx.identity, data)


@action("datarobot_custom_tasks.list")
async def list_(ctx: CallContext, data: dict) -> dict:
    data.setdefault("_page", {"offset": data.get("offset", 0), "limit": data.get("limit", 100)})  # RPC form
    return await _tasks(ctx).list(ctx.company, data)


@action("datarobot_custom_tasks.get")
async def get(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).get(ctx.company, data["customTaskId"])


@action("datarobot_custom_tasks.update")
async def update(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).update(ctx.company, data["customTaskId"], data)


@action("datarobot_custom_tasks.delete")
async def delete(ctx: CallContext, data: dict) -> dict:
    await _tasks(ctx).delete(ctx.company, data["customTaskId"])
    return {}


@action("datarobot_custom_tasks.versions_create")
async def versions_create(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).create_version(ctx.company, data["customTaskId"], data, _files(ctx), from_previous=False)


@action("datarobot_custom_tasks.versions_create_from_previous")
async def versions_create_from_previous(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).create_version(ctx.company, data["customTaskId"], data, _files(ctx), from_previous=True)


@action("datarobot_custom_tasks.versions_list")
async def versions_list(ctx: CallContext, data: dict) -> dict:
    page = data.get("_page") or {"offset": data.get("offset", 0), "limit": data.get("limit", 100)}
    return await _tasks(ctx).list_versions(ctx.company, data["customTaskId"], page)


@action("datarobot_custom_tasks.versions_get")
async def versions_get(ctx: CallContext, data: dict) -> dict:
    return await _tasks(ctx).get_version(ctx.company, data["customTaskId"], data["customTaskVersionId"])
