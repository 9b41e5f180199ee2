"""qarnot_server.*, qarnot_jobs.*, qarnot_tasks.*: the Qarnot dialect (schemas/dialects/qarnot.conf).

Served at the root (``/settings``, ``/jobs``, ``/tasks``, ...) and under ``/v1``, for the official
``qarnot`` client; the RPC form (``/qarnot_tasks.get``) reaches the same handlers. Task execution runs
as ``qarnot.advance`` background jobs (see specgate.domain.qarnot_tasks).
"""

from __future__ import annotations

from typing import Any

from specgate.domain.qarnot_jobs import JOBS, Jobs
from specgate.domain.qarnot_jobs import present as present_job
from specgate.domain.qarnot_tasks import Tasks, summary
from specgate.domain.qarnot_tasks import present as present_task
from specgate.runtime.background import job

from .context import CallContext
from .registry import action


def _tasks(ctx: CallContext) -> Tasks:
    return Tasks(ctx.services.store, ctx.services.extra.get("jobs"))


def _jobs(ctx: CallContext) -> Jobs:
    return Jobs(ctx.services.store, ctx.services.extra.get("jobs"))


def _located(ctx: CallContext, path: str) -> None:
    """The Location header of a creation (REST calls only)."""
    if ctx.http is not None:
        ctx.http.response_headers["Location"] = f"{ctx.http.base_url}{path}"


# --- server ----------------------------------------------------------------------------------------


@action("qarnot_server.settings")
async def settings(ctx: CallContext, data: dict) -> dict:
    return {"storage": None}  # no bucket storage: the client then builds no S3 client


@action("qarnot_server.versions")
async def versions(ctx: CallContext, data: dict) -> list:
    return [{"version": "v1"}]


@action("qarnot_server.info")
async def info(ctx: CallContext, data: dict) -> dict:
    identity = ctx.identity
    counts = await _tasks(ctx).counts(ctx.company)
    return {
        "email": identity.user_name or identity.user,
        **counts,
        "jobCount": await ctx.services.store.count(JOBS, companies=[ctx.company]),
        "bucketCount": 0,
        "projects": [],
    }


def _presented(page: dict, present) -> dict:
    """A store page as the list answer the runtime wraps in Qarnot's envelope."""
    return {"items": [present(d) for d in page["items"]], "total": page["total"]}


# --- jobs ------------------------------------------------------------------------------------------


@action("qarnot_jobs.create")
async def create_job(ctx: CallContext, data: dict) -> dict:
    doc = await _jobs(ctx).create(ctx.identity, data)
    _located(ctx, f"/jobs/{doc['id']}")
    return {"uuid": doc["id"]}


@action("qarnot_jobs.get")
async def get_job(ctx: CallContext, data: dict) -> dict:
    return present_job(await _jobs(ctx).get(ctx.company, data["uuid"]))


@action("qarnot_jobs.list")
async def list_jobs(ctx: CallContext, data: dict) -> list:
    return [present_job(d) for d in await _jobs(ctx).list(ctx.company, data.get("tag"))]


@action("qarnot_jobs.paginate")
async def paginate_jobs(ctx: CallContext, data: dict) -> dict:
    page = await _jobs(ctx).page(ctx.company, data)
    return _presented(page, present_job)


@action("qarnot_jobs.terminate")
async def terminate_job(ctx: CallContext, data: dict) -> dict:
    await _jobs(ctx).terminate(ctx.company, data["uuid"])
    return {}


@action("qarnot_jobs.delete")
async def delete_job(ctx: CallContext, data: dict) -> dict:
    await _jobs(ctx).delete(ctx.company, data["uuid"], force=bool(data.get("force")))
    return {}


# --- tasks -----------------------------------------------------------------------------------------


@action("qarnot_tasks.create")
async def create_task(ctx: CallContext, data: dict) -> dict:
    doc = await _tasks(ctx).create(ctx.identity, data)
    _located(ctx, f"/tasks/{doc['id']}")
    return {"uuid": doc["id"]}


@action("qarnot_tasks.get")
async def get_task(ctx: CallContext, data: dict) -> dict:
    return present_task(await _tasks(ctx).get(ctx.company, data["uuid"]))


@action("qarnot_tasks.list")
async def list_tasks(ctx: CallContext, data: dict) -> list:
    return [present_task(d) for d in await _tasks(ctx).list(ctx.company, data.get("tag"))]


@action("qarnot_tasks.summaries")
async def list_summaries(ctx: CallContext, data: dict) -> list:
    return [summary(d) for d in await _tasks(ctx).list(ctx.company, data.get("tag"))]


@action("qarnot_tasks.paginate")
async def paginate_tasks(ctx: CallContext, data: dict) -> dict:
    page = await _tasks(ctx).page(ctx.company, data)
    return _presented(page, present_task)


@action("qarnot_tasks.paginate_summaries")
async def paginate_summaries(ctx: CallContext, data: dict) -> dict:
    page = await _tasks(ctx).page(ctx.company, data)
    return _presented(page, summary)


@action("qarnot_tasks.of_job")
async def tasks_of_job(ctx: CallContext, data: dict) -> list:
    await _jobs(ctx).get(ctx.company, data["uuid"])  # 404 for an unknown job
    return [present_task(d) for d in await _tasks(ctx).list(ctx.company, job=data["uuid"])]


@action("qarnot_tasks.update")
async def update_task(ctx: CallContext, data: dict) -> dict:
    await _tasks(ctx).update(ctx.company, data["uuid"], data)
    return {}


@action("qarnot_tasks.update_resources")
async def update_resources(ctx: CallContext, data: dict) -> dict:
    await _tasks(ctx).update_resources(ctx.company, data["uuid"])
    return {}


@action("qarnot_tasks.abort")
async def abort_task(ctx: CallContext, data: dict) -> dict:
    await _tasks(ctx).abort(ctx.company, data["uuid"])
    return {}


@action("qarnot_tasks.delete")
async def delete_task(ctx: CallContext, data: dict) -> dict:
    await _tasks(ctx).delete(ctx.company, data["uuid"])
    return {}


# --- execution -------------------------------------------------------------------------------------


@job("qarnot.advance")
async def advance(services: Any, payload: dict) -> None:
    """One step of a task's or a job's state progression; it schedules the next one itself."""
    background = services.extra.get("jobs")
    if payload.get("kind") == "job":
        await Jobs(services.store, background).settle(payload["company"], payload["id"], payload["from"], payload["to"])
    else:
        await Tasks(services.store, background).advance(payload["company"], payload["id"], payload["from"], payload["to"])
