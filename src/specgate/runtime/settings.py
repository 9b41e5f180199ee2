"""Settings from ``SPECGATE_*`` environment variables, read once at start-up and passed down."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

log = logging.getLogger("specgate")

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    host: str = "127.0.0.1"
    port: int = 8008
    data_dir: Path = Path(".specgate")
    mongo_url: str | None = None
    redis_url: str | None = None
    default_version: str | None = None  # None: the max released version
    strict_versions: bool = True
    enable_drafts: bool = False
    validate_responses: bool = False
    return_stack: bool = False
    max_body_bytes: int = 16 * 1024 * 1024  # the SDK sends batches of up to 15 MiB
    access_key: str | None = None
    secret_key: str | None = None
    auth_secret: str | None = None
    token_lifetime: int = 30 * 24 * 3600
    server_version: str = "1.12.0"
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    access_log: bool = True  # one structured line per call (call id, endpoint, version, status, ms)
    shutdown_timeout: int = 30  # seconds in-flight calls get to finish after SIGTERM
    # seconds an idle keep-alive connection stays open: longer than clients' pool expiry (httpx 5 s)
    # and load balancers' idle timeouts (60 s), so a client never reuses a connection as it closes
    keep_alive: int = 75
    async_result_ttl: int = 3600  # seconds the outcome of an X-Api-Async call is kept
    redeliver_after: int = 300  # seconds after which a popped task nobody started is queued again (0: never)
    dialect_mounts: str = ""  # "cvat=/cvat/api,qarnot=/qarnot": serve a REST dialect under another prefix

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        known = {f"SPECGATE_{name.upper()}" for name in cls.__dataclass_fields__}
        for name in sorted(k for k in env if k.startswith("SPECGATE_") and k not in known):
            if name not in _TOOLING:
                log.warning("ignoring unknown setting %s", name)
        mode = env.get("SPECGATE_ENV", "dev")
        if mode not in ("dev", "test", "prod"):
            raise ValueError(f"SPECGATE_ENV must be dev, test or prod, not {mode!r}")
        dev = mode != "prod"

        def get(name: str, default=None):
            return env.get(f"SPECGATE_{name.upper()}", default)

        def flag(name: str, default: bool) -> bool:
            raw = get(name)
            if raw is None:
                return default
            if raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise ValueError(f"SPECGATE_{name.upper()} must be true or false, not {raw!r}")

        def number(name: str, default: int) -> int:
            raw = get(name)
            try:
                return default if raw is None else int(raw)
            except ValueError:
                raise ValueError(f"SPECGATE_{name.upper()} must be an integer, not {raw!r}") from None

        return cls(
            env=mode,
            host=get("host", cls.host),
            port=number("port", cls.port),
            data_dir=Path(get("data_dir", str(cls.data_dir))),
            mongo_url=get("mongo_url") or None,
            redis_url=get("redis_url") or None,
            default_version=get("default_version") or None,
            strict_versions=flag("strict_versions", True),
            enable_drafts=flag("enable_drafts", dev),
            validate_responses=flag("validate_responses", dev),
            return_stack=flag("return_stack", False),
            max_body_bytes=number("max_body_bytes", cls.max_body_bytes),
            access_key=get("access_key") or None,
            secret_key=get("secret_key") or None,
            auth_secret=get("auth_secret") or None,
            token_lifetime=number("token_lifetime", cls.token_lifetime),
            server_version=get("server_version", cls.server_version),
            log_level=get("log_level", cls.log_level).upper(),
            log_format=get("log_format", cls.log_format),
            access_log=flag("access_log", cls.access_log),
            shutdown_timeout=number("shutdown_timeout", cls.shutdown_timeout),
            keep_alive=number("keep_alive", cls.keep_alive),
            async_result_ttl=number("async_result_ttl", cls.async_result_ttl),
            redeliver_after=number("redeliver_after", cls.redeliver_after),
            dialect_mounts=get("dialect_mounts", cls.dialect_mounts),
        )


# Variables read by tooling rather than by the server.
_TOOLING = {"SPECGATE_CACHE_DIR", "SPECGATE_NO_CACHE", "SPECGATE_UPDATE_GOLDEN", "SPECGATE_TEST_MONGO_URL", "SPECGATE_TEST_REDIS_URL"}
