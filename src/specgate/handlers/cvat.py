"""The CVAT dialect (schemas/cvat_*.conf): server about, session login/logout, tasks, background requests.

Handlers stay thin: the task and request logic is in ``domain.cvat_tasks`` and ``domain.cvat_requests``.
Attaching data runs as the background job ``cvat.create_data`` in two steps (queued → started →
finished), so cvat-sdk's polling of ``/api/requests/{rq_id}`` sees the request move.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone

from specgate.core.clock import to_iso
from specgate.core.errors import ApiError
from specgate.domain import cvat_requests, cvat_tasks
from specgate.domain.cvat_requests import CvatRequests
from specgate.domain.cvat_tasks import CvatTasks, field_error, not_found
from specgate.runtime.background import job

from .context import CallContext
from .registry import action

log = logging.getLogger("specgate.cvat")
DATA_JOB = "cvat.create_data"
STEP_DELAY = 0.3  # seconds between a request's states: long enough for a poll to see each one
SESSION_COOKIE, CSRF_COOKIE = "sessionid", "csrftoken"


def _base(ctx: CallContext) -> str:
    """Absolute URL of the CVAT mount (``http://host/api``); relative through the RPC form."""
    return ctx.http.base_url if ctx.http is not None else "/api"


def _personal_workspace(ctx: CallContext, data: dict) -> None:
    """Organizations are not served: only the personal workspace (no, or an empty, org context) exists."""
    if ctx.headers.get("x-organization") or data.get("org") or data.get("org_id") is not None:
        raise not_found("Organization not found.")


# --- server and auth ---------------------------------------------------------------------------------


@action("cvat_server.about")
async def about(ctx: CallContext, data: dict) -> dict:
    return {
        "name": "Computer Vision Annotation Tool",
        "description": "specgate: a CVAT-compatible task API served from HOCON specs",
        "version": f"{ctx.actual}.0",
        "logo_url": "",
        "subtitle": "specgate",
    }


@action("cvat_auth.login")
async def login(ctx: CallContext, data: dict) -> dict:
    username = data.get("username") or data.get("email") or ""
    try:
        identity = await ctx.services.accounts.check_credentials(username, data["password"], ctx.client)
    except ApiError as e:
        if e.code.status != 401:
            raise
        raise field_error("non_field_errors", "Unable to log in with provided credentials.") from None
    token, stamped = ctx.services.tokens.issue(identity)
    ctx.cookies[SESSION_COOKIE] = token
    ctx.cookies[CSRF_COOKIE] = secrets.token_urlsafe(32)
    # the client's Token model allows 40 characters, too few for the session token: answer its id
    return {"key": stamped.session_id}


@action("cvat_auth.logout")
async def logout(ctx: CallContext, data: dict) -> dict:
    await ctx.services.accounts.revoke_session(ctx.identity, to_iso(datetime.now(timezone.utc)))
    if ctx.identity.session_id:
        ctx.services.tokens.forget(ctx.identity.session_id)
    ctx.cookies[SESSION_COOKIE] = ""
    ctx.cookies[CSRF_COOKIE] = ""
    return {"detail": "Successfully logged out."}


# --- tasks ---------------------------------------------------------------------------------------------


@action("cvat_tasks.create")
async def create_task(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    doc = await CvatTasks(ctx.services.store).create(ctx.identity, data)
    if ctx.http is not None:
        ctx.http.response_headers["Location"] = f"{_base(ctx)}/tasks/{doc['number']}"
    return cvat_tasks.present(doc, _base(ctx))


@action("cvat_tasks.list")
async def list_tasks(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    if data.get("filter"):
        raise field_error("filter", "JSON-Logic filters are not supported by this server.")
    page = data.get("_page") or {"offset": 0, "limit": 10}
    docs, total = await CvatTasks(ctx.services.store).list(ctx.company, data, page["offset"], page["limit"])
    base = _base(ctx)
    return {"items": [cvat_tasks.present(d, base) for d in docs], "total": total}


@action("cvat_tasks.retrieve")
async def retrieve_task(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    return cvat_tasks.present(await CvatTasks(ctx.services.store).get(ctx.company, data["id"]), _base(ctx))


@action("cvat_tasks.partial_update")
async def update_task(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    changes = {k: v for k, v in data.items() if k != "id"}
    doc = await CvatTasks(ctx.services.store).update(ctx.company, data["id"], changes)
    return cvat_tasks.present(doc, _base(ctx))


@action("cvat_tasks.delete")
async def delete_task(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    await CvatTasks(ctx.services.store).delete(ctx.company, data["id"])
    return {}


@action("cvat_tasks.create_data")
async def create_data(ctx: CallContext, data: dict) -> dict:
    _personal_workspace(ctx, data)
    requests = CvatRequests(ctx.services.store)
    doc = await requests.start_data(ctx.identity, data["id"], data)
    try:
        await ctx.services.extra["jobs"].submit(DATA_JOB, {"company": ctx.company, "rq_id": doc["id"], "step": "start"},
                                                delay=STEP_DELAY)  # fmt: skip
    except Exception:
        await requests.fail(ctx.company, doc["id"], "The request could not be scheduled.")
        raise
    return {"rq_id": doc["id"]}


# --- background requests ---------------------------------------------------------------------------


@action("cvat_requests.retrieve")
async def retrieve_request(ctx: CallContext, data: dict) -> dict:
    return cvat_requests.present(await CvatRequests(ctx.services.store).get(ctx.company, data["id"]))


@job(DATA_JOB)
async def create_data_step(services, payload: dict) -> None:
    """One step of attaching data: ``start`` (queued → started, then schedules ``finish``) or ``finish``."""
    requests = CvatRequests(services.store)
    company, rq_id = payload["company"], payload["rq_id"]
    try:
        if payload.get("step") == "start":
            if await requests.step_start(company, rq_id):
                await services.extra["jobs"].submit(DATA_JOB, {**payload, "step": "finish"}, delay=STEP_DELAY)
        else:
            await requests.step_finish(company, rq_id)
    except Exception:
        log.exception("CVAT request %s failed", rq_id)
        await requests.fail(company, rq_id, "Internal error while attaching the data.")

