"""The unmodified clearml SDK and clearml-agent against specgate, configured only through environment
variables (contract §10.0), on the embedded SQLite store and on MongoDB (nx-27017).

The SDK runs in subprocesses (it caches its session per process), the agent as ``clearml-agent daemon``
with venv creation and update checks disabled. Every test asserts what a user would see: the task's
final status and what its log holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from adapters.conftest import start_nx, stop_nx

from .conftest import Api, start_server

BIN = Path(sys.executable).parent
FINAL = ("completed", "failed", "stopped")

SDK_CREATE_AND_ENQUEUE = """
import sys, warnings
warnings.simplefilter("ignore")
from clearml import Task
task = Task.create(project_name=sys.argv[1], task_name=sys.argv[2], script=sys.argv[3])
Task.enqueue(task, queue_name=sys.argv[4])
print(task.id)
"""


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def stack(request, tmp_path_factory):
    """A server (on the parametrised store), its SDK/agent environment, and a running agent daemon."""
    home = tmp_path_factory.mktemp(f"agent-{request.param}")
    nx = None
    overrides = {}
    if request.param == "mongo":
        nx, url = start_nx(home)
        overrides["mongo_url"] = url.replace("/?", "/specgate_agent?")
    info, uv, thread = start_server(home / "data", **overrides)
    env = {
        **os.environ,
        "HOME": str(home), "CLEARML_CONFIG_FILE": str(home / "clearml.conf"),
        "CLEARML_API_HOST": info.url, "CLEARML_WEB_HOST": info.url, "CLEARML_FILES_HOST": info.url,
        "CLEARML_API_ACCESS_KEY": info.access_key, "CLEARML_API_SECRET_KEY": info.secret_key,
        "CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL": "1", "CLEARML_AGENT_SKIP_PIP_VENV_INSTALL": sys.executable,
        "CLEARML_AGENT_QUEUE_POLL_FREQ_SEC": "1",
        # the agent refuses to start while a daemon with the same worker id runs on the machine
        "CLEARML_WORKER_ID": f"specgate-test-{request.param}:{uuid.uuid4().hex[:8]}",
    }
    (home / "clearml.conf").write_text("agent { disable_agent_update_check: true }\n")
    api = Api(info)
    queue = "agent-queue"
    api.ok("queues.create", name=queue)
    log = open(home / "agent.log", "w")
    agent = subprocess.Popen(
        [str(BIN / "clearml-agent"), "daemon", "--queue", queue, "--foreground"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    yield {"api": api, "env": env, "home": home, "queue": queue, "agent_log": home / "agent.log"}
    os.killpg(agent.pid, signal.SIGTERM)  # the daemon and the task processes it started
    try:
        agent.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
    log.close()
    api.close()
    uv.should_exit = True
    thread.join(timeout=10)
    if nx is not None:
        stop_nx(nx)


SDK_APICLIENT_FLOW = """
import sys, warnings
warnings.simplefilter("ignore")
from clearml.backend_api.session.client import APIClient
client = APIClient()
project = client.projects.create(name=sys.argv[1])
task = client.tasks.create(name="apiclient task", type="training", project=project.id)
queue = client.queues.create(name=sys.argv[2])
assert client.tasks.enqueue(task=task.id, queue=queue.id).queued == 1
print(task.id, client.queues.get_next_task(queue=queue.id).entry.task)
"""


def test_apiclient_enqueue_then_pop(stack):
    """Contract §10.1, on this stack's store: projects.create → tasks.create → tasks.enqueue → get_next_task."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    done = subprocess.run(
        [sys.executable, "-c", SDK_APICLIENT_FLOW, f"apiclient-{tag}", f"apiclient-queue-{tag}"],
        env=stack["env"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    created, popped = done.stdout.split()
    assert popped == created
    assert stack["api"].ok("tasks.get_by_id", task=created)["task"]["status"] == "queued"


def submit(stack, name: str, source: str) -> str:
    """Task.create(script=...) then Task.enqueue(queue_name=...), exactly as a user's SDK code does."""
    script = stack["home"] / f"{name}.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, "-c", SDK_CREATE_AND_ENQUEUE, "agent-project", name, str(script), stack["queue"]],
        env=stack["env"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def wait_status(api: Api, task: str, wanted: tuple[str, ...], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.ok("tasks.get_by_id", task=task)["task"]["status"]
        if status in wanted:
            return status
        time.sleep(0.5)
    raise AssertionError(f"task {task} still {status} after {timeout} s")


def log_lines(api: Api, task: str) -> str:
    events = api.ok("events.get_task_log", task=task, batch_size=500)["events"]
    return "\n".join(e.get("msg", "") for e in events)


def test_sdk_creates_and_enqueues_a_task(stack):
    api = stack["api"]
    other = api.ok("queues.create", name=f"sdk-only-{os.getpid()}-{time.monotonic_ns()}")["id"]
    name = api.ok("queues.get_by_id", queue=other)["queue"]["name"]
    script = stack["home"] / "idle.py"
    script.write_text("print('never run')\n")
    done = subprocess.run(
        [sys.executable, "-c", SDK_CREATE_AND_ENQUEUE, "sdk-project", "sdk-task", str(script), name],
        env=stack["env"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    task = done.stdout.strip().splitlines()[-1]
    doc = api.ok("tasks.get_by_id", task=task)["task"]
    assert doc["status"] == "queued" and doc["execution"]["queue"] == other
    assert doc["script"]["entry_point"] == "idle.py" and "never run" in doc["script"]["diff"]
    assert [e["task"] for e in api.ok("queues.get_by_id", queue=other)["queue"]["entries"]] == [task]


def test_agent_runs_a_task_to_completed_and_ships_its_output(stack):
    api = stack["api"]
    started = time.monotonic()
    task = submit(stack, "hello", "print('hello from specgate agent test')\n")
    assert wait_status(api, task, FINAL) == "completed", stack["agent_log"].read_text()[-3000:]
    print(f"agent round trip: {time.monotonic() - started:.1f} s")
    assert "hello from specgate agent test" in log_lines(api, task)


def test_a_script_that_exits_1_ends_failed(stack):
    api = stack["api"]
    task = submit(stack, "broken", "import sys\nprint('about to fail')\nsys.exit(1)\n")
    assert wait_status(api, task, FINAL) == "failed"


def test_tasks_stop_on_a_running_task_ends_it_stopped(stack):
    api = stack["api"]
    task = submit(stack, "sleeper", "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n")
    wait_status(api, task, ("in_progress",))
    # Stop once the script runs: before that, the agent's own tasks.started calls ("launch by agent")
    # would overwrite the "stopping" message it polls for, on ClearML's server as here.
    deadline = time.monotonic() + 60
    while "sleeping" not in log_lines(api, task):
        assert time.monotonic() < deadline, "the script's first line never reached the log"
        time.sleep(0.5)
    api.ok("tasks.stop", task=task)
    assert wait_status(api, task, FINAL, timeout=60) == "stopped"
