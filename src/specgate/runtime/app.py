"""create_app(settings): the ASGI application, with its adapters opened and closed by the lifespan.

RPC calls go to the raw-ASGI frontend; Starlette serves the few other routes and the lifespan. The
choice of adapters happens here and nowhere else: MongoDB when ``SPECGATE_MONGO_URL`` is set, else the
embedded SQLite store in the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from specgate.core.versions import Version
from specgate.domain import accounts as accounts_module
from specgate.domain.accounts import Accounts
from specgate.domain.tokens import TokenIssuer
from specgate.handlers.context import Services

from . import docs, logs
from .metrics import Metrics, queue_lengths
from .registry import Handlers
from .request import PATH
from .rpc import RpcApp
from .settings import Settings
from .tables import load
from .validate import Validators

log = logging.getLogger("specgate")


def _secret_file(path: Path, size: int = 32) -> str:
    """A secret generated once and kept in the data directory (mode 0600). The workers of
    ``serve --workers N`` race to create it on a first start: the file appears whole (written aside,
    then hard-linked into place) and the losers read the winner's, so every worker signs alike."""
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_hex(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    try:
        os.link(aside, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        aside.unlink()
    return value


def make_store(settings: Settings):
    if settings.mongo_url:
        from specgate.adapters.mongo import MongoStore

        return MongoStore(settings.mongo_url)
    from specgate.adapters.sqlite import SqliteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(str(settings.data_dir / "specgate.db"))


def queue_url(settings: Settings) -> tuple[str, Any]:
    """The Redis URL to use, and the embedded Valkey started for it (None when one was configured)."""
    if settings.redis_url:
        return settings.redis_url, None
    from specgate.adapters.embedded import EmbeddedValkey

    embedded = EmbeddedValkey(settings.data_dir)
    return embedded.start(), embedded


def create_app(settings: Settings | None = None, *, announce: bool = False) -> Any:
    settings = settings or Settings.from_env()
    tables = load(drafts=settings.enable_drafts)
    store = make_store(settings)
    redis_url, embedded = queue_url(settings)
    from specgate.adapters.redis_queue import RedisQueues
    from specgate.adapters.redis_workers import RedisWorkers

    queues, workers = RedisQueues(redis_url), RedisWorkers(redis_url)
    secret = settings.auth_secret or _secret_file(settings.data_dir / "auth_secret")
    if settings.mongo_url and not settings.auth_secret:  # a shared store suggests other hosts
        log.warning("SPECGATE_AUTH_SECRET is not set: tokens are signed with the secret in %s, and gateways "
                    "on other hosts refuse them; give every host the same SPECGATE_AUTH_SECRET",
                    settings.data_dir / "auth_secret")  # fmt: skip
    tokens = TokenIssuer(
        secret=secret.encode(),
        api_version=str(tables.max_version),
        server_version=settings.server_version,
        env=settings.env,
        lifetime=settings.token_lifetime,
    )
    services = Services(store, Accounts(store), tokens, tables.max_version, settings, queues, workers, redis_url)
    services.extra["installation_id"] = uuid.uuid5(uuid.NAMESPACE_URL, secret).hex
    from specgate.domain.api_tokens import ApiTokens

    from .background import BackgroundJobs
    from .rest import RestApp

    jobs = BackgroundJobs(redis_url)
    validators, handlers = Validators(tables), Handlers(tables)
    services.extra["api_tokens"] = ApiTokens(store, services.accounts, tokens)
    services.extra["jobs"] = jobs
    services.extra["handlers"] = handlers  # asynchronous calls run their handler in a background job
    rpc = RpcApp(tables, validators, handlers, services)
    rest = RestApp(tables, validators, handlers, services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        await store.open()
        await queues.open()
        await workers.open()
        await jobs.open()
        await services.accounts.prepare()
        from specgate.domain import setup

        await setup.prepare(store)
        provisioned = await services.accounts.provision(settings.access_key, settings.secret_key)
        await setup.provision_company(services, provisioned.company, provisioned.user)
        repaired = await setup.repair_queues(services)
        if repaired["restored"] or repaired["dropped"]:
            log.warning("queues repaired at start-up: %s", repaired)
        if announce:
            _announce(settings, provisioned, redis_url if embedded is None else f"embedded Valkey at {redis_url}")
        worker = asyncio.create_task(jobs.run(services), name="specgate-background-jobs")
        flusher = asyncio.create_task(_flush_access_log(), name="specgate-access-log")
        redeliverer = asyncio.create_task(_redeliver_popped(services), name="specgate-redeliver")
        try:
            yield
        finally:
            for task in (worker, flusher, redeliverer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if (sink := logs.access_log()) is not None:
                sink.flush()
            await jobs.close()
            await workers.close()
            await queues.close()
            await store.close()
            if embedded is not None:
                embedded.stop()

    metrics = Metrics()

    async def live(_request):
        return JSONResponse({"status": "ok"})

    async def ready(_request):
        """Ready when the document store and Redis both answer (a load balancer's readiness probe)."""
        checks = {}
        for name, probe in (("store", store.count("companies", companies=[accounts_module.DEFAULT_COMPANY])),
                            ("redis", queues.client.ping())):  # fmt: skip
            try:
                await asyncio.wait_for(probe, timeout=2.0)
                checks[name] = "ok"
            except Exception as e:  # any failure means not ready; say which and why
                checks[name] = f"unavailable: {type(e).__name__}: {e}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    async def scrape(_request):
        try:
            lengths = await asyncio.wait_for(queue_lengths(queues.client), timeout=2.0)
        except Exception:  # metrics must answer even when Redis does not
            lengths = {}
        return PlainTextResponse(metrics.render(lengths), media_type="text/plain; version=0.0.4")

    starlette = Starlette(
        routes=[Route("/health/live", live), Route("/health/ready", ready), Route("/metrics", scrape), *docs.routes(tables)],
        lifespan=lifespan,
    )
    own_paths = {"/health/live", "/health/ready", "/metrics"}
    access = logs.access_log() if settings.access_log else None

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in own_paths or docs.claims(scope["path"]):
            await starlette(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if rest.mounts and not PATH.fullmatch(scope["path"]) and rest.claims(scope["path"]):
            await rest(scope, receive, watch)  # REST dialect paths never look like /service.action
        else:
            await rpc(scope, receive, watch)
        elapsed = time.perf_counter() - started
        call_id, endpoint, version = scope.get("specgate.call") or ("", "", "")
        metrics.observe(endpoint or "(none)", version, status, elapsed)
        if access is not None:
            access.write({"call_id": call_id, "endpoint": endpoint, "version": version, "status": status,
                          "ms": round(elapsed * 1000, 2), "method": scope["method"], "path": scope["path"]})  # fmt: skip

    app.services = services  # type: ignore[attr-defined]  # for tests and tools
    app.rpc = rpc  # type: ignore[attr-defined]
    app.rest = rest  # type: ignore[attr-defined]
    app.metrics = metrics  # type: ignore[attr-defined]
    return app


async def _redeliver_popped(services: Services) -> None:
    """Queue again, every so often, what was popped and never started (see ``redeliver_unstarted``):
    a gateway that dies between a pop and its answer loses no task. Every process runs it; a script
    that checks the pop's time makes each entry come back once."""
    from specgate.domain import setup

    after = services.settings.redeliver_after
    while after > 0:
        await asyncio.sleep(min(max(after / 4, 0.5), 60))
        try:
            if found := await setup.redeliver_popped(services, after):
                log.warning("queued again %d popped tasks nobody started within %d s", found, after)
        except Exception as e:  # Redis or the store away: the next round tries again
            log.warning("redelivery of unstarted pops skipped: %s", e)


async def _flush_access_log() -> None:
    """Calls logged in a quiet moment still reach the log within a second."""
    while (sink := logs.access_log()) is not None:
        await asyncio.sleep(1.0)
        sink.flush()


def _announce(settings: Settings, provisioned: accounts_module.Provisioned, queues: str) -> None:
    saved = settings.data_dir / "credentials.json"
    secret = provisioned.secret_key
    if secret and not settings.secret_key:  # generated now: keep it so later starts can show it again
        saved.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"access_key": provisioned.access_key, "secret_key": secret}, f)
    elif secret is None and saved.is_file():
        stored = json.loads(saved.read_text())
        if stored.get("access_key") == provisioned.access_key:
            secret = stored["secret_key"]
    where = f"MongoDB at {settings.mongo_url}" if settings.mongo_url else f"SQLite in {settings.data_dir.resolve()}"
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"specgate listening on {url}\n"
        f"  documents: {where}\n"
        f"  queues: {queues}\n"
        f"  credentials: CLEARML_API_HOST={url} CLEARML_API_ACCESS_KEY={provisioned.access_key} "
        f"CLEARML_API_SECRET_KEY={secret or '(set when first created; see SPECGATE_SECRET_KEY)'}",
        file=sys.stdout,
        flush=True,
    )


async def repair(settings: Settings) -> dict[str, int]:
    """``specgate repair-queues``: the start-up reconciliation, on demand."""
    from specgate.adapters.redis_queue import RedisQueues
    from specgate.domain import setup

    store = make_store(settings)
    redis_url, embedded = queue_url(settings)
    queues = RedisQueues(redis_url)
    await store.open()
    await queues.open()
    try:
        services = Services(store, Accounts(store), None, Version(0, 0), settings, queues, None, redis_url)
        return await setup.repair_queues(services)
    finally:
        await queues.close()
        await store.close()
        if embedded is not None:
            embedded.stop()


async def create_api_token(settings: Settings, company: str | None, user: str | None, label: str = "") -> str:
    """``specgate token create``: a long-lived API token for a user (default: the provisioned admin)."""
    from specgate.domain.api_tokens import ApiTokens

    store = make_store(settings)
    await store.open()
    try:
        accounts = Accounts(store)
        await accounts.prepare()
        provisioned = await accounts.provision(settings.access_key, settings.secret_key)
        identity = await accounts.identity(user or provisioned.user, company or provisioned.company)
        return await ApiTokens(store, accounts).create(identity, label)
    finally:
        await store.close()


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` and ``specgate serve``."""
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings, announce=True)
