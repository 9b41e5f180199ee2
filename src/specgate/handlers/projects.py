"""projects.*: the company's project tree (contract §7) and what its tasks and models contain."""

from __future__ import annotations

from specgate.domain.projects import MODELS, TASKS, Projects, present

from .context import CallContext
from .registry import action


def _projects(ctx: CallContext) -> Projects:
    return Projects(ctx.services.store)


@action("projects.create")
async def create(ctx: CallContext, data: dict) -> dict:
    return {"id": await _projects(ctx).create(ctx.identity, data)}


@action("projects.get_by_id")
async def get_by_id(ctx: CallContext, data: dict) -> dict:
    return {"project": present(await _projects(ctx).get(ctx.company, data["project"]))}


@action("projects.get_all")
async def get_all(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).get_all(ctx.company, data)


@action("projects.get_all_ex")
async def get_all_ex(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).get_all(ctx.company, data, ex=True)


@action("projects.update")
async def update(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).update(ctx.identity, data["project"], data)


@action("projects.delete")
async def delete(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).delete(
        ctx.identity,
        data["project"],
        force=bool(data.get("force")),
        delete_contents=bool(data.get("delete_contents")),
    )


@action("projects.make_public")
async def make_public(ctx: CallContext, data: dict) -> dict:
    return {"updated": await _projects(ctx).make_public(ctx.company, data.get("ids") or [])}


@action("projects.make_private")
async def make_private(ctx: CallContext, data: dict) -> dict:
    return {"updated": await _projects(ctx).make_private(ctx.company, data.get("ids") or [])}


@action("projects.get_task_tags")
async def get_task_tags(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).entity_tags(ctx.company, TASKS, data)


@action("projects.get_model_tags")
async def get_model_tags(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).entity_tags(ctx.company, MODELS, data)


@action("projects.get_unique_metric_variants")
async def get_unique_metric_variants(ctx: CallContext, data: dict) -> dict:
    return {"metrics": await _projects(ctx).unique_metric_variants(ctx.company, data)}


@action("projects.get_hyper_parameters")
async def get_hyper_parameters(ctx: CallContext, data: dict) -> dict:
    return await _projects(ctx).hyper_parameters(ctx.company, data)
