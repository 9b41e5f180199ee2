"""Operations: liveness and readiness probes, Prometheus metrics, JSON call logs, graceful shutdown."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from .conftest import ACCESS_KEY, SECRET_KEY, free_port, start_server


def test_ready_when_store_and_redis_answer(server) -> None:
    r = httpx.get(f"{server.url}/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"store": "ok", "redis": "ok"}}
    assert httpx.get(f"{server.url}/health/live").json() == {"status": "ok"}


def test_metrics_count_calls_by_endpoint_version_and_status_and_show_queue_lengths(api, server) -> None:
    queue = api.ok("queues.create", name="metrics-q")["id"]
    task = api.ok("tasks.create", name="metrics task", type="training")["id"]
    api.ok("tasks.enqueue", task=task, queue=queue)
    api.call("tasks.get_by_id", task="no-such-task")
    text = httpx.get(f"{server.url}/metrics").text
    # the version label is the endpoint version that answered (the client pinned 2.23)
    assert 'specgate_requests_total{endpoint="tasks.create",version="2.13",status="200"} 1' in text
    assert 'specgate_requests_total{endpoint="tasks.get_by_id",version="2.1",status="400"} 1' in text
    assert 'specgate_request_seconds_count{endpoint="tasks.enqueue"} 1' in text
    assert 'specgate_request_seconds_bucket{endpoint="tasks.enqueue",le="+Inf"} 1' in text
    assert f'specgate_queue_length{{queue="{queue}"}} 1' in text


def test_not_ready_while_redis_is_down(tmp_path) -> None:
    info, uv, thread = start_server(tmp_path)
    try:
        redis.Redis.from_url(info.app.services.redis_url).shutdown(nosave=True)
        r = httpx.get(f"{info.url}/health/ready", timeout=10)
        assert r.status_code == 503
        body = r.json()
        assert body["checks"]["store"] == "ok" and body["checks"]["redis"].startswith("unavailable")
        assert httpx.get(f"{info.url}/metrics", timeout=10).status_code == 200  # metrics still answer
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


def _serve(tmp_path: Path, port: int, *args: str, **settings: str) -> subprocess.Popen:
    env = {**os.environ, "SPECGATE_DATA_DIR": str(tmp_path), "SPECGATE_PORT": str(port), "SPECGATE_ACCESS_KEY": ACCESS_KEY,
           "SPECGATE_SECRET_KEY": SECRET_KEY, "SPECGATE_LOG_FORMAT": "json", "SPECGATE_ENV": "test",
           **{f"SPECGATE_{name.upper()}": value for name, value in settings.items()}}  # fmt: skip
    exe = Path(sys.executable).with_name("specgate")
    proc = subprocess.Popen([str(exe), "serve", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("specgate serve did not become ready")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it has not exited 30 s later."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_calls_are_logged_as_json_and_sigterm_lets_in_flight_calls_finish(tmp_path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/auth.login", auth=(ACCESS_KEY, SECRET_KEY))
        call_id = r.json()["meta"]["id"]
        # a call whose body is still arriving when the server is told to stop
        body = json.dumps({"method": "post"}).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        basic = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode())
        sock.sendall(b"POST /auth.login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Basic "
                     + basic + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:5])  # fmt: skip
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[5:])
        sock.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        sock.close()
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
    with proc.stderr:
        logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    login = [entry for entry in logs if entry.get("call_id") == call_id]
    assert login and login[0]["endpoint"] == "auth.login" and login[0]["status"] == 200 and login[0]["level"] == "info"
    assert sum(1 for entry in logs if entry.get("endpoint") == "auth.login" and entry["status"] == 200) == 2


def test_idle_connections_stay_open_for_the_keep_alive_setting(tmp_path) -> None:
    """A pooled connection reused after the server's idle timeout closes under the request (ReadError
    in httpx, whose pools expire after 5 s, uvicorn's own default): the setting must reach uvicorn."""
    port = free_port()
    proc = _serve(tmp_path, port, keep_alive="3")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def ping() -> int:
        connection.request("GET", "/health/live")
        response = connection.getresponse()
        response.read()
        return response.status

    try:
        assert ping() == 200
        socket_used = connection.sock
        time.sleep(1.5)  # idle, within the setting: the same connection serves the next call
        assert ping() == 200 and connection.sock is socket_used
        time.sleep(4.0)  # idle past it, not past uvicorn's default 5 s: the server has closed its end
        socket_used.settimeout(0.2)
        assert socket_used.recv(1) == b""
    finally:
        connection.close()  # also when an assertion failed: an unclosed socket fails a later test
        _stop(proc)


def test_serve_with_two_workers_shares_one_queue_backend(tmp_path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port, "--workers", "2")
    try:
        base = f"http://127.0.0.1:{port}"
        children = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid="], capture_output=True, text=True).stdout.split()
        assert len(children) >= 2  # the worker processes (plus uvicorn's own helpers)
        token = httpx.post(f"{base}/auth.login", auth=(ACCESS_KEY, SECRET_KEY)).json()["data"]["token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            def ok(endpoint: str, **data) -> dict:
                body = http.post(f"/{endpoint}", json=data).json()
                assert body["meta"]["result_code"] == 200, body["meta"]
                return body["data"]

            queue = ok("queues.create", name="two workers")["id"]
            tasks = [ok("tasks.create", name=f"task {i}", type="training")["id"] for i in range(20)]
            for task in tasks:  # new connections: spread over both workers
                httpx.post(f"{base}/tasks.enqueue", json={"task": task, "queue": queue},
                           headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            popped = {ok("queues.get_next_task", queue=queue)["entry"]["task"] for _ in tasks}
            assert popped == set(tasks)
    finally:
        _stop(proc)
