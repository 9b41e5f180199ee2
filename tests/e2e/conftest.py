"""End-to-end harness: the real server (uvicorn, embedded SQLite store) on a free loopback port.

``server`` starts one per test module with its own data directory and known credentials; ``api``
is a small raw-HTTP client that logs in and returns whole envelopes, for asserting codes and messages.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from specgate.runtime.app import create_app
from specgate.runtime.settings import Settings

ACCESS_KEY = "SPECGATETESTACCESSKEY000000001"
SECRET_KEY = "specgate-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGTERM a process a test started (by its own handle, as a service manager stops it), SIGKILL it
    if it lingers; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@dataclass
class Server:
    url: str
    access_key: str
    secret_key: str
    data_dir: Path
    app: object


def start_server(data_dir: Path, **overrides) -> tuple[Server, uvicorn.Server, threading.Thread]:
    port = free_port()
    settings = Settings(
        env="test", host="127.0.0.1", port=port, data_dir=data_dir,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, validate_responses=True, enable_drafts=False,
        **overrides,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_keep_alive=settings.keep_alive,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY, data_dir, app), server, thread


@contextlib.contextmanager
def running_server(data_dir: Path, **overrides):
    """``start_server`` for the length of a ``with`` block (or a fixture)."""
    info, uv, thread = start_server(data_dir, **overrides)
    try:
        yield info
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def server_on_store(store: str, home: Path, database: str):
    """A test server on the embedded SQLite store, or on MongoDB's wire protocol (nx-27017)."""
    from adapters.conftest import start_nx, stop_nx

    nx, overrides = None, {}
    if store == "mongo":
        nx, url = start_nx(home)
        overrides["mongo_url"] = url.replace("/?", f"/{database}?")
    try:
        with running_server(home / "data", **overrides) as info:
            yield info
    finally:
        if nx is not None:
            stop_nx(nx)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("specgate-data")) as info:
        yield info


class Api:
    """Raw HTTP as the SDK sends it (GET with a JSON body), returning (HTTP status, envelope)."""

    def __init__(self, server: Server, version: str = "2.23"):
        self.server, self.version = server, version
        self.http = httpx.Client(base_url=server.url, timeout=30)
        basic = base64.b64encode(f"{server.access_key}:{server.secret_key}".encode()).decode()
        status, body = self.raw("GET", "/auth.login", headers={"Authorization": f"Basic {basic}"})
        assert status == 200, body
        self.token = body["data"]["token"]

    def close(self) -> None:
        self.http.close()

    def raw(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        response = self.http.request(method, path, **kwargs)
        self.http.cookies.clear()  # calls authenticate explicitly, never through a login cookie
        return response.status_code, response.json()

    def call(self, endpoint: str, version: str | None = None, **data) -> tuple[int, dict]:
        prefix = f"/v{version or self.version}" if (version or self.version) else ""
        return self.raw(
            "POST", f"{prefix}/{endpoint}", json=data, headers={"Authorization": f"Bearer {self.token}"}
        )

    def ok(self, endpoint: str, version: str | None = None, **data) -> dict:
        status, body = self.call(endpoint, version, **data)
        assert status == 200, body["meta"]
        return body["data"]


@pytest.fixture(scope="module")
def api(server: Server):
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def sdk_sockets_absorbed():
    """For tests that drive the clearml SDK in this process: the SDK opens HTTP sessions it never
    closes, so their sockets are collected here, at teardown, with that warning alone ignored; a
    socket our own code leaves open still fails the test that leaked it."""
    yield
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
