"""Fault-test harness: the real gateway as a ``specgate serve`` process (so it can be SIGKILLed and so
it runs on its own core), a raw keep-alive HTTP/1.1 client, and helpers to find and kill the
processes behind a port.

The client is hand-written on asyncio streams because httpx's AsyncClient spends ~4 ms of CPU per
call, which on two shared cores made the client, not the gateway, the bottleneck of a 6,000-call run.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.conftest import ACCESS_KEY, SECRET_KEY, free_port, stop_process

CALL_TIMEOUT = 30.0  # a call that takes longer is a hang, reported as such


class Http:
    """One keep-alive HTTP/1.1 connection to the gateway; reconnects after any failure."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port, self.headers = port, dict(headers or {})
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.reader, self.writer = self.writer, None, None
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass

    async def post(self, path: str, data: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        """(HTTP status, JSON body). Connection failures raise OSError; a hang raises TimeoutError."""
        try:
            return await asyncio.wait_for(self._post(path, data, headers), CALL_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def _post(self, path: str, data: dict | None, headers: dict[str, str] | None) -> tuple[int, dict]:
        body = json.dumps(data or {}).encode()
        head = {"Host": f"127.0.0.1:{self.port}", "Content-Type": "application/json",
                "Content-Length": str(len(body)), **self.headers, **(headers or {})}  # fmt: skip
        raw = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        if self.writer is not None and self.reader.at_eof():  # closed by the server while idle
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(raw.encode() + body)
        try:
            status = int((await self.reader.readuntil(b"\r\n")).split()[1])
            length = 0
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            payload = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError as e:
            raise ConnectionResetError("the gateway closed the connection") from e
        return status, json.loads(payload)


async def bearer(port: int) -> dict[str, str]:
    """Log in with the test key pair; the Authorization header of the session."""
    basic = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
    http = Http(port)
    try:
        status, body = await http.post("/auth.login", headers={"Authorization": f"Basic {basic}"})
    finally:
        await http.close()
    assert status == 200, body
    return {"Authorization": f"Bearer {body['data']['token']}"}


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listener_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port (what ``ss -ltnp`` shows)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    return None


class Gateway:
    """``specgate serve`` on a data directory, in its own session (so a test can kill its group)."""

    def __init__(self, home: Path, **env: str):
        self.home = home
        self.data_dir = home / "data"
        self.port = free_port()
        self.env = {
            **os.environ,
            "SPECGATE_DATA_DIR": str(self.data_dir), "SPECGATE_HOST": "127.0.0.1", "SPECGATE_PORT": str(self.port),
            "SPECGATE_ACCESS_KEY": ACCESS_KEY, "SPECGATE_SECRET_KEY": SECRET_KEY, "SPECGATE_ENV": "prod",
            "SPECGATE_ACCESS_LOG": "off", "SPECGATE_LOG_FORMAT": "text", "SPECGATE_LOG_LEVEL": "WARNING",
            **env,
        }  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.home / f"gateway-{self.starts}.log"

    def start(self, timeout: float = 40.0) -> "Gateway":
        self.starts += 1
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "specgate.cli", "serve"], env=self.env, cwd=self.home,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if get(self.port, "/health/live", timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the gateway process alone (its children are not signalled)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        return stop_process(self.proc, timeout=30)

    def valkey_port(self) -> int:
        return json.loads((self.data_dir / "valkey" / "server.json").read_text())["port"]


@pytest.fixture
def reap():
    """Processes a test starts, killed (by pid) at teardown if the test left them running."""
    pids: list[int] = []
    gateways: list[Gateway] = []

    class Reaper:
        def gateway(self, gateway: Gateway) -> Gateway:
            gateways.append(gateway)
            return gateway

        def pid(self, pid: int | None) -> None:
            if pid:
                pids.append(pid)

    yield Reaper()
    for gateway in gateways:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.proc.kill()
            gateway.proc.wait(timeout=10)
    for pid in pids:
        if alive(pid) and "valkey" in cmdline(pid):  # never a recycled pid
            os.kill(pid, signal.SIGKILL)
